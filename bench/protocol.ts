/**
 * The line protocol between the bench and the processes it starts inside namespaces, child
 * side. The C programs (bench/c/common.h) speak it too, so the bench treats a C receiver
 * and a Node one the same way:
 *
 * - the child writes one JSON object per line on stdout, the first {"event":"ready",...};
 * - the bench writes one command per line on stdin and reads one reply per command
 *   (an object with `error` when the command failed);
 * - "quit", or EOF on stdin (the bench went away), ends the child; --max-seconds bounds it.
 *
 * Receivers count with the same rule as the C sink: a time stamp at the first packet and then
 * every 64 packets (C: after every batch); the rate is (c1 - c0) / (t1 - t0).
 * @packageDocumentation
 */
import type * as dgram from 'node:dgram';
import * as readline from 'node:readline';

/** One reply line. */
export type Reply = Record<string, unknown>;

/** A command handler: the words after the command name, in order. */
export type Handler = (args: string[]) => Reply | Promise<Reply>;

/** What every receiver reports (C sink and relay, Node receiver and relay). */
export interface CounterReport {
  /** Packets handled since the last reset (received, or forwarded by a relay). */
  received: number;
  bytes: number;
  /** Relay: packets not forwarded. */
  other: number;
  /** Count and time (ns, any origin) at the first stamp and at the last one. */
  c0: number;
  t0: number;
  c1: number;
  t1: number;
  /** The socket's drop counter (SO_MEMINFO) where the implementation exposes it, else null. */
  kernelDrops: number | null;
  /** CPU time the whole process used since the reset (user + system, every thread). */
  cpuNs: number;
  rssKb: number;
}

/** Resident set size of this process in kB. */
export function rssKb(): number {
  return Math.round(process.memoryUsage().rss / 1024);
}

function nowNs(): number {
  return Math.round(performance.now() * 1e6);
}

/** Counts packets and stamps the time every 64 of them (a clock read per packet would be measurable). */
export class Counter {
  received = 0;
  bytes = 0;
  other = 0;
  private c0 = 0;
  private t0 = 0;
  private c1 = 0;
  private t1 = 0;
  private cpu0 = process.cpuUsage();

  /** One packet of `bytes` bytes handled. */
  add(bytes: number): void {
    const n = ++this.received;
    this.bytes += bytes;
    if (n === 1 || (n & 63) === 0) {
      const t = nowNs();
      if (this.t0 === 0) {
        this.c0 = n;
        this.t0 = t;
      }
      this.c1 = n;
      this.t1 = t;
    }
  }

  reset(): void {
    this.received = this.bytes = this.other = 0;
    this.c0 = this.t0 = this.c1 = this.t1 = 0;
    this.cpu0 = process.cpuUsage();
  }

  /** Resolves once nothing was counted for `idleMs`, or after `maxMs` at the latest. */
  idle(idleMs: number, maxMs: number): Promise<void> {
    return new Promise((resolve) => {
      const start = Date.now();
      let seen = this.received + this.other;
      let lastChange = start;
      const timer = setInterval(() => {
        const now = Date.now();
        const total = this.received + this.other;
        if (total !== seen) {
          seen = total;
          lastChange = now;
        }
        if (now - lastChange >= idleMs || now - start >= maxMs) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
    });
  }

  /** The report for the bench (the caller adds kernel drops). */
  report(kernelDrops: number | null): CounterReport {
    const cpu = process.cpuUsage(this.cpu0);
    return {
      received: this.received,
      bytes: this.bytes,
      other: this.other,
      c0: this.c0,
      t0: this.t0,
      c1: this.c1,
      t1: this.t1,
      kernelDrops,
      cpuNs: (cpu.user + cpu.system) * 1000,
      rssKb: rssKb(),
    };
  }
}

/**
 * reset / report IDLE_MS MAX_MS / hold MS, the commands every receiver answers. hold: after
 * the answer, the event loop blocks for MS ms (no reads), so datagrams pile up in the
 * socket's buffer and the reads after it measure how fast a backlog drains.
 */
export function counterHandlers(counter: Counter, kernelDrops: () => number | null): Record<string, Handler> {
  return {
    reset: () => {
      counter.reset();
      return { event: 'reset' };
    },
    hold: ([ms]) => {
      // After the answer is written (synchronously, see write()), before the loop polls again.
      setImmediate(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(ms)));
      return { event: 'hold' };
    },
    report: async ([idle, max]) => {
      await counter.idle(Number(idle), Number(max));
      return { ...counter.report(kernelDrops()) };
    },
  };
}

function write(reply: Reply): void {
  // Pipes are written synchronously on Linux: a reply is out before the next command is read.
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}

function message(err: unknown): string {
  return err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? err.name}: ${err.message}` : String(err);
}

/**
 * Runs the child side: says ready, answers commands one at a time in order, and on "quit",
 * EOF or the deadline closes what `cleanup` closes and exits.
 */
export function serve(ready: Reply, handlers: Record<string, Handler>, cleanup: () => Promise<void>, maxSeconds: number): void {
  const deadline = setTimeout(() => {
    process.stderr.write(`bench child: deadline of ${maxSeconds} s reached, exiting\n`);
    process.exit(3);
  }, maxSeconds * 1000);
  deadline.unref();

  let finishing = false;
  const finish = (): void => {
    if (finishing) return;
    finishing = true;
    cleanup().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`bench child: cleanup failed: ${message(err)}\n`);
        process.exit(1);
      },
    );
  };

  let queue: Promise<void> = Promise.resolve();
  const handle = async (line: string): Promise<void> => {
    const [command, ...args] = line.trim().split(/\s+/);
    if (command === '' || command === undefined) return;
    if (command === 'quit') {
      finish();
      return;
    }
    const handler = Object.prototype.hasOwnProperty.call(handlers, command) ? handlers[command] : undefined;
    if (handler === undefined) {
      write({ error: `unknown command ${JSON.stringify(command)}` });
      return;
    }
    try {
      write(await handler(args));
    } catch (err) {
      write({ error: message(err) });
    }
  };
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', (line) => {
    queue = queue.then(() => handle(line));
  });
  input.on('close', () => {
    void queue.then(finish);
  });
  write({ event: 'ready', pid: process.pid, ...ready });
}

/**
 * Readies a node:dgram socket the way every dgram role needs it: bound to [::]:port, or
 * connected to `connect`. Resolves with its close function once it is ready; rejects with
 * the socket's error.
 */
export function readyDgram(sock: dgram.Socket, port: number, connect?: string): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    const ready = (): void => {
      sock.off('error', reject);
      resolve(() => new Promise<void>((closed) => sock.close(() => closed())));
    };
    if (connect !== undefined) sock.connect(port, connect, ready);
    else sock.bind(port, '::', ready);
  });
}
