#!/usr/bin/env node
/**
 * The `ip6sock` command: runs the example daemons and the host check.
 *   ip6sock <command> [options]     ip6sock --help     ip6sock <command> --help
 */
import * as path from 'node:path';

/** What every runnable example module exports. */
export interface ExampleModule {
  /** One line for `ip6sock --help`. */
  summary: string;
  /** The full `--help` text. */
  usage: string;
  /** Runs until done or until the signal aborts (Ctrl-C, SIGTERM). */
  main(args: string[], signal: AbortSignal): Promise<void>;
}

/**
 * Commands and the modules that implement them, relative to this file: the example daemons
 * are the repository's examples/, compiled into examples/ next to it; the doctor and the
 * demo are this package's own.
 */
const COMMANDS: Record<string, string> = {
  grasp: 'examples/grasp',
  'mcast-chat': 'examples/mcast-chat',
  'mcast-stream': 'examples/mcast-stream',
  'anycast-responder': 'examples/anycast-responder',
  'ra-policy': 'examples/ra-policy',
  'mld-monitor': 'examples/mld-monitor',
  doctor: 'doctor',
  demo: 'demo',
};

function load(name: string): ExampleModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(__dirname, COMMANDS[name])) as ExampleModule;
}

function overview(): string {
  const lines = Object.keys(COMMANDS).map((name) => `  ${name.padEnd(20)} ${load(name).summary}`);
  return ['usage: ip6sock <command> [options]', '', 'commands:', ...lines, '', 'ip6sock <command> --help shows the options of one command.'].join('\n');
}

/** Runs a command with Ctrl-C / SIGTERM wired to an AbortSignal; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(overview());
    return name === undefined ? 1 : 0;
  }
  if (!Object.prototype.hasOwnProperty.call(COMMANDS, name)) {
    console.error(`ip6sock: unknown command '${name}'\n\n${overview()}`);
    return 2;
  }
  const mod = load(name);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(mod.usage);
    return 0;
  }
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await mod.main(rest, ac.signal);
    return 0;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    console.error(`ip6sock ${name}: ${e.message ?? String(err)}${e.code ? ` [${e.code}]` : ''}`);
    return 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

if (require.main === module) {
  void run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
