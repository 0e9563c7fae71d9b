/**
 * Backpressure and overflow on a real link between two namespaces.
 *
 * Sending: a veth hands a datagram to the peer inside sendmsg(), so a socket's send buffer
 * never fills on a bare veth. A token-bucket qdisc on host a's eth0 holds packets (each
 * charged to its socket until it leaves), so with a tiny SO_SNDBUF the kernel answers
 * EAGAIN after a few datagrams and ip6sock's native queue takes over: queuedSends grows,
 * 'drain' comes, every promise resolves in order, and the receiver gets every datagram
 * in order. Nothing is lost on the way, which the kernel's own counters confirm.
 *
 * Receiving: a socket with a tiny SO_RCVBUF that nobody reads overflows. The kernel counts
 * the drops per socket, and stats.kernelDrops (read from it with SO_MEMINFO) must equal
 * what /proc/net/snmp6 and ss report, at once and after the queue is read.
 *
 * Closing: close() with sends pending rejects them (ERR_SOCKET_CLOSED) and nothing it
 * rejected ever leaves; close() inside a 'message' handler, twice, stops delivery at once.
 */
import { EventEmitter } from 'node:events';
import { UdpSocket, type MessageInfo } from '../../lib';
import { record } from '../stress/fuzz/record';
import { describeRoot } from '../helpers/privileged';
import { hostPair, useTopology, type Topology } from '../helpers/topology';

type Pair = Topology<'a' | 'b'>;

const A = '2001:db8:1::1';
const B = '2001:db8:1::2';

/** Datagrams carry their sequence number in the first four bytes. */
function datagram(seq: number, size: number): Buffer {
  const b = Buffer.alloc(size, seq & 0xff);
  b.writeUInt32BE(seq, 0);
  return b;
}

const seqOf = (data: Buffer): number => data.readUInt32BE(0);

/**
 * Resolves after the sends made so far in this tick have been handed to the kernel: a
 * socket defers them to one microtask (one sendmmsg for all), queued before this one.
 */
const afterFlush = (): Promise<void> => new Promise((resolve) => queueMicrotask(resolve));
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Resolves once `predicate` holds, checking after every event of `emitter`; rejects after `ms`. */
function until(emitter: EventEmitter, event: string, predicate: () => boolean, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (predicate()) return resolve();
    const timer = setTimeout(() => {
      emitter.removeListener(event, check);
      reject(new Error(`${what}: not within ${ms} ms`));
    }, ms);
    const check = (): void => {
      if (!predicate()) return;
      clearTimeout(timer);
      emitter.removeListener(event, check);
      resolve();
    };
    emitter.on(event, check);
  });
}

/** A counter from /proc/net/snmp6 inside a host's namespace. */
async function snmp6(topo: Pair, host: 'a' | 'b', name: string): Promise<number> {
  const { stdout } = await topo.exec(host, ['cat', '/proc/net/snmp6']);
  const line = stdout.split('\n').find((l) => l.split(/\s+/)[0] === name);
  if (line === undefined) throw new Error(`${name} not in /proc/net/snmp6`);
  return Number(line.trim().split(/\s+/)[1]);
}

/** The kernel's per-socket drop counter (the d of ss's skmem) of the UDP socket on `port`. */
async function ssDrops(topo: Pair, host: 'a' | 'b', port: number): Promise<number> {
  const { stdout } = await topo.exec(host, ['ss', '-uamnH', 'sport', '=', `:${port}`]);
  const m = /skmem:\([^)]*\bd(\d+)\)/.exec(stdout);
  if (m === null) throw new Error(`no skmem drop counter for port ${port} in: ${stdout}`);
  return Number(m[1]);
}

/** Packets the qdisc on a host's eth0 dropped (tc -s), so "nothing lost" covers the shaper too. */
async function qdiscDrops(topo: Pair, host: 'a' | 'b'): Promise<number> {
  const { stdout } = await topo.exec(host, ['tc', '-s', 'qdisc', 'show', 'dev', 'eth0']);
  const m = /dropped (\d+)/.exec(stdout);
  if (m === null) throw new Error(`no drop counter in tc output: ${stdout}`);
  return Number(m[1]);
}

