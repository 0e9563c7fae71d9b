/**
 * The published declarations, as a consumer's compiler sees them: built from lib/ into a
 * package in a temporary directory (package.json and dist/, as `npm pack` would ship them,
 * with @types/node beside it), then packages/consumer-types/good.ts (every class's events and iterators)
 * must compile without an error and bad.ts must fail exactly on the lines it
 * marks, with the codes it marks, under TypeScript 5 and TypeScript 7, for ESM and
 * CommonJS consumers. No network, no skipLibCheck.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');
// The consumer project: its fixtures and its own TypeScript 7 (a workspace of this repo).
const fixtures = path.join(root, 'packages', 'consumer-types');

function tsc(from: string): string {
  return path.join(path.dirname(require.resolve('typescript/package.json', { paths: [from] })), 'bin', 'tsc');
}
const compilers = { 'TypeScript 5': tsc(root), 'TypeScript 7': tsc(fixtures) };

/** Runs a compiler (on this Node); its diagnostics as `file(line): TSnnnn`. */
async function compile(tsc: string, cwd: string, flags: string[]): Promise<{ diagnostics: string[]; output: string }> {
  const args = [tsc, '--strict', ...flags, '--noEmit', '--pretty', 'false', 'good.ts', 'bad.ts'];
  let output: string;
  try {
    output = (await run(process.execPath, args, { cwd, maxBuffer: 1 << 24 })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    output = `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  const diagnostics = [...output.matchAll(/^(\S+\.ts)\((\d+),\d+\): error (TS\d+)/gm)].map((m) => `${m[1]}(${m[2]}): ${m[3]}`);
  return { diagnostics, output };
}

/** The errors bad.ts marks with `// error TSnnnn`. */
function expectedErrors(): string[] {
  const lines = fs.readFileSync(path.join(fixtures, 'bad.ts'), 'utf8').split('\n');
  return lines.flatMap((line, i) => [...line.matchAll(/\/\/ error (TS\d+)/g)].map((m) => `bad.ts(${i + 1}): ${m[1]}`));
}

let dir: string;
const results = new Map<string, Promise<{ diagnostics: string[]; output: string }>>();

/** A consumer project: the package, @types/node, the fixtures, and its own package.json. */
function consumer(name: string, type: 'module' | 'commonjs'): string {
  const cwd = path.join(dir, name);
  const modules = path.join(cwd, 'node_modules');
  fs.mkdirSync(path.join(modules, '@types'), { recursive: true });
  fs.symlinkSync(path.join(dir, 'package'), path.join(modules, 'ip6sock'), 'dir');
  fs.symlinkSync(path.dirname(require.resolve('@types/node/package.json', { paths: [root] })), path.join(modules, '@types', 'node'), 'dir');
  fs.writeFileSync(path.join(cwd, 'package.json'), JSON.stringify({ name, private: true, type }));
  for (const f of ['good.ts', 'bad.ts']) fs.copyFileSync(path.join(fixtures, f), path.join(cwd, f));
  return cwd;
}

type Compiler = keyof typeof compilers;
const cases: Array<[string, Compiler, 'module' | 'commonjs', string[]]> = [
  ['ESM, --module nodenext', 'TypeScript 5', 'module', ['--module', 'nodenext']],
  ['ESM, --module nodenext', 'TypeScript 7', 'module', ['--module', 'nodenext']],
  ['CommonJS, --module nodenext', 'TypeScript 7', 'commonjs', ['--module', 'nodenext']],
  ['CommonJS, --module commonjs --moduleResolution node10', 'TypeScript 5', 'commonjs', ['--module', 'commonjs', '--moduleResolution', 'node10']],
  ['CommonJS, --module commonjs', 'TypeScript 7', 'commonjs', ['--module', 'commonjs']],
];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ip6sock-types-'));
  const pkg = path.join(dir, 'package');
  // Declarations only, into the package: dist/ and the tests that read it are left alone.
  await run(process.execPath, [compilers['TypeScript 5'], '-p', path.join(root, 'tsconfig.build.json'), '--emitDeclarationOnly', '--declarationMap', 'false', '--outDir', path.join(pkg, 'dist')], { cwd: root });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
  // All compilers at once (TypeScript 7 is native and quick; the two TypeScript 5 runs share the cores).
  cases.forEach(([name, compiler, type, flags], i) => {
    const cwd = consumer(`consumer-${i}`, type);
    const result = compile(compilers[compiler], cwd, flags);
    result.catch(() => {});
    results.set(`${name} ${compiler}`, result);
  });
  await Promise.allSettled(results.values());
}, 90000);

afterAll(() => {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the published declarations, in a consumer project', () => {
  test.each(cases)('%s, %s: the good fixture compiles, the bad one fails exactly where marked', async (name, compiler) => {
    const { diagnostics, output } = await (results.get(`${name} ${compiler}`) as Promise<{ diagnostics: string[]; output: string }>);
    // The compiler's whole output when it found nothing: a crash or a missing file says why.
    expect({ output: diagnostics.length === 0 ? output : '', diagnostics }).toEqual({ output: '', diagnostics: expectedErrors() });
  });
});
