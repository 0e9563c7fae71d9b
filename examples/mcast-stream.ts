/**
 * ip6sock mcast-stream: a multicast stream and its monitor. `send` streams numbered
 * datagrams to a group at a steady rate; `receive` joins the group on one link and reports
 * rate, loss, reordering and the kernel's drops, the way a stream monitor would.
 *
 * The receiver is the lean kind: bound to its link, it leaves the membership filter to the
 * kernel and asks for no per-datagram control data (receivePacketInfo and receiveHopLimit
 * off), and takes each read's datagrams in one 'batch' call.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { interfaces, MessageBatch, MulticastSocket } from 'ip6sock';

export const summary = 'multicast stream: send numbered datagrams at a rate, or receive them and report rate and loss';
export const usage = `usage: ip6sock mcast-stream send    --interface IF [--group G] [--port N] [--rate PPS]
                                   [--size BYTES] [--count N] [--hop-limit N] [--netns NAME]
       ip6sock mcast-stream receive --interface IF [--group G] [--port N] [--source S]
                                   [--interval SECONDS] [--netns NAME]

send: streams datagrams of --size bytes (at least 8: each starts with its 64-bit sequence
number) to the group out of --interface, --rate a second (0: as fast as the kernel takes
them), --count in all (default: until stopped), in batches of one sendmmsg each.

receive: joins the group on --interface (for --source only: source-specific) and prints a
line every --interval seconds (default 1) and a total when stopped: datagrams and bits a
second, datagrams received in all, lost (gaps in the sequence), reordered (late ones, no
longer lost) and dropped by the kernel for a full receive buffer.

  --group G        the group (default ff3e::db8:5004, a source-specific-range group)
  --port N         UDP port (default 5004)`;

const DEFAULT_GROUP = 'ff3e::db8:5004';
/** Datagrams of one send batch at most (one sendmmsg, one promise). */
const BATCH = 256;
/** How often the sender wakes to send what the rate says is due. */
const TICK_MS = 5;

export async function main(args: string[], signal: AbortSignal): Promise<void> {
  const [mode, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      interface: { type: 'string' },
      group: { type: 'string', default: DEFAULT_GROUP },
      port: { type: 'string', default: '5004' },
      rate: { type: 'string', default: '1000' },
      size: { type: 'string', default: '64' },
      count: { type: 'string' },
      'hop-limit': { type: 'string', default: '1' },
      source: { type: 'string' },
      interval: { type: 'string', default: '1' },
      netns: { type: 'string' },
    },
  });
  if (values.interface === undefined) throw new Error(`--interface is required\n\n${usage}`);
  const iface = /^\d+$/.test(values.interface) ? Number(values.interface) : values.interface;
  const port = Number(values.port);
  if (mode === 'send') {
    await send({
      group: values.group,
      port,
      iface,
      rate: Number(values.rate),
      size: Number(values.size),
      count: values.count === undefined ? Infinity : Number(values.count),
      hopLimit: Number(values['hop-limit']),
      netns: values.netns,
      signal,
    });
  } else if (mode === 'receive') {
    await receive({ group: values.group, port, iface, source: values.source, intervalMs: Number(values.interval) * 1000, netns: values.netns, signal });
  } else {
    throw new Error(`say send or receive\n\n${usage}`);
  }
}

interface SendPlan {
  group: string;
  port: number;
  iface: string | number;
  rate: number;
  size: number;
  count: number;
  hopLimit: number;
  netns: string | undefined;
  signal: AbortSignal;
}