describeRoot('backpressure, overflow and close under load (two namespaces)', () => {
  const topo = useTopology(() => hostPair());

  /**
   * A receiver on b (room for a whole run) that records each datagram's sequence number,
   * and a sender on a with a tiny send buffer behind the shaped link; disposing closes both.
   */
  function shaped(port: number) {
    const rx = new UdpSocket({ netns: topo.ns('b'), port, receiveBufferSize: 4 << 20 });
    let tx: UdpSocket;
    try {
      tx = new UdpSocket({ netns: topo.ns('a'), sendBufferSize: 4096 });
    } catch (err) {
      void rx.close();
      throw err;
    }
    const received: number[] = [];
    rx.on('message', (data: Buffer) => received.push(seqOf(data)));
    return { rx, tx, received, [Symbol.asyncDispose]: async () => void (await Promise.all([rx.close(), tx.close()])) };
  }

  beforeAll(async () => {
    // Shape a's egress: 20 Mbit/s, a small burst, and a queue far bigger than any socket's
    // send buffer here, so it is the socket that says EAGAIN, never the qdisc that drops.
    await topo.exec('a', ['tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', '20mbit', 'burst', '4kb', 'limit', '8mb']);
    // Neighbour discovery both ways before the bursts, so the first datagrams do not wait
    // in a neighbour queue (where they would be charged to the socket all the same).
    await topo.exec('a', ['ping', '-6', '-c', '1', '-W', '2', B]);
  });

  test('a full send queue applies backpressure: queued in order, drained, all delivered in order', async () => {
    const N = 5000;
    const SIZE = 200;
    await using pair = shaped(6000);
    const { rx, tx, received } = pair;
    let drains = 0;
    tx.on('drain', () => drains++);
    const sndbufErrorsBefore = await snmp6(topo, 'a', 'Udp6SndbufErrors');
    const qdiscDropsBefore = await qdiscDrops(topo, 'a');

    const resolvedOrder: number[] = [];
    const sizes: number[] = [];
    const sends: Array<Promise<void>> = [];
    for (let seq = 0; seq < N; seq++) {
      sends.push(
        tx.send(datagram(seq, SIZE), { address: B, port: 6000 }).then((n) => {
          resolvedOrder.push(seq);
          sizes.push(n);
        }),
      );
    }
    // Sends of one tick leave together at its end (one sendmmsg); after that, the kernel has
    // said EAGAIN and the native queue holds the rest.
    await afterFlush();
    const maxQueued = tx.queuedSends;
    expect(maxQueued).toBeGreaterThan(N / 2);
    await Promise.all(sends);
    expect(resolvedOrder).toEqual(range(N));
    expect(sizes.every((n) => n === SIZE)).toBe(true);
    expect(tx.queuedSends).toBe(0);
    expect(drains).toBeGreaterThanOrEqual(1);

    await until(rx, 'message', () => received.length >= N, 30000, `receiver got ${received.length} of ${N}`);
    expect(received).toEqual(range(N));
    expect(rx.stats.kernelDrops).toBe(0);
    // The kernel's own count of the EAGAINs it answered (udpv6_sendmsg counts each refusal
    // for lack of buffer space in Udp6SndbufErrors); each one was retried, none dropped:
    // the receiver has all N, and the shaper dropped nothing.
    const eagains = (await snmp6(topo, 'a', 'Udp6SndbufErrors')) - sndbufErrorsBefore;
    expect(eagains).toBeGreaterThan(0);
    expect(await qdiscDrops(topo, 'a')).toBe(qdiscDropsBefore);
    record('backpressure', { test: 'send queue', datagrams: N, bytes: SIZE, maxQueued, drains, eagains, delivered: received.length, inOrder: true });
  }, 60000);

  test('sendMany() through a full send buffer: one promise, resolved once the last queued datagram left, all in order', async () => {
    const N = 3000;
    const SIZE = 200;
    await using pair = shaped(6002);
    const { rx, tx, received } = pair;
    let settled = false;
    const batch = tx.sendMany(range(N).map((seq) => ({ data: datagram(seq, SIZE), address: B, port: 6002 }))).finally(() => (settled = true));
    await afterFlush();
    expect(tx.queuedSends).toBeGreaterThan(0);
    expect(settled).toBe(false);
    // A send after the batch waits behind it.
    const after = tx.send(datagram(N, SIZE), { address: B, port: 6002 });
    expect(await batch).toEqual(range(N).map(() => SIZE));
    expect(await after).toBe(SIZE);
    expect(tx.queuedSends).toBe(0);
    await until(rx, 'message', () => received.length >= N + 1, 30000, `receiver got ${received.length} of ${N + 1}`);
    expect(received).toEqual(range(N + 1));
  }, 60000);

  test('a drain of 100,000 queued sends leaves the event loop turning: a few hundred completions per turn, all in order', async () => {
    const N = 100_000;
    const SIZE = 64;
    // Block the path (8 kbit/s: a few datagrams fill the send buffer and stay there), queue
    // everything behind it, then clear it: the kernel takes the backlog as fast as it can.
    const shape = (rate: string, burst: string) => topo.exec('a', ['tc', 'qdisc', 'change', 'dev', 'eth0', 'root', 'tbf', 'rate', rate, 'burst', burst, 'limit', '8mb']);
    await shape('8kbit', '4kb');
    try {
      await using tx = new UdpSocket({ netns: topo.ns('a'), sendBufferSize: 4096 });
      const payload = Buffer.alloc(SIZE);
      let resolved = 0;
      let outOfOrder = 0;
      let wrongSize = 0;
      const sends: Array<Promise<void>> = [];
      for (let seq = 0; seq < N; seq++) {
        sends.push(
          tx.send(payload, { address: B, port: 6004 }).then((n) => {
            if (seq !== resolved) outOfOrder++;
            if (n !== SIZE) wrongSize++;
            resolved++;
          }),
        );
      }
      await afterFlush();
      const queued = tx.queuedSends;
      expect(queued).toBeGreaterThan(N - 1000);
      // One setImmediate per turn of the event loop: how many sends completed in each turn.
      let turns = 0;
      let maxPerTurn = 0;
      let seen = resolved;
      let stopped = false;
      const turn = (): void => {
        turns++;
        maxPerTurn = Math.max(maxPerTurn, resolved - seen);
        seen = resolved;
        if (!stopped) setImmediate(turn);
      };
      setImmediate(turn);
      try {
        await shape('10gbit', '1mb');
        await Promise.all(sends);
      } finally {
        stopped = true;
        // What completed since the last turn counts too: a drain that settled everything in
        // one go after the last turn must not pass as "nothing per turn".
        maxPerTurn = Math.max(maxPerTurn, resolved - seen);
      }
      expect({ resolved, outOfOrder, wrongSize, queuedSends: tx.queuedSends }).toEqual({ resolved: N, outOfOrder: 0, wrongSize: 0, queuedSends: 0 });
      // The native queue hands over at most a few hundred datagrams per turn, and settling
      // each costs O(1): the loop turned hundreds of times during the drain, never stalled.
      expect(maxPerTurn).toBeLessThanOrEqual(1024);
      expect(turns).toBeGreaterThanOrEqual(Math.floor(queued / 1024));
      record('backpressure', { test: 'drain of a large queue', datagrams: N, queued, turns, maxPerTurn });
    } finally {
      await shape('20mbit', '4kb');
    }
  }, 60000);

  test('close() with sends pending rejects them with ERR_SOCKET_CLOSED; what resolved arrives, nothing else', async () => {
    const N = 2000;
    await using pair = shaped(6001);
    const { rx, tx, received } = pair;

    const outcomes: Array<Promise<'sent' | string>> = [];
    for (let seq = 0; seq < N; seq++) {
      outcomes.push(tx.send(datagram(seq, 500), { address: B, port: 6001 }).then(() => 'sent', (err: { code?: string }) => String(err.code)));
    }
    await afterFlush();
    const queued = tx.queuedSends;
    expect(queued).toBeGreaterThan(0);
    const closing = tx.close();
    expect(tx.close()).toBe(closing);
    const results = await Promise.all(outcomes);
    await closing;

    const sent = results.filter((r) => r === 'sent').length;
    // The ones the kernel took before EAGAIN resolved; every queued one was rejected.
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(results.slice(0, sent).every((r) => r === 'sent')).toBe(true);
    expect(results.slice(sent)).toEqual(Array.from({ length: N - sent }, () => 'ERR_SOCKET_CLOSED'));
    expect(N - sent).toBe(queued);
    expect(tx.queuedSends).toBe(0);

    // A marker through the same qdisc (first in, first out) arrives after everything sent before it.
    await using marker = new UdpSocket({ netns: topo.ns('a') });
    await marker.send(datagram(0xffffffff, 8), { address: B, port: 6001 });
    await until(rx, 'message', () => received.includes(0xffffffff), 10000, 'marker');
    expect(received).toEqual([...range(sent), 0xffffffff]);
    record('backpressure', { test: 'close with sends pending', datagrams: N, resolved: sent, rejected: N - sent, delivered: received.length - 1 });
  }, 60000);

  test("close() inside a 'message' handler, twice, with sends pending: one delivery, one 'close', pending sends rejected", async () => {
    // The socket under test lives in a (shaped egress), so its own sends pile up in its queue.
    // Closed by the test itself (sock in its handler, sink at the end); `await using` closes
    // them too when an assertion throws first.
    await using sock = new UdpSocket({ netns: topo.ns('a'), port: 6002, sendBufferSize: 4096 });
    await using sink = new UdpSocket({ netns: topo.ns('b'), port: 6003 });
    await using peer = new UdpSocket({ netns: topo.ns('b') });
    const closes: number[] = [];
    sock.on('close', () => closes.push(Date.now()));

    const pending: Array<Promise<string>> = [];
    for (let seq = 0; seq < 2000; seq++) {
      pending.push(sock.send(datagram(seq, 1000), { address: B, port: 6003 }).then(() => 'sent', (err: { code?: string }) => String(err.code)));
    }
    // b's egress is not shaped: these are in sock's receive queue when their sends resolve.
    for (let i = 0; i < 20; i++) await peer.send(datagram(i, 64), { address: A, port: 6002 });

    let handled = 0;
    let arrival: string | undefined;
    let queuedAtClose = -1;
    let sameClosePromise = false;
    let closedPromise: Promise<void> | undefined;
    const done = new Promise<void>((resolve) => {
      sock.on('message', (_data: Buffer, info: MessageInfo) => {
        handled++;
        arrival = info.interface?.name;
        queuedAtClose = sock.queuedSends;
        const first = sock.close();
        sameClosePromise = sock.close() === first;
        closedPromise = first;
        void first.then(resolve);
      });
    });
    await done;
    // A third close after the fact is still the same promise, already resolved.
    expect(sock.close()).toBe(closedPromise);
    await sock.close();
    expect(handled).toBe(1);
    expect(arrival).toBe('eth0');
    expect(sameClosePromise).toBe(true);
    expect(queuedAtClose).toBeGreaterThan(0);
    expect(closes).toHaveLength(1);
    const results = await Promise.all(pending);
    const sent = results.filter((r) => r === 'sent').length;
    expect(results.slice(sent)).toEqual(Array.from({ length: 2000 - sent }, () => 'ERR_SOCKET_CLOSED'));
    expect(2000 - sent).toBeGreaterThan(0);
    await expect(sock.send('late', { address: B, port: 6003 })).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    // Nothing more is delivered after close: the other 19 datagrams stay unread.
    await new Promise((resolve) => setImmediate(resolve));
    expect(handled).toBe(1);
    expect(closes).toHaveLength(1);
    await sink.close();
    record('backpressure', { test: 'close in handler', closeCalls: 3, handled, queuedAtClose, rejected: 2000 - sent });
  }, 60000);

  test('receive-buffer overflow is counted: stats.kernelDrops equals the kernel drop counters', async () => {
    const N = 300;
    const PORT = 6100;
    // Nobody reads this socket yet (no 'message' listener: ip6sock does not poll it), and
    // its buffer holds only a few datagrams: the kernel drops the rest of the burst.
    await using rx = new UdpSocket({ netns: topo.ns('a'), port: PORT, receiveBufferSize: 1 });
    await using tx = new UdpSocket({ netns: topo.ns('b') });
    const rcvbufErrorsBefore = await snmp6(topo, 'a', 'Udp6RcvbufErrors');
    // b's egress is not shaped: each datagram has reached rx's queue (or been dropped) when
    // its send resolves.
    for (let seq = 0; seq < N; seq++) await tx.send(datagram(seq, 100), { address: A, port: PORT });
    const kernelDrops = (await snmp6(topo, 'a', 'Udp6RcvbufErrors')) - rcvbufErrorsBefore;
    expect(kernelDrops).toBeGreaterThan(0);
    expect(await ssDrops(topo, 'a', PORT)).toBe(kernelDrops);
    // Counted at once, before anything is read and with nothing arriving after the drops.
    expect(rx.stats.kernelDrops).toBe(kernelDrops);

    // Now read what was queued.
    const received: number[] = [];
    rx.on('message', (data: Buffer) => received.push(seqOf(data)));
    await until(rx, 'message', () => received.length === N - kernelDrops, 10000, `queued datagrams (${received.length} of ${N - kernelDrops})`);
    expect(rx.stats.kernelDrops).toBe(kernelDrops);
    expect(rx.stats.kernelDrops).toBe(await ssDrops(topo, 'a', PORT));
    // Every datagram is accounted for: delivered (in order) or counted as dropped.
    expect(received.length + rx.stats.kernelDrops).toBe(N);
    expect(received).toEqual([...received].sort((x, y) => x - y));
    expect(rx.stats.received).toBe(received.length);
    await rx.close();
    // Closed, the socket still tells what the kernel dropped.
    expect(rx.stats).toMatchObject({ kernelDrops, received: received.length, truncated: 0 });
    record('backpressure', { test: 'overflow', datagrams: N, delivered: received.length, kernelDrops: rx.stats.kernelDrops, snmp6RcvbufErrors: kernelDrops });
  }, 60000);
});
