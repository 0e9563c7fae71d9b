/**
 * Receive: the C blaster (sendmmsg, connected, full rate) in host a sends a fixed number of
 * datagrams to host b, where one receiver at a time counts them: the C recvmmsg sink (the
 * machine's limit), node:dgram, and ip6sock. Unicast with UdpSocket and multicast with
 * MulticastSocket (joined on eth0), 64- and 1,200-byte payloads. The multicast cases also
 * have the sink with --info, which asks the kernel for the per-datagram information that
 * ip6sock asks for: the part of ip6sock's gap to C that is the kernel's work, not its own.
 *
 * Every receiver has its own port and its own blaster process; all of them stay up for the
 * whole case while the runs go round-robin (interleave()), one blaster sending at a time.
 *
 * Two numbers per run: delivered packets/s (the receiver's own rate between its first and
 * last stamps; drops are sent - received, and the namespace's Udp6RcvbufErrors count the
 * datagrams a full socket buffer refused) and the receiver's CPU time per packet.
 * @packageDocumentation
 */
import { hostPair, type Topology } from '../../packages/testbed/src';
import { multicastSocket } from '../ip6sock';
import * as fs from 'node:fs';
import {
  byCase,
  closePeers,
  Context,
  costTarget,
  counterReport,
  cpuPerPacketUs,
  interleave,
  mb,
  measuredRow,
  median,
  num,
  Peer,
  ratioTarget,
  rateOf,
  RECEIVE_BUFFER,
  relateByCase,
  Row,
  RowBase,
  Scenario,
  ScenarioResult,
  snmp6,
  startPeer,
  timeoutFor,
  unavailableRow,
} from '../runner';

const PORT = 7030;
/** RFC 6676 documentation multicast (ff0X::db8:0:0/96), site scope. */
export const RECEIVE_GROUP = 'ff05::db8:0:1';

type Transport = 'unicast' | 'multicast';

/** The two ways to receive with a MulticastSocket: one event per datagram, or one per read. */
const MESSAGE_IMPL = "ip6sock MulticastSocket, 'message'";
const BATCH_IMPL = "ip6sock MulticastSocket, 'batch'";
/** The same two, lean: bound to the device, without PKTINFO and hop limit (receiver --lean). */
const LEAN_MESSAGE_IMPL = "ip6sock MulticastSocket, 'message', lean";
const LEAN_BATCH_IMPL = "ip6sock MulticastSocket, 'batch', lean";
/** The MulticastSocket receivers: row name, receiver role arguments, port offset. */
const MULTICAST_RECEIVERS: ReadonlyArray<readonly [string, readonly string[], number]> = [
  [MESSAGE_IMPL, ['--impl', 'ip6sock-multicast'], 2],
  [BATCH_IMPL, ['--impl', 'ip6sock-multicast-batch'], 3],
  [LEAN_MESSAGE_IMPL, ['--impl', 'ip6sock-multicast', '--lean'], 5],
  [LEAN_BATCH_IMPL, ['--impl', 'ip6sock-multicast-batch', '--lean'], 6],
];
/** The C sink asking for what ip6sock's UDP sockets ask for of every datagram (sink --info). */
const INFO_IMPL = 'C recvmmsg, same info as ip6sock';

interface Receiver {
  readonly base: Omit<RowBase, 'case'>;
  readonly port: number;
  /** argv, or why this receiver cannot run. */
  readonly argv: string[] | { unavailable: string };
}

