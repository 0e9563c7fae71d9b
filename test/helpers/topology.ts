/**
 * Jest glue for the namespace test bed (lib/testbed.ts, published as ip6sock/testbed):
 * root gating, per-file cleanup, and useTopology() for describe blocks.
 */
import { destroyAllSync, Topology } from '../../lib/testbed';
import { requireRoot } from './privileged';

export * from '../../lib/testbed';

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

