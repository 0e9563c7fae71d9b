/**
 * Router-alert relay: sender - router - receiver (chain()). The C blaster in sender sends
 * UDP datagrams carrying a hop-by-hop router alert (value 5) to receiver's C sink; in router
 * a relay taps them (raw/255 socket, IPV6_ROUTER_ALERT) and sends each on. The C relay is
 * the seed's loop (recv, hop limit - 1, sendto); ip6sock's is RouterAlertSocket + forward().
 * Without a relay the kernel forwards the packets itself: that row is the reference.
 *
 * Forwarded packets/s is the relay's own rate (the sink's, for the kernel); added latency is
 * the round-trip time through the router with the relay minus without it (the answers come
 * back without a router alert, through plain forwarding).
 * @packageDocumentation
 */
import { chain, Topology } from '../../packages/testbed/src';
import { routerAlertSocket } from '../ip6sock';
import {
  attemptRows,
  byCase,
  Context,
  costTarget,
  counterReport,
  cpuPerPacketUs,
  mb,
  measuredRow,
  median,
  Peer,
  RECEIVE_BUFFER,
  percentile,
  ratioTarget,
  rateOf,
  relateByCase,
  repeat,
  Row,
  RowBase,
  RowKind,
  rttSamples,
  Scenario,
  ScenarioResult,
  timeoutFor,
  unavailableRow,
  withPeer,
} from '../runner';

type Host = 'sender' | 'router' | 'receiver';

const PORT = 7020;
const ECHO_PORT = 7021;
const SIZE = 64;
const RA_VALUE = 5;
const TIMEOUT_MS = 1000;

interface Relay {
  readonly impl: string;
  readonly kind: RowKind;
  /** argv of the relay in router, null for plain kernel forwarding, or why it cannot run. */
  readonly argv: string[] | null | { unavailable: string };
}

interface Measured {
  rate: number[];
  delivered: number[];
  rssKb: number[];
  cpuUsPerPacket: number[];
  p50: number[];
  p99: number[];
}

/** Forwarding rate and round trips with `relayArgv` running in router (or none). */
async function measure(ctx: Context, topo: Topology<Host>, relayArgv: string[] | null, label: string): Promise<Measured> {
  const dst = topo.address('receiver');
  const packets = ctx.options.relayPackets;
  const out: Measured = { rate: [], delivered: [], rssKb: [], cpuUsPerPacket: [], p50: [], p99: [] };
  const blasterArgv = [ctx.bin.blaster, '--dst', dst, '--port', String(PORT), '--size', String(SIZE), '--ra', String(RA_VALUE), '--connect'];
  const run = async (relay: Peer | undefined): Promise<void> => {
    await withPeer(topo, 'receiver', [ctx.bin.sink, '--port', String(PORT), '--rcvbuf', String(RECEIVE_BUFFER)], { label: 'C sink' }, (sink) =>
      withPeer(topo, 'sender', blasterArgv, { label: 'C blaster', cpu: ctx.cpu.traffic }, async (blaster) => {
        const samples = await repeat(ctx, `${label} forwarding`, async () => {
          await sink.request('reset', 5000);
          if (relay) await relay.request('reset', 5000);
          await blaster.request(`send ${packets}`, timeoutFor(packets));
          const relayed = relay ? counterReport(await relay.request('report 300 10000', 15_000)) : undefined;
          const sunk = counterReport(await sink.request('report 300 10000', 15_000));
          return { rate: rateOf(relayed ?? sunk), delivered: sunk.received, rssKb: relayed?.rssKb ?? 0, cpu: relayed ? cpuPerPacketUs(relayed) : 0 };
        });
        out.rate = samples.map((s) => s.rate);
        out.delivered = samples.map((s) => s.delivered);
        out.rssKb = samples.map((s) => s.rssKb);
        out.cpuUsPerPacket = samples.map((s) => s.cpu);
      }),
    );
    const trips = ctx.options.roundTrips;
    const pingArgv = [ctx.bin.pingpong, 'ping', '--dst', dst, '--port', String(ECHO_PORT), '--size', String(SIZE), '--ra', String(RA_VALUE)];
    await withPeer(topo, 'receiver', [ctx.bin.pingpong, 'echo', '--port', String(ECHO_PORT)], { label: 'C echo' }, () =>
      withPeer(topo, 'sender', pingArgv, { label: 'C ping', cpu: ctx.cpu.traffic }, async (pinger) => {
        const samples = await repeat(ctx, `${label} round trip`, async () => {
          const rtt = rttSamples(await pinger.request(`ping ${trips} ${TIMEOUT_MS}`, 30_000 + trips * 10));
          return { p50: percentile(rtt, 50) / 1000, p99: percentile(rtt, 99) / 1000 };
        });
        out.p50 = samples.map((s) => s.p50);
        out.p99 = samples.map((s) => s.p99);
      }),
    );
  };
  if (relayArgv === null) await run(undefined);
  else await withPeer(topo, 'router', relayArgv, { label, cpu: ctx.cpu.measured }, (relay) => run(relay));
  return out;
}