function receivers(ctx: Context, transport: Transport, rcvbuf = RECEIVE_BUFFER): Receiver[] {
  const mc = transport === 'multicast' ? ['--group', RECEIVE_GROUP, '--ifname', 'eth0'] : [];
  const buf = ['--rcvbuf', String(rcvbuf)];
  const common = { metric: 'delivered packets/s', unit: 'pps', better: 'higher' } as const;
  const ip6sock = multicastSocket();
  return [
    { base: { ...common, impl: 'C recvmmsg', kind: 'c' }, port: PORT, argv: [ctx.bin.sink, '--port', String(PORT), ...buf, ...mc] },
    // A reference, not 'c': "vs C" and the targets stay against the bare sink.
    ...(transport === 'multicast'
      ? [{ base: { ...common, impl: INFO_IMPL, kind: 'reference' as const }, port: PORT + 4, argv: [ctx.bin.sink, '--port', String(PORT + 4), '--info', ...buf, ...mc] }]
      : []),
    { base: { ...common, impl: 'node:dgram', kind: 'dgram' }, port: PORT + 1, argv: ctx.node('receiver', ['--impl', 'dgram', '--port', PORT + 1, ...buf, ...mc]) },
    ...(transport === 'unicast'
      ? [{ base: { ...common, impl: 'ip6sock UdpSocket', kind: 'ip6sock' as const }, port: PORT + 2, argv: ctx.node('receiver', ['--impl', 'ip6sock', '--port', PORT + 2, ...buf]) }]
      : MULTICAST_RECEIVERS.map(([impl, args, offset]) => ({
          base: { ...common, impl, kind: 'ip6sock' as const },
          port: PORT + offset,
          argv: ip6sock.ok ? ctx.node('receiver', [...args, '--port', PORT + offset, ...buf, ...mc]) : { unavailable: ip6sock.reason },
        }))),
  ];
}

interface Sample {
  pps: number;
  sent: number;
  received: number;
  rcvbufErrors: number;
  blasterPps: number;
  cpuUsPerPacket: number;
  rssKb: number;
}

/** How long a receiver reads nothing in the backlog case; the blast (0.1-0.3 s) must end well before. */
const BACKLOG_HOLD_MS = 1500;
/**
 * The backlog case runs twice as often as the others: its rate swings by 10-20% from run
 * to run on a small VM (the kernel's share, measured the same for the C sink), so its
 * median needs more samples to be worth comparing.
 */
const BACKLOG_RUNS_FACTOR = 2;
/** Receive buffer of the backlog case: room for every datagram of a run (truesize ~1 KiB each). */
const backlogBuffer = (packets: number): number => Math.max(RECEIVE_BUFFER, packets * 2048);

/**
 * One run: reset the receiver, blast, wait until the receiver is idle, read its report.
 * With `backlog`, the receiver first stops reading (hold) while the blaster fills its
 * buffer, then drains it in full batches: its rate from its first to its last datagram is
 * then its capacity, with no wake-ups in between and nothing but itself to limit it.
 */
async function once(blaster: Peer, rx: Peer, netns: string, packets: number, backlog = false): Promise<Sample> {
  await rx.request('reset', 5000);
  const before = snmp6(netns);
  if (backlog) await rx.request(`hold ${BACKLOG_HOLD_MS}`, 5000);
  const tx = await blaster.request(`send ${packets}`, timeoutFor(packets));
  const blastMs = num(tx, 'elapsedNs') / 1e6;
  if (backlog && blastMs > BACKLOG_HOLD_MS * 0.8) throw new Error(`the blast took ${Math.round(blastMs)} ms, too close to the ${BACKLOG_HOLD_MS} ms the receiver holds off`);
  const report = counterReport(await rx.request('report 300 30000', 40_000));
  const after = snmp6(netns);
  const sent = num(tx, 'sent');
  return {
    pps: rateOf(report),
    sent,
    received: report.received,
    rcvbufErrors: (after.Udp6RcvbufErrors ?? 0) - (before.Udp6RcvbufErrors ?? 0),
    blasterPps: (sent * 1e6) / blastMs,
    cpuUsPerPacket: cpuPerPacketUs(report),
    rssKb: report.rssKb,
  };
}

/** A receiver with its own blaster, both started; a failed start is kept as the Error. */
interface Pair {
  r: Receiver;
  blaster: Peer | Error;
  rx: Peer | Error;
}

async function startPair(ctx: Context, topo: Topology<'a' | 'b'>, r: Receiver, argv: string[], dst: string, size: number): Promise<Pair> {
  const blasterArgv = [ctx.bin.blaster, '--dst', dst, '--port', String(r.port), '--size', String(size), '--ifname', 'eth0', '--connect'];
  return {
    r,
    blaster: await startPeer(topo, 'a', blasterArgv, { label: `C blaster for ${r.base.impl}`, cpu: ctx.cpu.traffic }),
    rx: await startPeer(topo, 'b', argv, { label: r.base.impl, cpu: ctx.cpu.measured }),
  };
}