async function send(p: SendPlan): Promise<void> {
  if (!Number.isInteger(p.size) || p.size < 8 || p.size > 65507) throw new Error('--size must be 8..65507');
  if (!(p.rate >= 0)) throw new Error('--rate must be 0 or more');
  const sock = new MulticastSocket({ family: p.group.includes(':') ? 6 : 4, netns: p.netns, multicastInterface: p.iface, multicastHopLimit: p.hopLimit, signal: p.signal });
  try {
    sock.connect(p.group, p.port);
    console.error(`streaming to ${p.group} port ${p.port} on ${sock.getMulticastInterface()?.name ?? String(p.iface)}, ${p.rate || 'unlimited'} datagrams/s of ${p.size} bytes`);
    const start = performance.now();
    let sent = 0;
    while (sent < p.count && !p.signal.aborted) {
      const due = p.rate === 0 ? sent + BATCH : Math.min(p.count, Math.floor(((performance.now() - start) / 1000) * p.rate));
      if (due <= sent) {
        await sleep(TICK_MS, undefined, { signal: p.signal }).catch(() => undefined);
        continue;
      }
      const n = Math.min(BATCH, due - sent, p.count - sent);
      // One buffer per batch; each datagram is a view of its own slice of it.
      const block = Buffer.alloc(n * p.size);
      const batch = [];
      for (let i = 0; i < n; i++) {
        const data = block.subarray(i * p.size, (i + 1) * p.size);
        data.writeBigUInt64BE(BigInt(sent + i));
        batch.push({ data });
      }
      await sock.sendMany(batch);
      sent += n;
    }
    const seconds = (performance.now() - start) / 1000;
    console.log(`sent ${sent} datagrams in ${seconds.toFixed(2)} s (${Math.round(sent / seconds)}/s)`);
  } finally {
    await sock.close();
  }
}

interface ReceivePlan {
  group: string;
  port: number;
  iface: string | number;
  source: string | undefined;
  intervalMs: number;
  netns: string | undefined;
  signal: AbortSignal;
}

/** Loss and order of one numbered stream. */
class StreamCounter {
  received = 0;
  bytes = 0;
  lost = 0;
  reordered = 0;
  malformed = 0;
  private next = 0n;

  add(data: Buffer): void {
    if (data.length < 8) {
      this.malformed++;
      return;
    }
    this.received++;
    this.bytes += data.length;
    const seq = data.readBigUInt64BE(0);
    if (seq >= this.next) {
      this.lost += Number(seq - this.next);
      this.next = seq + 1n;
    } else if (this.lost > 0) {
      // A late one: counted as lost when the gap opened, so it is reordered instead.
      this.lost--;
      this.reordered++;
    }
  }
}

async function receive(p: ReceivePlan): Promise<void> {
  if (!(p.intervalMs > 0)) throw new Error('--interval must be more than 0');
  const link = interfaces.resolve(p.iface, '--interface', p.netns);
  const sock = new MulticastSocket({
    family: p.group.includes(':') ? 6 : 4,
    port: p.port,
    reuseAddr: true,
    netns: p.netns,
    signal: p.signal,
    // Lean: the kernel keeps the membership to the device; no control data per datagram.
    device: link.name,
    receivePacketInfo: false,
    receiveHopLimit: false,
    receiveBufferSize: 4 * 1024 * 1024,
  });
  const total = new StreamCounter();
  let timer: NodeJS.Timeout | undefined;
  try {
    sock.join(p.group, p.source === undefined ? { interface: link.index } : { interface: link.index, source: p.source });
    console.error(`receiving ${p.group}${p.source ? ` from ${p.source}` : ''} port ${p.port} on ${link.name} (${link.index})`);
    sock.on('batch', (batch: MessageBatch) => {
      for (let i = 0; i < batch.length; i++) total.add(batch.data(i));
    });
    sock.on('error', (err: Error) => console.error(`receive error: ${err.message}`));
    let last = { received: 0, bytes: 0, at: performance.now() };
    timer = setInterval(() => {
      const now = performance.now();
      const seconds = (now - last.at) / 1000;
      const pps = (total.received - last.received) / seconds;
      const mbps = ((total.bytes - last.bytes) * 8) / seconds / 1e6;
      console.log(`${pps.toFixed(0).padStart(8)} datagrams/s ${mbps.toFixed(2).padStart(9)} Mbit/s   ${total.received} in all, ${report(total, sock.stats.kernelDrops)}`);
      last = { received: total.received, bytes: total.bytes, at: now };
    }, p.intervalMs);
    await new Promise<void>((resolve) => {
      if (p.signal.aborted) resolve();
      p.signal.addEventListener('abort', () => resolve(), { once: true });
      sock.once('close', () => resolve());
    });
  } finally {
    clearInterval(timer);
    const drops = sock.stats.kernelDrops;
    await sock.close();
    console.log(`total: ${total.received} received, ${report(total, drops)}`);
  }
}

function report(c: StreamCounter, kernelDrops: number): string {
  const malformed = c.malformed > 0 ? `, ${c.malformed} malformed` : '';
  return `lost ${c.lost}, reordered ${c.reordered}, kernel drops ${kernelDrops}${malformed}`;
}
