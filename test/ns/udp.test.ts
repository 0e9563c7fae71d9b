// UdpSocket on loopback: no privilege needed. Per-packet control data, the event and
// iterator models, the close sequence, and a coded error for every bad input.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { UdpSocket, Message, MessageBatch, MessageInfo, hopByHop } from '../../lib';
import { testRoot } from '../helpers/privileged';

function nextMessage(sock: UdpSocket): Promise<[Buffer, MessageInfo]> {
  return new Promise((resolve) => sock.once('message', (data: Buffer, info: MessageInfo) => resolve([data, info])));
}

/** Waits (at most 5 s) for a condition that arriving datagrams make true. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for datagrams');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/**
 * A receiver on ::1 that records each datagram as text, and a sender; disposing closes both.
 */
/** A receiver on ::1 (with `options`) and a sender; the receiver is closed if the sender cannot open. */
function openPair(options: ConstructorParameters<typeof UdpSocket>[0] = {}): { rx: UdpSocket; tx: UdpSocket } {
  const rx = new UdpSocket({ address: '::1', ...options });
  try {
    return { rx, tx: new UdpSocket() };
  } catch (err) {
    void rx.close();
    throw err;
  }
}

function loopbackPair() {
  const { rx, tx } = openPair();
  const got: string[] = [];
  rx.on('message', (data: Buffer) => got.push(data.toString()));
  return { rx, tx, port: rx.address().port, got, [Symbol.asyncDispose]: async () => void (await Promise.all([rx.close(), tx.close()])) };
}