/** Runs every pair round-robin (see interleave), one sample per run. */
function runPairs(ctx: Context, what: string, pairs: Pair[], netns: string, packets: number, backlog: boolean): Promise<Array<Sample[] | Error>> {
  return interleave(
    ctx,
    what,
    pairs.map(({ r, blaster, rx }) => ({
      label: r.base.impl,
      once: () => {
        if (blaster instanceof Error) throw blaster;
        if (rx instanceof Error) throw rx;
        return once(blaster, rx, netns, packets, backlog);
      },
    })),
    backlog ? ctx.options.runs * BACKLOG_RUNS_FACTOR : ctx.options.runs,
  );
}

/** Sets net.core.rmem_max for the length of `fn` (SO_RCVBUF is capped by it), then restores it. */
async function withRmemMax<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  const file = '/proc/sys/net/core/rmem_max';
  const old = fs.readFileSync(file, 'utf8').trim();
  if (Number(old) >= bytes) return fn();
  fs.writeFileSync(file, String(bytes));
  try {
    return await fn();
  } finally {
    fs.writeFileSync(file, old);
  }
}

/** The two rows of one receiver in one case; `spread` adds the lowest and highest rate. */
function rowsOf(rate: RowBase, cpu: RowBase, samples: Sample[] | Error, spread = false): Row[] {
  if (samples instanceof Error) return [rate, cpu].map((b) => ({ ...b, status: 'failed' as const, reason: samples.message }));
  const rates = samples.map((s) => s.pps);
  const details = {
    ...(spread ? { lowestPps: Math.round(Math.min(...rates)), highestPps: Math.round(Math.max(...rates)) } : {}),
    sentPerRun: median(samples.map((s) => s.sent)),
    received: median(samples.map((s) => s.received)),
    droppedPct: median(samples.map((s) => (100 * (s.sent - s.received)) / s.sent)),
    rcvbufErrors: median(samples.map((s) => s.rcvbufErrors)),
    blasterPps: median(samples.map((s) => s.blasterPps)),
    rssMB: mb(Math.max(...samples.map((s) => s.rssKb))),
  };
  return [measuredRow(rate, rates, details), measuredRow(cpu, samples.map((s) => s.cpuUsPerPacket), { received: details.received })];
}