export const relay: Scenario = {
  name: 'relay',
  title: 'Router-alert relay: sender -> router (relay) -> receiver',
  async run(ctx): Promise<ScenarioResult> {
    const ip6sock = routerAlertSocket();
    const relays: Relay[] = [
      { impl: 'kernel forwarding (no tap)', kind: 'reference', argv: null },
      { impl: 'C relay (recv + sendto)', kind: 'c', argv: [ctx.bin.relay, '--value', String(RA_VALUE), '--rcvbuf', String(RECEIVE_BUFFER)] },
      {
        impl: 'ip6sock RouterAlertSocket',
        kind: 'ip6sock',
        argv: ip6sock.ok ? ctx.node('relay', ['--value', RA_VALUE, '--rcvbuf', RECEIVE_BUFFER]) : { unavailable: ip6sock.reason },
      },
    ];
    const rows: Row[] = [];
    let baseline: Measured | undefined;
    const topo = await chain();
    try {
      for (const r of relays) {
        const common = { impl: r.impl, kind: r.kind };
        const rate: RowBase = { ...common, case: `forward ${SIZE} B`, metric: 'forwarded packets/s', unit: 'pps', better: 'higher' };
        const cpu: RowBase = { ...common, case: `forward ${SIZE} B, CPU per packet`, metric: 'relay CPU time per forwarded packet', unit: 'us', better: 'lower' };
        const lat = (q: 'p50' | 'p99'): RowBase => ({ ...common, case: `added latency, ${q}`, metric: `${q} round trip minus kernel forwarding`, unit: 'us', better: 'lower' });
        // The kernel has no relay process: only its rate, and its round trips as the baseline.
        const bases = r.kind === 'reference' ? [rate] : [rate, cpu, lat('p50'), lat('p99')];
        const argv = r.argv;
        if (argv !== null && !Array.isArray(argv)) {
          rows.push(...bases.map((b) => unavailableRow(b, argv.unavailable)));
          continue;
        }
        ctx.log(`relay: ${r.impl}`);
        const measured = await attemptRows(ctx, bases, async () => {
          const m = await measure(ctx, topo, argv, r.impl);
          const details = { sentPerRun: ctx.options.relayPackets, deliveredToSink: median(m.delivered), rttP50us: median(m.p50), rttP99us: median(m.p99) };
          if (argv === null) {
            baseline = m;
            return [measuredRow(rate, m.rate, details)];
          }
          const out = [measuredRow(rate, m.rate, { ...details, rssMB: mb(Math.max(...m.rssKb)) }), measuredRow(cpu, m.cpuUsPerPacket)];
          for (const q of ['p50', 'p99'] as const) {
            if (baseline === undefined) {
              out.push({ ...lat(q), status: 'failed', reason: 'no kernel-forwarding baseline (its run failed)' });
              continue;
            }
            const base = median(baseline[q]);
            out.push(measuredRow(lat(q), m[q].map((v) => v - base), { withRelayUs: median(m[q]), kernelForwardingUs: base }));
          }
          return out;
        });
        rows.push(...measured);
      }
    } finally {
      await topo.destroy();
    }
    relateByCase(rows);
    const pick = (c: string): Row | undefined => rows.find((r) => r.kind === 'ip6sock' && r.case === c);
    return {
      rows: byCase(rows),
      targets: [
        ratioTarget('router-alert relay, forwarded packets/s', pick(`forward ${SIZE} B`), 0.8),
        costTarget("router-alert relay, capacity = C's CPU per packet / ours", pick(`forward ${SIZE} B, CPU per packet`), 0.8),
      ],
      notes: [
        `each run: ${ctx.options.relayPackets.toLocaleString('en')} datagrams from the C blaster, router alert ${RA_VALUE}; a relay's rate is its own (first to last forward), the kernel's is measured at the sink`,
        "a relay's CPU per packet includes the kernel work its sendto() does: the output path and, over veth, the receiver's input path",
        'node:dgram cannot tap router-alert packets at all, so this scenario has no dgram row',
      ],
    };
  },
};
