/**
 * Jest glue for the namespace test bed (packages/testbed, @ip6sock/testbed): the real
 * process for its registry, root gating, per-file cleanup, and useTopology() for describe
 * blocks.
 */
import * as vm from 'node:vm';
import { destroyAllSync, setHostProcess, Topology } from '@ip6sock/testbed';
import { requireRoot } from './privileged';

export * from '@ip6sock/testbed';

// Jest hands each test file a copy of `process` whose events never fire, so the test
// bed's 'exit' fallback would be a silent no-op there, and each file would have a registry
// of its own. vm.runInThisContext evaluates in Node's main context, whose global `process`
// is the real one: every file of a worker then shares one registry and one exit handler.
setHostProcess(vm.runInThisContext('process') as NodeJS.Process);

// Loaded by a test file: clean up after that file even when its tests threw.
afterAll(destroyAllSync);


/**
 * Builds a topology in beforeAll and destroys it in afterAll of the enclosing describe:
 *
 *   const topo = useTopology(() => chain());
 *   test('...', async () => { await topo.exec('sender', ['ping', ...]); });
 *
 * The returned object forwards to the topology built in beforeAll; using it before then
 * (at collection time) throws.
 */
export function useTopology<H extends string>(
  factory: () => Promise<Topology<H>>,
  timeoutMs = 30_000,
): Topology<H> {
  let current: Topology<H> | undefined;
  beforeAll(async () => {
    requireRoot('useTopology()');
    current = await factory();
  }, timeoutMs);
  afterAll(async () => {
    const t = current;
    current = undefined;
    await t?.destroy();
  }, timeoutMs);
  const target = Object.create(Topology.prototype) as Topology<H>;
  return new Proxy(target, {
    get(_target, prop) {
      if (!current) throw new Error('useTopology(): the topology exists only between beforeAll and afterAll');
      const value: unknown = Reflect.get(current, prop, current);
      return typeof value === 'function' ? value.bind(current) : value;
    },
  });
}

