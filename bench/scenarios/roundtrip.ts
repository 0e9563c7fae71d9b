/**
 * Round trip: ping-pong latency between hosts a and b, one datagram in flight, the same
 * implementation at both ends: C (the floor), node:dgram, ip6sock UdpSocket. p50 and p99 of
 * each run; the rows are the medians over runs, which alternate between the pairs.
 * @packageDocumentation
 */
import { hostPair } from '../../packages/testbed/src';
import {
  byCase,
  closePeers,
  Context,
  interleave,
  mb,
  measuredRow,
  median,
  num,
  Peer,
  percentile,
  relateByCase,
  Row,
  RowBase,
  rttSamples,
  Scenario,
  ScenarioResult,
  startPeer,
} from '../runner';

const PORT = 7019;
const SIZE = 64;
/** A round trip that takes longer than this counts as lost. */
const TIMEOUT_MS = 1000;

interface Pair {
  readonly impl: string;
  readonly kind: 'c' | 'dgram' | 'ip6sock';
  readonly echo: string[];
  readonly ping: string[];
}

/** One pair per implementation, each on its own port so all can stay up between rounds. */
function pairs(ctx: Context, dst: string): Pair[] {
  const node = (impl: 'ip6sock' | 'dgram', port: number): Pair => ({
    impl: impl === 'dgram' ? 'node:dgram' : 'ip6sock UdpSocket',
    kind: impl,
    echo: ctx.node('echo', ['--impl', impl, '--port', port]),
    ping: ctx.node('ping', ['--impl', impl, '--dst', dst, '--port', port, '--size', SIZE]),
  });
  return [
    {
      impl: 'C (poll + recv/send)',
      kind: 'c',
      echo: [ctx.bin.pingpong, 'echo', '--port', String(PORT)],
      ping: [ctx.bin.pingpong, 'ping', '--dst', dst, '--port', String(PORT), '--size', String(SIZE)],
    },
    node('dgram', PORT + 1),
    node('ip6sock', PORT + 2),
  ];
}

interface Sample {
  p50: number;
  p99: number;
  lost: number;
  rssKb: number;
}

export const roundtrip: Scenario = {
  name: 'roundtrip',
  title: 'Round trip: ping-pong latency, same implementation at both ends (lower is better)',
  async run(ctx): Promise<ScenarioResult> {
    const trips = ctx.options.roundTrips;
    const topo = await hostPair();
    const rows: Row[] = [];
    try {
      const list = pairs(ctx, topo.address('b'));
      const peers: Array<{ echo: Peer | Error; ping: Peer | Error }> = [];
      try {
        for (const p of list) {
          peers.push({
            echo: await startPeer(topo, 'b', p.echo, { label: `${p.impl} echo`, cpu: ctx.cpu.traffic }),
            ping: await startPeer(topo, 'a', p.ping, { label: `${p.impl} ping`, cpu: ctx.cpu.measured }),
          });
        }
        ctx.log(`roundtrip: ${list.map((p) => p.impl).join(', ')}`);
        const results = await interleave<Sample>(
          ctx,
          'round trip',
          list.map((p, i) => ({
            label: p.impl,
            once: async () => {
              const { echo, ping } = peers[i];
              if (echo instanceof Error) throw echo;
              if (ping instanceof Error) throw ping;
              const reply = await ping.request(`ping ${trips} ${TIMEOUT_MS}`, 30_000 + trips * 10);
              const rtt = rttSamples(reply);
              return { p50: percentile(rtt, 50) / 1000, p99: percentile(rtt, 99) / 1000, lost: num(reply, 'lost'), rssKb: num(reply, 'rssKb') };
            },
          })),
        );
        list.forEach((p, i) => {
          const base = (q: 'p50' | 'p99'): RowBase => ({ case: `${SIZE} B, ${q}`, impl: p.impl, kind: p.kind, metric: `${q} round trip`, unit: 'us', better: 'lower' });
          const samples = results[i];
          if (samples instanceof Error) {
            rows.push(...[base('p50'), base('p99')].map((b) => ({ ...b, status: 'failed' as const, reason: samples.message })));
            return;
          }
          const details = { roundTripsPerRun: trips, lost: median(samples.map((s) => s.lost)), rssMB: mb(Math.max(...samples.map((s) => s.rssKb))) };
          rows.push(measuredRow(base('p50'), samples.map((s) => s.p50), details), measuredRow(base('p99'), samples.map((s) => s.p99), details));
        });
      } finally {
        await closePeers(peers.flatMap((p) => [p.echo, p.ping]));
      }
    } finally {
      await topo.destroy();
    }
    relateByCase(rows);
    return {
      rows: byCase(rows),
      targets: [],
      notes: [`each run: ${trips.toLocaleString('en')} round trips of ${SIZE}-byte datagrams, runs alternating between the pairs; for latency a ratio above 1 means slower`],
    };
  },
};
