// Waiting for events and watching the wire, bounded in time: shared by the packet-level tests.
import type { ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import type { MessageInfo } from '../../lib';
import type { Topology } from './topology';

/**
 * Resolves with the arguments of the next `event` (that `accept` takes, if given), or
 * rejects after `ms`.
 */
export function nextEvent<T extends unknown[]>(emitter: EventEmitter, event: string, ms = 3000, accept?: (...args: T) => boolean): Promise<T> {
  const waiting = new Promise<T>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      emitter.removeListener(event, on);
      emitter.removeListener('close', onClose);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no '${event}' within ${ms} ms`));
    }, ms);
    const on = (...args: unknown[]): void => {
      if (accept !== undefined && !accept(...(args as T))) return;
      done();
      resolve(args as T);
    };
    // A closed emitter emits nothing more: fail now rather than leave the timer running
    // after a failed test has closed it.
    const onClose = (): void => {
      done();
      reject(new Error(`closed before '${event}'`));
    };
    emitter.on(event, on);
    if (event !== 'close') emitter.once('close', onClose);
  });
  // Awaited, it still rejects; abandoned by a test that failed earlier, it is no second
  // (unhandled) failure.
  waiting.catch(() => undefined);
  return waiting;
}

/**
 * The next datagram a socket delivers (that `accept` takes, if given), or a rejection after
 * `ms` or once the socket closed.
 */
export function nextMessage(sock: EventEmitter, accept?: (data: Buffer, info: MessageInfo) => boolean, ms = 5000): Promise<[Buffer, MessageInfo]> {
  return nextEvent<[Buffer, MessageInfo]>(sock, 'message', ms, accept);
}

/**
 * The exit status and signal of `child`, killed (SIGKILL) if it has not exited after `ms`.
 * Neither the timer nor the child outlives the wait, also when the wait is abandoned.
 */
export async function exitOf(child: ChildProcess, ms: number): Promise<[number | null, NodeJS.Signals | null]> {
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  try {
    return await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/**
 * tcpdump on eth0 of `host`, capturing `count` packets that match `filter` with their hex
 * dump (-x; -vv for `verbose` decoding). Resolves once it is listening, with a function that
 * waits (at most 5 s) for the packets and returns tcpdump's output.
 */
export async function tcpdump<H extends string>(topo: Topology<H>, host: H, filter: string, opts: { count?: number; verbose?: boolean } = {}): Promise<() => Promise<string>> {
  const args = ['tcpdump', '-i', 'eth0', '-n', ...(opts.verbose ? ['-vv'] : []), '-x', '-c', String(opts.count ?? 1), '-l', filter];
  const child: ChildProcess = topo.spawn(host, args);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let startTimer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      startTimer = setTimeout(() => reject(new Error(`tcpdump did not start: ${stderr}`)), 10000);
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('listening on')) resolve();
      });
      void exited.then(() => reject(new Error(`tcpdump exited early: ${stderr}`)));
    });
  } catch (err) {
    // Not listening: nobody will call the returned function, so stop it here.
    child.kill('SIGKILL');
    throw err;
  } finally {
    // Whichever way the start ended (listening, exited early, timed out), the start timer
    // must not outlive it and keep the process alive.
    clearTimeout(startTimer);
  }
  return async () => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    const code = await exited;
    clearTimeout(timer);
    if (code !== 0) throw new Error(`tcpdump ended with ${code}: ${stderr}\n${stdout}`);
    return stdout;
  };
}

/** The packets of tcpdump -x output, each as bytes (IPv6 header first). */
export function dumpedPackets(output: string): Buffer[] {
  // One summary line per packet, then its hex dump in indented lines.
  const packets: string[] = [];
  for (const line of output.split('\n')) {
    const hex = /^\s+0x[0-9a-f]+:\s+(.*)$/.exec(line);
    if (hex) packets[packets.length - 1] += hex[1].replace(/\s+/g, '');
    else if (line.trim() !== '') packets.push('');
  }
  return packets.map((h) => Buffer.from(h, 'hex'));
}