export const receive: Scenario = {
  name: 'receive',
  title: 'Receive: C blaster -> one receiver at a time; delivered packets/s and CPU per packet',
  async run(ctx): Promise<ScenarioResult> {
    const rows: Row[] = [];
    const packets = ctx.options.receivePackets;
    const topo = await hostPair();
    try {
      const netns = topo.ns('b');
      for (const transport of ['unicast', 'multicast'] as const) {
        for (const size of ctx.options.sizes) {
          const caseName = `${transport} ${size} B`;
          const dst = transport === 'unicast' ? topo.address('b') : RECEIVE_GROUP;
          const bases = (r: Receiver): [RowBase, RowBase] => [
            { ...r.base, case: caseName },
            { ...r.base, case: `${caseName}, CPU per packet`, metric: 'receiver CPU time per packet', unit: 'us', better: 'lower' },
          ];
          const runnable: Pair[] = [];
          try {
            for (const r of receivers(ctx, transport)) {
              const argv = r.argv;
              if (!Array.isArray(argv)) {
                rows.push(...bases(r).map((b) => unavailableRow(b, argv.unavailable)));
                continue;
              }
              runnable.push(await startPair(ctx, topo, r, argv, dst, size));
            }
            ctx.log(`receive ${caseName}: ${runnable.map((x) => x.r.base.impl).join(', ')}`);
            const results = await runPairs(ctx, `receive ${caseName}`, runnable, netns, packets, false);
            runnable.forEach(({ r }, i) => rows.push(...rowsOf(...bases(r), results[i])));
          } finally {
            await closePeers(runnable.flatMap((x) => [x.blaster, x.rx]));
          }
        }
      }
      // The backlog case: multicast, the smallest size, a buffer that holds a whole run.
      const packetsBacklog = Math.min(packets, 100_000);
      const rcvbuf = backlogBuffer(packetsBacklog);
      const size = Math.min(...ctx.options.sizes);
      const caseName = `multicast ${size} B, backlog of ${packetsBacklog.toLocaleString('en')}`;
      await withRmemMax(rcvbuf, async () => {
        const runnable: Pair[] = [];
        try {
          for (const r of receivers(ctx, 'multicast', rcvbuf)) {
            if (Array.isArray(r.argv)) runnable.push(await startPair(ctx, topo, r, r.argv, RECEIVE_GROUP, size)); // else reported above
          }
          const results = await runPairs(ctx, `receive ${caseName}`, runnable, netns, packetsBacklog, true);
          runnable.forEach(({ r }, i) =>
            rows.push(
              ...rowsOf(
                { ...r.base, case: caseName, metric: 'drained packets/s' },
                { ...r.base, case: `${caseName}, CPU per packet`, metric: 'receiver CPU time per packet', unit: 'us', better: 'lower' },
                results[i],
                true,
              ),
            ),
          );
        } finally {
          await closePeers(runnable.flatMap((x) => [x.blaster, x.rx]));
        }
      });
    } finally {
      await topo.destroy();
    }
    relateByCase(rows);
    // ip6sock against the C sink that asks for the same per-datagram information (which the
    // lean rows do not ask for).
    for (const row of rows) {
      if (row.impl === LEAN_MESSAGE_IMPL || row.impl === LEAN_BATCH_IMPL) continue;
      const same = rows.find((r) => r.case === row.case && r.impl === INFO_IMPL);
      if (row.kind !== 'ip6sock' || row.status !== 'ok' || row.value === undefined || same?.status !== 'ok' || same.value === undefined || same.value <= 0) continue;
      row.details = { vsSameInfo: row.value / same.value, ...row.details };
    }

    const pick = (c: string, impl: string): Row | undefined => rows.find((r) => r.impl === impl && r.case === c && r.status === 'ok');
    const backlog = rows.find((r) => r.case.includes('backlog') && !r.case.includes('CPU'))?.case ?? 'backlog';
    const targets = MULTICAST_RECEIVERS.flatMap(([impl]) => [
      ratioTarget(`receive, 64 B, delivered packets/s (${impl})`, pick('multicast 64 B', impl), 0.9),
      ratioTarget(`receive, 64 B, capacity = drain rate of a backlog (${impl})`, pick(backlog, impl), 0.9),
      costTarget(`receive, 64 B, CPU per packet at the blaster's rate (${impl})`, pick('multicast 64 B, CPU per packet', impl), 0.9),
    ]);
    return {
      rows: byCase(rows),
      targets,
      notes: [
        `each run: the blaster sends ${packets.toLocaleString('en')} datagrams; "delivered packets/s" is the receiver's own rate from its first to its last packet; runs alternate between the receivers`,
        'a receiver that keeps up (no drops) delivers the rate the blaster reaches, and the blaster (which runs the kernel receive path of every packet, veth) slows down when it must wake a sleeping receiver often: a fast receiver can show fewer packets/s than a slower, always-busy one',
        '"CPU per packet" is the receiver process\'s user + system time, all threads, per datagram received; at the blaster\'s rate a receiver that keeps up wakes for every two or three datagrams, so it is mostly the cost of a wake-up',
        `backlog: each receiver reads nothing for ${BACKLOG_HOLD_MS} ms while the blaster fills its buffer (SO_RCVBUF raised for it, net.core.rmem_max raised for the run and restored), then drains it in full batches: its rate from first to last datagram is its capacity, the saturated case; median of ${ctx.options.runs * BACKLOG_RUNS_FACTOR} runs (lowestPps, highestPps: the spread)`,
        `"${INFO_IMPL}" (multicast only) is the C sink with --info: it also asks for the source address, IPV6_PKTINFO (destination, arrival interface) and IPV6_HOPLIMIT of every datagram, as ip6sock's UDP sockets do, and reads them; it separates the kernel's cost of that information from ip6sock's own. "vs C" stays against the bare sink; vsSameInfo is an ip6sock row against this one`,
        `"lean" MulticastSockets are bound to the device (device: 'eth0') with receivePacketInfo and receiveHopLimit false: the kernel keeps the membership to the device and hands over payload and source only (info.destination and info.hopLimit are null)`,
        `every receiver asks for the same SO_RCVBUF of ${RECEIVE_BUFFER / 1048576} MiB (capped by net.core.rmem_max); the C blaster is connect()ed (no per-datagram route lookup)`,
      ],
    };
  },
};
