/**
 * The house rules of lib/, checked on the sources: imports form no cycle, the codecs import
 * no socket code, and the addon is reached through core/native.ts alone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const LIB = path.resolve(__dirname, '..', '..', 'lib');

/** Every .ts file under lib/, as a path relative to lib/ without the extension. */
function modules(dir = LIB): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return modules(full);
    return e.name.endsWith('.ts') ? [path.relative(LIB, full).slice(0, -3)] : [];
  });
}

/** The lib/ modules `mod` imports (type-only imports included: they are dependencies of the reader too). */
function importsOf(mod: string): string[] {
  const source = fs.readFileSync(path.join(LIB, `${mod}.ts`), 'utf8');
  const specs = [...source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+'(\.[^']+)'/g)].map((m) => m[1]);
  return specs.map((spec) => {
    const target = path.relative(LIB, path.resolve(LIB, path.dirname(mod), spec));
    return fs.existsSync(path.join(LIB, `${target}.ts`)) ? target : path.join(target, 'index');
  });
}

const graph = new Map(modules().map((m) => [m, importsOf(m)]));

test('every relative import names a module that exists', () => {
  const missing = [...graph].flatMap(([mod, deps]) => deps.filter((d) => !graph.has(d)).map((d) => `${mod} -> ${d}`));
  expect(missing).toEqual([]);
  expect(graph.size).toBeGreaterThan(20);
});

test('lib/ has no import cycle', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (mod: string, trail: string[]): void => {
    if (state.get(mod) === 'done') return;
    if (state.get(mod) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(mod)), mod].join(' -> '));
      return;
    }
    state.set(mod, 'open');
    for (const dep of graph.get(mod) ?? []) visit(dep, [...trail, mod]);
    state.set(mod, 'done');
  };
  for (const mod of graph.keys()) visit(mod, []);
  expect(cycles).toEqual([]);
});

test('the codecs import no socket, core or interface code (pure functions over bytes)', () => {
  const allowed = (dep: string): boolean => dep.startsWith('codec/') || dep === 'errors' || dep === 'validate' || dep === 'links/types';
  const offending = [...graph]
    .filter(([mod]) => mod.startsWith('codec/'))
    .flatMap(([mod, deps]) => deps.filter((d) => !allowed(d)).map((d) => `${mod} -> ${d}`));
  expect(offending).toEqual([]);
  // errors and validate, which the codecs may use, must not pull sockets in behind them.
  for (const shared of ['errors', 'validate', 'links/types']) {
    expect((graph.get(shared) ?? []).filter((d) => !allowed(d))).toEqual([]);
  }
});

test('only core/native.ts loads the addon', () => {
  const loaders = [...graph.keys()].filter((mod) => /require\('node-gyp-build'\)|\.node['"]/.test(fs.readFileSync(path.join(LIB, `${mod}.ts`), 'utf8')));
  expect(loaders).toEqual(['core/native']);
});