describe('UdpSocket on loopback', () => {
  test('IPv6: arrival interface, destination and the hop limit set per packet', async () => {
    await using rx = new UdpSocket({ address: '::1' });
    await using tx = new UdpSocket();
    const got = nextMessage(rx);
    const sent = await tx.send('hello', { address: '::1', port: rx.address().port, hopLimit: 7, interface: 'lo' });
    expect(sent).toBe(5);
    const [data, info] = await got;
    expect(data.toString()).toBe('hello');
    expect(info).toMatchObject({
      address: '::1',
      port: tx.address().port,
      family: 6,
      interface: { index: 1, name: 'lo' },
      destination: '::1',
      hopLimit: 7,
      truncated: false,
      size: 5,
    });
  });

  test('IPv4: TTL and arrival interface', async () => {
    await using rx = new UdpSocket({ family: 4, address: '127.0.0.1' });
    await using tx = new UdpSocket({ family: 4 });
    const got = nextMessage(rx);
    await tx.send(Buffer.from([1, 2, 3]), { address: '127.0.0.1', port: rx.address().port, hopLimit: 9 });
    const [data, info] = await got;
    expect([...data]).toEqual([1, 2, 3]);
    expect(info).toMatchObject({ address: '127.0.0.1', family: 4, interface: { index: 1, name: 'lo' }, destination: '127.0.0.1', hopLimit: 9 });
  });

  test('hopLimit: the option and setHopLimit() set the unicast hop limit; a per-packet one wins', async () => {
    for (const family of [6, 4] as const) {
      const loopback = family === 6 ? '::1' : '127.0.0.1';
      await using rx = new UdpSocket({ family, address: loopback });
      await using tx = new UdpSocket({ family, hopLimit: 9 });
      const to = { address: loopback, port: rx.address().port };
      const hops: Array<number | null> = [];
      for (const step of [() => tx.send('option', to), () => (tx.setHopLimit(17), tx.send('setter', to)), () => tx.send('per packet', { ...to, hopLimit: 3 })]) {
        const got = nextMessage(rx);
        await step();
        hops.push((await got)[1].hopLimit);
      }
      expect({ family, hops, now: tx.getHopLimit() }).toEqual({ family, hops: [9, 17, 3], now: 17 });
      expect(() => tx.setHopLimit(256)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    }
  });

  test('receivePacketInfo and receiveHopLimit false: the kernel leaves those fields out, the rest is as before', async () => {
    for (const family of [6, 4] as const) {
      const loopback = family === 6 ? '::1' : '127.0.0.1';
      await using lean = new UdpSocket({ family, address: loopback, receivePacketInfo: false, receiveHopLimit: false });
      await using hopOnly = new UdpSocket({ family, address: loopback, receivePacketInfo: false });
      await using tx = new UdpSocket({ family });
      for (const [rx, hopLimit] of [
        [lean, null],
        [hopOnly, 9],
      ] as const) {
        const got = nextMessage(rx);
        await tx.send('lean', { address: loopback, port: rx.address().port, hopLimit: 9 });
        const [data, info] = await got;
        expect(data.toString()).toBe('lean');
        expect(info).toMatchObject({ address: loopback, port: tx.address().port, family, interface: null, destination: null, hopLimit, size: 4, truncated: false });
      }
    }
    expect(() => new UdpSocket({ receivePacketInfo: 1 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/receivePacketInfo/) }));
    expect(() => new UdpSocket({ receiveHopLimit: 'no' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/receiveHopLimit/) }));
  });

  test('a batch of datagrams arrives whole, in order, each in its own buffer', async () => {
    await using rx = new UdpSocket({ address: '::1', batchSize: 8 });
    await using tx = new UdpSocket();
    const port = rx.address().port;
    const n = 100;
    for (let i = 0; i < n; i++) await tx.send(`m${i}`, { address: '::1', port });
    const seen: string[] = [];
    const held: Buffer[] = [];
    for await (const { data } of rx) {
      held.push(data);
      seen.push(data.toString());
      if (seen.length === n) break;
    }
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
    // Buffers handed out earlier were not overwritten by later batches.
    expect(held.map((b) => b.toString())).toEqual(seen);
    expect(rx.stats.received).toBeGreaterThanOrEqual(n);
  });

  test('datagrams longer than maxMessageSize arrive truncated and say so', async () => {
    await using rx = new UdpSocket({ address: '::1', maxMessageSize: 16 });
    await using tx = new UdpSocket();
    const got = nextMessage(rx);
    await tx.send(Buffer.alloc(100, 7), { address: '::1', port: rx.address().port });
    const [data, info] = await got;
    expect(data.length).toBe(16);
    expect(info.truncated).toBe(true);
    expect(rx.stats.truncated).toBe(1);
  });

  test('connect(): sends without an address, remoteAddress() reports the peer', async () => {
    await using rx = new UdpSocket({ address: '::1' });
    await using tx = new UdpSocket();
    tx.connect('::1', rx.address().port);
    expect(tx.remoteAddress()).toEqual({ address: '::1', port: rx.address().port, family: 6 });
    const got = nextMessage(rx);
    await tx.send('x');
    expect((await got)[0].toString()).toBe('x');
    tx.disconnect();
    await expect(tx.send('y')).rejects.toMatchObject({ code: 'EDESTADDRREQ', syscall: 'sendmsg' });
  });

  test('sendMany(): one batch, in order, each datagram with its own destination and options', async () => {
    await using rx1 = new UdpSocket({ address: '::1' });
    await using rx2 = new UdpSocket({ address: '::1' });
    await using tx = new UdpSocket();
    const seen = new Map<UdpSocket, Array<[string, number | null]>>([
      [rx1, []],
      [rx2, []],
    ]);
    for (const [rx, list] of seen) rx.on('message', (data: Buffer, info: MessageInfo) => list.push([data.toString(), info.hopLimit]));
    // Destinations alternate, so the batch cannot share one address among them all.
    const messages = Array.from({ length: 40 }, (_, i) => ({
      data: `m${i}`,
      address: '::1',
      port: (i % 2 === 0 ? rx1 : rx2).address().port,
      hopLimit: 10 + i,
      ...(i % 3 === 0 ? { source: '::1', interface: 'lo' } : {}),
    }));
    const sizes = await tx.sendMany(messages);
    expect(sizes).toEqual(messages.map((m) => m.data.length));
    await until(() => seen.get(rx1)!.length + seen.get(rx2)!.length === 40);
    expect(seen.get(rx1)).toEqual(messages.filter((_, i) => i % 2 === 0).map((m) => [m.data, m.hopLimit]));
    expect(seen.get(rx2)).toEqual(messages.filter((_, i) => i % 2 === 1).map((m) => [m.data, m.hopLimit]));
    await expect(tx.sendMany([])).resolves.toEqual([]);
  });

  test('sendMany(): an invalid message rejects the whole batch and none of it leaves', async () => {
    await using pair = loopbackPair();
    const { tx, port, got } = pair;
    await expect(tx.sendMany([{ data: 'first', address: '::1', port }, { data: 'second', address: '::1', port: 70000 }])).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(tx.sendMany([{ data: 'first', address: '::1', port }, { data: 'second', address: 'not an address', port }])).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    // A send of the same tick before the bad batch is not taken back with it.
    const before = tx.send('before', { address: '::1', port });
    await expect(tx.sendMany([{ data: 'x', address: '::1', port }, null as never])).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await before;
    await tx.send('marker', { address: '::1', port });
    await until(() => got.includes('marker'));
    expect(got).toEqual(['before', 'marker']);
  });

  test('sendMany(): a huge or sparse array is refused before anything is made for it, and nothing leaves', async () => {
    await using pair = loopbackPair();
    const { tx, port, got } = pair;
    const message = { data: 'x', address: '::1', port };
    // A results array of the length was allocated first: 2^32-1 aborted the process (heap
    // out of memory), 1e7 took seconds before failing at messages[0].
    for (const length of [2 ** 32 - 1, 1e7, 65_537]) {
      const sparse: Array<typeof message> = [];
      sparse.length = length;
      sparse[0] = message;
      await expect(tx.sendMany(sparse)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('messages.length') });
    }
    // A hole is a coded error naming it, not a message of undefined.
    // eslint-disable-next-line no-sparse-arrays
    await expect(tx.sendMany([message, , message] as Array<typeof message>)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('messages[1]') });
    await tx.send('marker', { address: '::1', port });
    await until(() => got.includes('marker'));
    expect(got).toEqual(['marker']);
  });

  test('sendMany(): a datagram the kernel refuses rejects with its error and context; the others still leave', async () => {
    await using pair = loopbackPair();
    const { tx, port, got } = pair;
    const batch = tx.sendMany([
      { data: 'one', address: '::1', port },
      { data: 'lost', address: '::1', port, interface: 0x7ffffff0 },
      { data: 'two', address: '::1', port },
    ]);
    await expect(batch).rejects.toMatchObject({ code: 'ENODEV', syscall: 'sendmsg', address: '::1', port, interface: 0x7ffffff0 });
    await until(() => got.length === 2);
    expect(got).toEqual(['one', 'two']);
  });

  test('send() then close() in the same tick: the datagram still leaves, later sends are refused', async () => {
    await using rx = new UdpSocket({ address: '::1' });
    // Closed by the test in the same tick as its send; `await using` covers a failure before.
    await using tx = new UdpSocket();
    const got = nextMessage(rx);
    const sent = tx.send('last words', { address: '::1', port: rx.address().port });
    const closing = tx.close();
    await expect(tx.send('too late', { address: '::1', port: rx.address().port })).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    await expect(sent).resolves.toBe(10);
    expect((await got)[0].toString()).toBe('last words');
    await closing;
  });

  test("'batch': the datagrams of each read at once, readable only inside the listener", async () => {
    await using rx = new UdpSocket({ address: '::1', batchSize: 16 });
    await using tx = new UdpSocket({ address: '::1' });
    const n = 100;
    const sizes: number[] = [];
    const kept: Buffer[] = [];
    const infos: MessageInfo[] = [];
    let lengths = 0;
    let batches = 0;
    let stale: MessageBatch | undefined;
    rx.on('batch', (batch: MessageBatch) => {
      batches++;
      lengths += batch.length;
      for (let i = 0; i < batch.length; i++) {
        sizes.push(batch.size(i));
        kept.push(batch.data(i));
        infos.push(batch.info(i));
      }
      // The iterator yields the same datagrams as { data, info }.
      expect(Array.from(batch, (m) => m.data.toString())).toEqual(kept.slice(-batch.length).map((b) => b.toString()));
      stale = batch;
    });
    // Sent in one sendmmsg, they arrive together: many datagrams per read.
    await tx.sendMany(Array.from({ length: n }, (_, i) => ({ data: `d${'x'.repeat(i % 7)}${i}`, address: '::1', port: rx.address().port, hopLimit: 5 })));
    await until(() => lengths === n);
    expect(kept.map((b) => b.toString())).toEqual(Array.from({ length: n }, (_, i) => `d${'x'.repeat(i % 7)}${i}`));
    expect(sizes).toEqual(kept.map((b) => b.length));
    expect(batches).toBeLessThan(n); // many datagrams per call
    expect(infos[0]).toMatchObject({ address: '::1', port: tx.address().port, destination: '::1', hopLimit: 5, interface: { index: 1, name: 'lo' } });
    expect(rx.stats.received).toBe(n);
    // After its listener the batch's records belong to the next read.
    expect(() => stale!.size(0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    expect(() => stale!.data(0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    expect(() => [...stale!]).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
  });

  test("'message' and 'batch' together: each sees every datagram, 'message' first", async () => {
    await using rx = new UdpSocket({ address: '::1' });
    await using tx = new UdpSocket();
    const order: string[] = [];
    rx.on('message', (data: Buffer) => order.push(`message ${data.toString()}`));
    rx.on('batch', (batch: MessageBatch) => order.push(`batch ${Array.from(batch, (m) => m.data.toString()).join(',')}`));
    await tx.send('a', { address: '::1', port: rx.address().port });
    await until(() => order.length === 2);
    expect(order).toEqual(['message a', 'batch a']);
  });

  describe("'batch' listeners that keep no views reuse the receive memory", () => {
    /**
     * A receiver whose 'batch' listener either only reads (size, info) or keeps every
     * datagram's payload; each read is then told apart by where its bytes landed.
     */
    async function reader(options: ConstructorParameters<typeof UdpSocket>[0] = {}) {
      const { rx, tx } = openPair({ batchSize: 8, ...options });
      const state = { keep: false, seen: 0, kept: [] as Buffer[], infos: [] as MessageInfo[] };
      rx.on('batch', (batch: MessageBatch) => {
        for (let i = 0; i < batch.length; i++) {
          state.seen++;
          if (batch.size(i) !== batch.info(i).size) throw new Error('size and info disagree');
          if (state.keep) state.kept.push(batch.data(i));
          else state.infos.push(batch.info(i));
        }
      });
      const send = async (keep: boolean, texts: string[], extra: object = {}): Promise<void> => {
        state.keep = keep;
        const target = state.seen + texts.length;
        await tx.sendMany(texts.map((data) => ({ data, address: '::1', port: rx.address().port, ...extra })));
        await until(() => state.seen === target);
      };
      return { rx, tx, state, send, async [Symbol.asyncDispose]() { await rx.close(); await tx.close(); } };
    }
    const filler = (tag: string): string[] => Array.from({ length: 40 }, (_, i) => `${tag}${'z'.repeat(50)}${i}`);

    test('reads that left no view land at the start of the pool; a kept payload is never written over', async () => {
      await using r = await reader();
      await r.send(false, filler('a')); // five reads or more, none kept
      await r.send(true, ['k1']);
      const [k1] = r.state.kept;
      // Every read before it was released: k1's read was written at the start of the pool.
      expect(k1.byteOffset).toBe(0);
      await r.send(false, filler('b'));
      await r.send(true, ['k2']);
      const [, k2] = r.state.kept;
      // k1 pins the pool: what came after went on after it, and k1 is as it arrived.
      expect(k1.toString()).toBe('k1');
      expect(k2.buffer).toBe(k1.buffer);
      expect(k2.byteOffset).toBeGreaterThan(k1.byteOffset + 40 * 50);
      expect(k2.toString()).toBe('k2');
      // What the reads gave without views is whole too.
      expect(r.state.infos.map((i) => i.size)).toEqual([...filler('a'), ...filler('b')].map((t) => t.length));
    });

    test("'message' listeners, iterators and hop-by-hop headers keep their bytes", async () => {
      await using r = await reader();
      const messages: Buffer[] = [];
      r.rx.on('message', (data: Buffer) => messages.push(data));
      await r.send(false, filler('m'));
      r.rx.removeAllListeners('message');
      const iterator = r.rx[Symbol.asyncIterator]();
      await r.send(false, ['i1']);
      const item = await iterator.next();
      await iterator.return?.();
      await r.send(false, filler('n'));
      await r.send(false, filler('o'));
      expect(messages.map((m) => m.toString())).toEqual(filler('m'));
      expect((item.value as Message).data.toString()).toBe('i1');
    });

    testRoot('a hop-by-hop header read through info() is kept like a payload (needs root to send one)', async () => {
      await using r = await reader({ receiveHopByHop: true });
      await r.send(false, ['h1'], { hopByHop: [hopByHop.routerAlert(7)] });
      const header = r.state.infos[0].hopByHop;
      expect(header).not.toBeNull();
      const before = Buffer.from(header!);
      await r.send(false, filler('p'));
      await r.send(false, filler('q'));
      expect(header!.equals(before)).toBe(true);
      expect(r.state.infos[0].hopByHop?.[2]).toBe(0x05); // router alert option type
    });
  });

  test('close: ordered, idempotent, ends iterators, then everything is ERR_SOCKET_CLOSED', async () => {
    // The test closes it; `await using` (a no-op then) closes it if an assertion throws first.
    await using sock = new UdpSocket({ address: '::1' });
    const events: string[] = [];
    sock.on('close', () => events.push('close'));
    const iter = sock[Symbol.asyncIterator]();
    const pending = iter.next();
    const first = sock.close();
    expect(sock.close()).toBe(first);
    expect(sock.closed).toBe(true);
    expect(events).toEqual([]); // 'close' comes after the fd is gone, asynchronously
    await first;
    expect(events).toEqual(['close']);
    await expect(pending).resolves.toEqual({ value: undefined, done: true });
    expect(() => sock.address()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
    expect(() => sock.connect('::1', 9)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
    await expect(sock.send('x', { address: '::1', port: 9 })).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    expect(sock.ref()).toBe(sock);
    expect(sock.unref()).toBe(sock);
  });

  test('close() inside a message handler stops delivery of the rest of the batch', async () => {
    await using rx = new UdpSocket({ address: '::1' });
    await using tx = new UdpSocket();
    for (let i = 0; i < 10; i++) await tx.send('m', { address: '::1', port: rx.address().port });
    let seen = 0;
    await new Promise<void>((resolve) =>
      rx.on('message', () => {
        seen++;
        void rx.close().then(resolve);
      }),
    );
    expect(seen).toBe(1);
  });

  test('an AbortSignal closes the socket', async () => {
    const ac = new AbortController();
    await using sock = new UdpSocket({ signal: ac.signal });
    const closed = new Promise((r) => sock.once('close', r));
    ac.abort();
    await closed;
    expect(sock.closed).toBe(true);
    await using already = new UdpSocket({ signal: AbortSignal.abort() });
    await new Promise((r) => already.once('close', r));
    expect(already.closed).toBe(true);
  });

  test('10,000 open/close cycles leave the fd count where it started', async () => {
    const before = openFds();
    for (let i = 0; i < 10000; i++) {
      const s = new UdpSocket({ address: '::1' });
      if (i % 2 === 0) s.on('message', () => undefined); // half of them with a poll handle
      await s.close();
    }
    expect(openFds()).toBe(before);
  });

  test('unreachable, unclosed sockets get their fds closed by the finalizer; listening ones stay alive', () => {
    const entry = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
    const script = `
      const fs = require('node:fs');
      const { UdpSocket } = require(${JSON.stringify(entry)});
      // Sockets only, counted once start-up has settled: what the finalizer must close, and
      // nothing Node itself may open or close meanwhile.
      const isSocket = (fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd).startsWith('socket:'); } catch { return false; } };
      const fds = () => fs.readdirSync('/proc/self/fd').filter(isSocket).length;
      const collect = async () => { for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setImmediate(r)); } };
      (async () => {
        await collect();
        const before = fds();
        (() => { for (let i = 0; i < 500; i++) new UdpSocket({ address: '::1' }); })();
        const during = fds();
        await collect();
        const after = fds();
        // A socket with a 'message' listener is pinned like a dgram socket: dropping every
        // reference to it does not stop delivery.
        let port = 0;
        const got = new Promise((resolve) => {
          const rx = new UdpSocket({ address: '::1' });
          port = rx.address().port;
          rx.on('message', (data) => { resolve(data.toString()); rx.close(); });
        });
        await collect();
        const tx = new UdpSocket();
        await tx.send('still here', { address: '::1', port });
        const text = await got;
        tx.close();
        console.log(JSON.stringify({ before, during, after, text }));
      })();
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 20000 });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { before: number; during: number; after: number; text: string };
    expect(out.during).toBe(out.before + 500);
    expect(out.after).toBe(out.before);
    expect(out.text).toBe('still here');
  });

  test('works inside a worker thread, and the worker exits cleanly with a socket still open', async () => {
    const entry = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
    const code = `
      const { parentPort } = require('node:worker_threads');
      const { UdpSocket } = require(${JSON.stringify(entry)});
      const rx = new UdpSocket({ address: '::1' });
      const tx = new UdpSocket();
      rx.once('message', (data, info) => {
        parentPort.postMessage({ text: data.toString(), iface: info.interface.name });
        tx.close();
        // rx stays open and receiving: environment teardown must close it.
        process.exit(0);
      });
      tx.send('from worker', { address: '::1', port: rx.address().port });
    `;
    const worker = new Worker(code, { eval: true });
    // Listen for 'exit' from the start: when the worker exits, Node drains its last
    // messages and emits 'exit' in the same tick.
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    try {
      const message = await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(message).toEqual({ text: 'from worker', iface: 'lo' });
      await expect(exited).resolves.toBe(0);
    } finally {
      // Already gone when the test passed (terminate() is then a no-op); not left behind otherwise.
      await worker.terminate();
    }
  });
});

describe('UdpSocket rejects bad input with coded errors', () => {
  const cases: Array<[string, () => unknown, string]> = [
    ['options not an object', () => new UdpSocket('x' as never), 'ERR_INVALID_ARG_TYPE'],
    ['family 5', () => new UdpSocket({ family: 5 as never }), 'ERR_INVALID_ARG_VALUE'],
    ['family as string', () => new UdpSocket({ family: '6' as never }), 'ERR_INVALID_ARG_TYPE'],
    ['port -1', () => new UdpSocket({ port: -1 }), 'ERR_OUT_OF_RANGE'],
    ['port 65536', () => new UdpSocket({ port: 65536 }), 'ERR_OUT_OF_RANGE'],
    ['port NaN', () => new UdpSocket({ port: NaN }), 'ERR_OUT_OF_RANGE'],
    ['port 1.5', () => new UdpSocket({ port: 1.5 }), 'ERR_OUT_OF_RANGE'],
    ['port as string', () => new UdpSocket({ port: '80' as never }), 'ERR_INVALID_ARG_TYPE'],
    ['malformed address', () => new UdpSocket({ address: '2001:db8::g' }), 'ERR_INVALID_ARG_VALUE'],
    ['IPv4 address on IPv6', () => new UdpSocket({ address: '192.0.2.1' }), 'ERR_INVALID_ARG_VALUE'],
    ['IPv6 address on IPv4', () => new UdpSocket({ family: 4, address: '::1' }), 'ERR_INVALID_ARG_VALUE'],
    ['empty zone', () => new UdpSocket({ address: 'fe80::1%' }), 'ERR_INVALID_ARG_VALUE'],
    ['unknown zone', () => new UdpSocket({ address: 'fe80::1%nosuch0' }), 'ENODEV'],
    ['address not on this host', () => new UdpSocket({ address: '2001:db8::1' }), 'EADDRNOTAVAIL'],
    ['reuseAddr not boolean', () => new UdpSocket({ reuseAddr: 1 as never }), 'ERR_INVALID_ARG_TYPE'],
    ['batchSize 0', () => new UdpSocket({ batchSize: 0 }), 'ERR_OUT_OF_RANGE'],
    ['device name too long', () => new UdpSocket({ device: 'x'.repeat(16) }), 'ERR_INVALID_ARG_VALUE'],
    ['unknown device', () => new UdpSocket({ device: 'nosuch0' }), 'ENODEV'],
    ['unknown netns', () => new UdpSocket({ netns: 'ip6sock-no-such-namespace' }), 'ENOENT'],
    ['netns not a string', () => new UdpSocket({ netns: 3 as never }), 'ERR_INVALID_ARG_TYPE'],
    ['netns ..', () => new UdpSocket({ netns: '..' }), 'ERR_INVALID_ARG_VALUE'],
    ['signal not a signal', () => new UdpSocket({ signal: {} as never }), 'ERR_INVALID_ARG_TYPE'],
    ['IPv6-only option on IPv4', () => new UdpSocket({ family: 4, receiveHopByHop: true }), 'ERR_INVALID_ARG_VALUE'],
    ['hopLimit 256', () => new UdpSocket({ hopLimit: 256 }), 'ERR_OUT_OF_RANGE'],
    ['IPv4 hopLimit 0 (IP_TTL takes 1-255)', () => new UdpSocket({ family: 4, hopLimit: 0 }), 'ERR_OUT_OF_RANGE'],
    ["misspelt option: { prot: 7017 } names 'port'", () => new UdpSocket({ prot: 7017 } as never), 'ERR_INVALID_ARG_VALUE'],
  ];
  test.each(cases)('constructor: %s', (_name, fn, code) => {
    expect(fn).toThrow(expect.objectContaining({ code }));
  });

  test('unknown netns error names the namespace', () => {
    expect(() => new UdpSocket({ netns: 'ip6sock-no-such-namespace' })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'open', netns: 'ip6sock-no-such-namespace' }),
    );
  });

  test('send: every bad argument rejects with its code and the socket stays usable', async () => {
    await using sock = new UdpSocket({ address: '::1' });
    const port = sock.address().port;
    const bad: Array<[unknown, unknown, string]> = [
      [42, { address: '::1', port }, 'ERR_INVALID_ARG_TYPE'],
      [null, { address: '::1', port }, 'ERR_INVALID_ARG_TYPE'],
      ['x', 'opts', 'ERR_INVALID_ARG_TYPE'],
      ['x', { address: 'nope', port }, 'ERR_INVALID_ARG_VALUE'],
      ['x', { address: '::1' }, 'ERR_INVALID_ARG_TYPE'],
      ['x', { address: '::1', port: 70000 }, 'ERR_OUT_OF_RANGE'],
      ['x', { address: '::1', port, hopLimit: 256 }, 'ERR_OUT_OF_RANGE'],
      ['x', { address: '::1', port, hopLimit: -1 }, 'ERR_OUT_OF_RANGE'],
      ['x', { address: '::1', port, trafficClass: 300 }, 'ERR_OUT_OF_RANGE'],
      ['x', { address: '::1', port, interface: 'nosuch0' }, 'ENODEV'],
      ['x', { address: '::1', port, interface: 999999 }, 'ENODEV'],
      ['x', { address: '::1', port, interface: 0 }, 'ERR_OUT_OF_RANGE'],
      ['x', { address: '::1', port, interface: {} }, 'ERR_INVALID_ARG_TYPE'],
      ['x', { address: '::1', port, source: '192.0.2.1' }, 'ERR_INVALID_ARG_VALUE'],
      ['x', { address: '::1', port, source: '2001:db8::77' }, 'EINVAL'],
      ['x', { address: '::1', port, hopByHop: 'ra' }, 'ERR_INVALID_ARG_TYPE'],
      ['x', { address: '::1', port, hopByHop: Buffer.alloc(7) }, 'ERR_INVALID_ARG_VALUE'],
      [Buffer.alloc(70000), { address: '::1', port }, 'EMSGSIZE'],
    ];
    for (const [data, opts, code] of bad) {
      await expect(sock.send(data as never, opts as never)).rejects.toMatchObject({ code });
    }
    const got = nextMessage(sock);
    await sock.send('still fine', { address: '::1', port });
    expect((await got)[0].toString()).toBe('still fine');
  });

  test('system errors carry errno, syscall and context like Node', async () => {
    await using sock = new UdpSocket();
    const err = await sock.send('x', { address: '2001:db8::77', port: 9, source: '2001:db8::78' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'sendmsg', address: '2001:db8::77', port: 9 });
    expect(String((err as Error).message)).toContain('[2001:db8::77]:9');
  });

  test('the async iterator yields { data, info }', async () => {
    await using rx = new UdpSocket({ address: '::1' });
    await using tx = new UdpSocket();
    await tx.send('it', { address: '::1', port: rx.address().port });
    const it = rx[Symbol.asyncIterator]();
    const { value } = (await it.next()) as IteratorResult<Message>;
    expect(value.data.toString()).toBe('it');
    expect(value.info.interface).toEqual({ index: 1, name: 'lo' });
    await it.return?.();
  });
});
