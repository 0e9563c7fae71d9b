/**
 * Child role "sender": sends a fixed number of datagrams as fast as the API allows.
 *
 *   sender --impl ip6sock|dgram --mode await|window|many --dst ADDR --port P --size B
 *          [--connect] [--window 256]
 *
 * await:  the next send starts when the previous one completed (promise / callback), the
 *         way most code is written.
 * window: up to --window sends are issued without waiting, then all of them are awaited,
 *         then the next window: "send many packets without awaiting each promise".
 * many:   (ip6sock) one sendMany() of --window messages, built as an application would
 *         (a fresh array of { data, address, port } each time), awaited, then the next.
 * --connect: connect() first and send without an address (no per-datagram route lookup).
 *
 * Command "send N" -> {"sent":N,"elapsedNs":..,"rssKb":..}; the time runs from the first
 * send to the last completion.
 *
 * Backlog drain (ip6sock): "fill N" sends N datagrams from a second socket with a 4 KiB send
 * buffer, while the bench holds the path blocked, so nearly all of them wait in the native
 * queue -> {"queued":..}; from then on a 1 ms timer watches the event loop. The bench clears
 * the path, then "drain" waits for every send -> {"drained":N,"queued":..,"drainMs":..,
 * "maxGapMs":..,"ticks":..,"inOrder":true}: maxGapMs is the longest time between two ticks of
 * the timer (or from the last tick to the last completion), how long the loop was held.
 * @packageDocumentation
 */
import * as dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { UdpSocket } from '../../lib/sockets/udp';
import { readyDgram, rssKb, serve } from '../protocol';

/** Sends n datagrams; resolves when the last one has completed. */
type SendLoop = (n: number) => Promise<void>;

function ip6sockLoop(sock: UdpSocket, payload: Buffer, mode: string, windowSize: number, to: { address: string; port: number } | undefined): SendLoop {
  const opts = to ?? {};
  if (mode === 'await') {
    return async (n) => {
      for (let i = 0; i < n; i++) await sock.send(payload, opts);
    };
  }
  if (mode === 'many') {
    return async (n) => {
      for (let i = 0; i < n; ) {
        const k = Math.min(windowSize, n - i);
        const messages = [];
        for (let j = 0; j < k; j++) messages.push({ data: payload, ...opts });
        await sock.sendMany(messages);
        i += k;
      }
    };
  }
  return async (n) => {
    const pending: Array<Promise<number>> = [];
    for (let i = 0; i < n; ) {
      const k = Math.min(windowSize, n - i);
      pending.length = 0;
      for (let j = 0; j < k; j++) pending.push(sock.send(payload, opts));
      await Promise.all(pending);
      i += k;
    }
  };
}

function dgramLoop(sock: dgram.Socket, payload: Buffer, mode: string, windowSize: number, to: { address: string; port: number } | undefined): SendLoop {
  const sendOne = (cb: (err: Error | null) => void): void => {
    if (to === undefined) sock.send(payload, cb);
    else sock.send(payload, to.port, to.address, cb);
  };
  if (mode === 'await') {
    return async (n) => {
      for (let i = 0; i < n; i++) {
        await new Promise<void>((resolve, reject) => sendOne((err) => (err ? reject(err) : resolve())));
      }
    };
  }
  return (n) =>
    new Promise<void>((resolve, reject) => {
      let issued = 0;
      let done = 0;
      let failed = false;
      const onSent = (err: Error | null): void => {
        if (failed) return;
        if (err) {
          failed = true;
          reject(err);
          return;
        }
        done++;
        if (done === n) resolve();
        else if (done === issued) issueWindow();
      };
      const issueWindow = (): void => {
        const end = Math.min(n, issued + windowSize);
        while (issued < end) {
          issued++;
          sendOne(onSent);
        }
      };
      if (n === 0) resolve();
      else issueWindow();
    });
}

export async function sender(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      impl: { type: 'string' },
      mode: { type: 'string', default: 'await' },
      dst: { type: 'string' },
      port: { type: 'string' },
      size: { type: 'string', default: '64' },
      connect: { type: 'boolean', default: false },
      window: { type: 'string', default: '256' },
      'max-seconds': { type: 'string', default: '900' },
    },
  });
  const dst = values.dst ?? '';
  const port = Number(values.port);
  const mode = values.mode ?? 'await';
  if (mode !== 'await' && mode !== 'window' && mode !== 'many') throw new Error(`sender: unknown --mode ${mode}`);
  if (mode === 'many' && values.impl !== 'ip6sock') throw new Error('sender: --mode many is ip6sock only (dgram has no batch send)');
  const windowSize = Number(values.window);
  const payload = Buffer.alloc(Number(values.size), 0x5a);
  const to = values.connect ? undefined : { address: dst, port };
  let loop: SendLoop;
  let close: () => Promise<void>;

  switch (values.impl) {
    case 'ip6sock': {
      const sock = new UdpSocket();
      if (values.connect) sock.connect(dst, port);
      loop = ip6sockLoop(sock, payload, mode, windowSize, to);
      close = () => sock.close();
      break;
    }
    case 'dgram': {
      const sock = dgram.createSocket({ type: 'udp6' });
      close = values.connect ? await readyDgram(sock, port, dst) : await readyDgram(sock, 0);
      loop = dgramLoop(sock, payload, mode, windowSize, to);
      break;
    }
    default:
      throw new Error(`sender: unknown --impl ${String(values.impl)}`);
  }

  let backlog: Backlog | undefined;
  serve(
    {},
    {
      fill: async ([count]) => {
        if (values.impl !== 'ip6sock' || to === undefined) throw new Error('fill: ip6sock, unconnected only');
        backlog = await fillBacklog(Number(count), payload, to);
        return { queued: backlog.queued };
      },
      drain: async () => {
        if (backlog === undefined) throw new Error('drain: fill first');
        const b = backlog;
        backlog = undefined;
        return b.drain();
      },
      send: async ([count]) => {
        const n = Number(count);
        const t0 = process.hrtime.bigint();
        await loop(n);
        const elapsedNs = Number(process.hrtime.bigint() - t0);
        return { sent: n, elapsedNs, rssKb: rssKb() };
      },
    },
    close,
    Number(values['max-seconds']),
  );
}

/** Sends waiting behind a blocked path, and a timer watching the event loop while they drain. */
interface Backlog {
  readonly queued: number;
  drain(): Promise<Record<string, number | boolean>>;
}

async function fillBacklog(n: number, payload: Buffer, to: { address: string; port: number }): Promise<Backlog> {
  const sock = new UdpSocket({ sendBufferSize: 4096 });
  let resolved = 0;
  let inOrder = true;
  const sends: Array<Promise<void>> = [];
  for (let i = 0; i < n; i++) {
    sends.push(
      sock.send(payload, to).then(() => {
        if (resolved !== i) inOrder = false;
        resolved++;
      }),
    );
  }
  // Sends of one tick leave together in a microtask; after it the rest wait in the queue.
  await new Promise<void>((resolve) => queueMicrotask(resolve));
  const queued = sock.queuedSends;
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 1);
  return {
    queued,
    drain: async () => {
      const t0 = performance.now();
      try {
        await Promise.all(sends);
      } finally {
        clearInterval(timer);
        await sock.close();
      }
      const end = performance.now();
      maxGap = Math.max(maxGap, end - last);
      return { drained: resolved, queued, drainMs: end - t0, maxGapMs: maxGap, ticks, inOrder };
    },
  };
}
