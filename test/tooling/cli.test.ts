// The ip6sock command: help at every level and the doctor, as root and without capabilities.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describeRoot } from '../helpers/privileged';
import { chain, useTopology } from '../helpers/topology';

// The built command (packages/cli, compiled by `npm test`'s pretest), as `npx ip6sock` runs it.
const CLI = path.join(__dirname, '..', '..', 'packages', 'cli', 'dist', 'cli.js');

function cli(args: string[], prefix: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const argv = [...prefix, process.execPath, CLI, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 20000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Finding {
  check: string;
  ok: boolean;
  detail: string;
}

function doctor(args: string[], prefix: string[] = []): Record<string, Finding> {
  const r = cli(['doctor', '--json', ...args], prefix);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout) as { findings: Finding[]; classes: Finding[] };
  return Object.fromEntries([...out.findings, ...out.classes].map((f) => [f.check, f]));
}

describe('ip6sock command', () => {
  test('--help lists every command; each command has its own --help', () => {
    const r = cli(['--help']);
    expect(r.status).toBe(0);
    for (const name of ['doctor', 'demo']) expect(r.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    const names = [...r.stdout.matchAll(/^  (\S+) /gm)].map((m) => m[1]);
    for (const name of names) {
      const h = cli([name, '--help']);
      expect(h.status).toBe(0);
      expect(h.stdout).toMatch(new RegExp(`^usage: ip6sock ${name}`));
    }
  });

  test('no command prints the overview and fails; an unknown one says so', () => {
    expect(cli([]).status).toBe(1);
    const r = cli(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  test('a bad option is reported with its code, not a stack trace', () => {
    const r = cli(['doctor', '--bogus']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ip6sock doctor: .*--bogus.*\[ERR_PARSE_ARGS_UNKNOWN_OPTION\]/);
  });
});

describeRoot('ip6sock doctor', () => {
  const topo = useTopology(() => chain());

  test('as root: every capability, and forwarding as each namespace has it', () => {
    const host = doctor(['--netns', topo.ns('sender')]);
    expect(host['CAP_NET_RAW'].ok).toBe(true);
    expect(host['CAP_NET_ADMIN'].ok).toBe(true);
    expect(host['IPv6'].ok).toBe(true);
    expect(host['IPv6 forwarding'].ok).toBe(false);
    expect(host['router-alert isolation'].ok).toBe(true);
    expect(host['multicast interfaces'].detail).toContain('eth0');
    expect(host['RouterAlertSocket'].detail).toContain('forwarding');
    const router = doctor(['--netns', topo.ns('router')]);
    expect(router['IPv6 forwarding'].ok).toBe(true);
    expect(router['RouterAlertSocket'].ok).toBe(true);
    expect(router['multicast interfaces'].detail).toMatch(/eth0.*eth1/);
  });

  test('the demo runs every example, exits 0 and leaves no namespace behind', () => {
    const r = spawnSync(process.execPath, [CLI, 'demo'], { encoding: 'utf8', timeout: 60000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const part of ['grasp', 'mcast-chat', 'anycast-responder', 'ra-policy', 'mld-monitor']) expect(r.stdout).toContain(`== ${part}`);
    expect(r.stdout).toMatch(/receiver +"HELLO, routers on the path" with hop limit 63, router alert 5/);
    expect(r.stdout).toMatch(/answer: "receiver: who serves this\?"/);
    expect(r.stdout).toMatch(/namespaces removed\s*$/);
    // The test bed names namespaces after the creating process's pid.
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((n) => n.includes(`-${r.pid}-`));
    expect(left).toEqual([]);
  });

  test('without capabilities: says which are missing and what that rules out', () => {
    const none = doctor([], ['setpriv', '--inh-caps=-all', '--bounding-set=-all']);
    expect(none['CAP_NET_RAW']).toMatchObject({ ok: false });
    expect(none['CAP_NET_ADMIN']).toMatchObject({ ok: false });
    expect(none['router-alert isolation'].detail).toContain('CAP_NET_RAW');
    expect(none['AnycastGroup']).toMatchObject({ ok: false, detail: 'needs CAP_NET_ADMIN' });
    expect(none['RawSocket']).toMatchObject({ ok: false, detail: 'needs CAP_NET_RAW' });
    expect(none['MulticastSocket'].detail).not.toContain('needs');
  });
});
