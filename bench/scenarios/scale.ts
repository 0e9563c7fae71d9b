/**
 * Scale: how long joining takes and how much resident memory it adds, on one socket.
 * - many groups: N groups on eth0 of host b (hostPair);
 * - many links: one group on every link of a hub with `links` links (star), ip6sock with
 *   one join(group, { interface: 'all' }), node:dgram with one addMembership per interface.
 * Each run is a fresh process (joining is set-up work, done once by a daemon); after the
 * joins the bench checks /proc/net/igmp6 in the namespace: every membership must be there.
 * @packageDocumentation
 */
import { igmp6 } from '../../lib/links/procnet';
import { hostPair, star, Topology } from '../../packages/testbed/src';
import { multicastSocket } from '../ip6sock';
import { ALL_GROUP } from '../roles/joiner';
import {
  attemptRows,
  byCase,
  Context,
  mb,
  measuredRow,
  median,
  num,
  relateByCase,
  repeat,
  Row,
  RowBase,
  RowKind,
  Scenario,
  ScenarioResult,
  unavailableRow,
  withPeer,
} from '../runner';

const PORT = 7022;

interface Joiner {
  readonly impl: string;
  readonly kind: RowKind;
  readonly available: { ok: true } | { ok: false; reason: string };
}

function joiners(): Joiner[] {
  const ip6sock = multicastSocket();
  return [
    { impl: 'node:dgram', kind: 'dgram', available: { ok: true } },
    { impl: 'ip6sock MulticastSocket', kind: 'ip6sock', available: ip6sock.ok ? { ok: true } : ip6sock },
  ];
}

/** Runs one case for every joiner: two rows each (time, memory). */
async function joinCase<H extends string>(
  ctx: Context,
  topo: Topology<H>,
  host: H,
  caseName: string,
  args: ReadonlyArray<string | number>,
  expected: number,
  count: () => number,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const j of joiners()) {
    const time: RowBase = { case: `${caseName}: time`, impl: j.impl, kind: j.kind, metric: 'time to join', unit: 'ms', better: 'lower' };
    const mem: RowBase = { case: `${caseName}: memory`, impl: j.impl, kind: j.kind, metric: 'RSS growth', unit: 'MB', better: 'lower' };
    if (!j.available.ok) {
      rows.push(unavailableRow(time, j.available.reason), unavailableRow(mem, j.available.reason));
      continue;
    }
    ctx.log(`scale ${caseName}: ${j.impl}`);
    const impl = j.kind === 'dgram' ? 'dgram' : 'ip6sock';
    // --expose-gc: the joiner collects garbage before each memory reading, so heap growth is
    // what the memberships keep, not what joining left behind.
    const argv = ctx.node('joiner', ['--impl', impl, '--port', PORT, ...args], ['--expose-gc']);
    const measured = await attemptRows(ctx, [time, mem], async () => {
      const samples = await repeat(ctx, `${j.impl} ${caseName}`, () =>
        withPeer(topo, host, argv, { label: `${j.impl} joiner`, cpu: ctx.cpu.measured }, async (peer) => {
          const reply = await peer.request('join', 120_000);
          const held = count();
          if (num(reply, 'joined') !== expected || held !== expected) {
            throw new Error(`${j.impl}: expected ${expected} memberships, the joiner reports ${String(reply.joined)} and /proc/net/igmp6 shows ${held}`);
          }
          return { ms: num(reply, 'ms'), rssKb: num(reply, 'rssAfterKb') - num(reply, 'rssBeforeKb'), heapKb: num(reply, 'heapAfterKb') - num(reply, 'heapBeforeKb') };
        }),
      );
      return [
        measuredRow(time, samples.map((s) => s.ms), { memberships: expected, usPerMembership: (1000 * median(samples.map((s) => s.ms))) / expected }),
        measuredRow(mem, samples.map((s) => mb(s.rssKb)), { memberships: expected, heapGrowthMB: mb(median(samples.map((s) => s.heapKb))) }),
      ];
    });
    rows.push(...measured);
  }
  return rows;
}

export const scale: Scenario = {
  name: 'scale',
  title: 'Scale: joining many groups, and one group on many links',
  async run(ctx): Promise<ScenarioResult> {
    const rows: Row[] = [];
    const groups = ctx.options.joinGroups;
    const links = ctx.options.links;
    {
      const topo = await hostPair();
      try {
        const ns = topo.ns('b');
        const count = (): number => igmp6(ns).filter((e) => e.interface.name === 'eth0' && e.address.startsWith('ff05::db8:1:')).length;
        rows.push(...(await joinCase(ctx, topo, 'b', `${groups.toLocaleString('en')} groups on eth0`, ['--groups', groups, '--interface', 'eth0'], groups, count)));
      } finally {
        await topo.destroy();
      }
    }
    {
      const started = Date.now();
      const topo = await star(links);
      ctx.log(`scale: star(${links}) built in ${Date.now() - started} ms`);
      try {
        const ns = topo.ns('hub');
        const count = (): number => igmp6(ns).filter((e) => e.address === ALL_GROUP).length;
        rows.push(...(await joinCase(ctx, topo, 'hub', `1 group on all ${links} links`, ['--interface', 'all'], links, count)));
      } finally {
        await topo.destroy();
      }
    }
    relateByCase(rows);
    return {
      rows: byCase(rows),
      targets: [],
      notes: [
        'joins are checked in /proc/net/igmp6 after every run; memory is the RSS growth of the joining process (kernel memory is not in it), heapGrowthMB the JavaScript heap kept after a full GC',
        "node:dgram has no 'all': it lists the interfaces (os.networkInterfaces(), in its time) and joins with one addMembership per interface; ip6sock's join also starts the link watcher that joins links appearing later",
      ],
    };
  },
};
