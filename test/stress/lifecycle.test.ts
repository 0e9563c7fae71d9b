/**
 * Lifecycle faults: a process that exits (or throws, or is told to stop) with every kind of
 * socket open, receiving, and with sends queued; worker threads terminated while their
 * sockets receive a flood; and sockets that become unreachable without close(), whose fds
 * (and with them the kernel's memberships and anycast joins) the finalizer must close.
 *
 * The processes and workers run the compiled library (dist/, built by `npm test`'s pretest
 * step) inside a sender - router - receiver chain: everything is opened in the router,
 * whose egress towards the sender is shaped so that sends queue up.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { UdpSocket } from '../../lib';
import { record } from './fuzz/record';
import { describeRoot } from '../helpers/privileged';
import { exitOf } from '../helpers/wire';
import { chain, useTopology } from '../helpers/topology';

const ENTRY = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
const SENDER = '2001:db8:1::1';
const ROUTER_IN = '2001:db8:1::2';

function requireDist(): void {
  if (!fs.existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: build it with npx tsc -p tsconfig.build.json (npm test does so in pretest)`);
}

/**
 * Opens one of everything in the namespace given as argv[2], all receiving, plus a socket
 * whose sends are queued, prints what it opened, then ends the way argv[3] says.
 */
const OPEN_EVERYTHING = `
  const { UdpSocket, MulticastSocket, RawSocket, RouterAlertSocket, AnycastGroup, createTcpServer, interfaces } = require(${JSON.stringify(ENTRY)});
  const [ns, mode] = process.argv.slice(1);
  (async () => {
    const open = [];
    const listen = (s, event) => { s.on(event, () => undefined); open.push(s); return s; };
    listen(new UdpSocket({ netns: ns, port: 7100 }), 'message');
    listen(new MulticastSocket({ netns: ns, port: 7101 }), 'message').join('ff02::13', { interface: 'eth0' });
    listen(new RawSocket({ netns: ns, protocol: 58 }), 'message');
    listen(new RouterAlertSocket({ netns: ns, value: 21 }), 'packet');
    listen(new AnycastGroup('2001:db8:5::99', { interface: 'eth0', netns: ns, port: 7102 }), 'message');
    listen(new AnycastGroup('2001:db8:5::98', { interface: 'eth0', netns: ns }), 'close');
    listen(interfaces.watch({ netns: ns }), 'link');
    const server = await createTcpServer({ netns: ns, port: 7103 });
    const tx = new UdpSocket({ netns: ns, sendBufferSize: 4096 });
    open.push(tx);
    const sends = [];
    for (let i = 0; i < 1000; i++) sends.push(tx.send(Buffer.alloc(1000), { address: ${JSON.stringify(SENDER)}, port: 9 }));
    // Sends of one tick go to the kernel together in a microtask; then the queue is known.
    await new Promise((resolve) => queueMicrotask(resolve));
    console.log(JSON.stringify({ open: open.length + 1, queued: tx.queuedSends }));
    if (mode === 'exit') process.exit(0);
    if (mode === 'throw') throw Object.assign(new Error('thrown with every socket open'), { code: 'HOSTILE_TEST' });
    if (mode === 'unref') {
      for (const s of open) s.unref();
      server.unref();
      // Sends still queued when the loop empties are abandoned, not waited for.
      for (const p of sends) p.catch(() => undefined);
    }
    if (mode === 'sigterm') {
      process.once('SIGTERM', async () => {
        const results = await Promise.allSettled([...open.map((s) => s.close()), new Promise((r) => server.close(r))]);
        const codes = (await Promise.allSettled(sends)).map((r) => (r.status === 'fulfilled' ? 'sent' : r.reason.code));
        console.log(JSON.stringify({ closed: results.filter((r) => r.status === 'fulfilled').length, rejected: codes.filter((c) => c === 'ERR_SOCKET_CLOSED').length, sent: codes.filter((c) => c === 'sent').length }));
      });
      console.log('waiting for SIGTERM');
    }
  })();
`;

interface Exit {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runChild(args: string[], nodeFlags: string[] = []): Exit {
  const r = spawnSync(process.execPath, [...nodeFlags, '-e', ...args], { encoding: 'utf8', timeout: 30000, killSignal: 'SIGKILL' });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The datagram flood the workers' sockets receive, from the sender, until stopped. */
function flood(netns: string, port: number): { stop(): Promise<number> } {
  const tx = new UdpSocket({ netns });
  let running = true;
  let sent = 0;
  const loop = (async () => {
    const payload = Buffer.alloc(100);
    while (running) {
      // Batches, then a turn of the event loop: the flood must not starve the test itself.
      for (let i = 0; i < 32; i++) tx.send(payload, { address: ROUTER_IN, port }).then(() => sent++, () => undefined);
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await tx.close();
      return sent;
    },
  };
}

const WORKER = `
  const { parentPort, workerData } = require('node:worker_threads');
  const { UdpSocket, MulticastSocket, RawSocket } = require(${JSON.stringify(ENTRY)});
  const { ns, port } = workerData;
  let received = 0;
  const counted = () => { if (++received === 10) parentPort.postMessage('receiving'); };
  new UdpSocket({ netns: ns, port, batchSize: 4 }).on('message', counted);
  const mc = new MulticastSocket({ netns: ns, port: port + 1, reuseAddr: true });
  mc.join('ff02::1:7', { interface: 'eth0' });
  mc.on('message', () => undefined);
  new RawSocket({ netns: ns, protocol: 58 }).on('message', () => undefined);
  const tx = new UdpSocket({ netns: ns, sendBufferSize: 4096 });
  for (let i = 0; i < 500; i++) tx.send(Buffer.alloc(1000), { address: ${JSON.stringify(SENDER)}, port: 9 }).catch(() => undefined);
  // The iterator path too: a consumer that is slower than the flood.
  (async () => { for await (const m of new UdpSocket({ netns: ns, port: port + 2 })) { void m; await new Promise((r) => setTimeout(r, 1)); } })();
`;

/**
 * Makes `count` objects of each kind and drops every reference to them, unclosed; after a
 * few garbage collections the process must hold exactly the fds it held before. Prints the
 * counts per kind as JSON.
 */
const UNREACHABLE = `
  const fs = require('node:fs');
  const { UdpSocket, MulticastSocket, RawSocket, RouterAlertSocket, AnycastGroup } = require(${JSON.stringify(ENTRY)});
  const [ns, count] = [process.argv[1], Number(process.argv[2])];
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const collect = async () => { for (let i = 0; i < 20; i++) { global.gc(); await new Promise((r) => setImmediate(r)); } };
  const hex = (i) => (i + 1).toString(16);
  const kinds = {
    'UdpSocket': () => new UdpSocket({ netns: ns }),
    'UdpSocket bound to a device': () => new UdpSocket({ netns: ns, device: 'eth0' }),
    'MulticastSocket with a membership': (i) => new MulticastSocket({ netns: ns }).join('ff02::1:' + hex(i), { interface: 'eth0' }),
    'RawSocket': () => new RawSocket({ netns: ns, protocol: 58 }),
    'RouterAlertSocket': (i) => new RouterAlertSocket({ netns: ns, value: 1000 + i }),
    'AnycastGroup': (i) => new AnycastGroup('2001:db8:7::' + hex(i), { interface: 'eth0', netns: ns }),
    'AnycastGroup serving a port': (i) => new AnycastGroup('2001:db8:8::' + hex(i), { interface: 'eth0', netns: ns, port: 0 }),
  };
  (async () => {
    const out = {};
    for (const [kind, make] of Object.entries(kinds)) {
      await collect();
      const before = fds();
      // Device sockets and memberships all follow their links through one watcher shared per
      // namespace: forty subscribers, and no MaxListenersExceededWarning on stderr.
      const n = count;
      (() => { for (let i = 0; i < n; i++) make(i); })();
      const during = fds();
      await collect();
      out[kind] = { made: n, before, during, after: fds() };
    }
    // A socket with sends queued is kept alive until they have left, then collected.
    let received = 0;
    const rx = new UdpSocket({ netns: process.argv[3], port: 7200 });
    rx.on('message', () => received++);
    await collect();
    const before = fds();
    const queued = await (async () => {
      const tx = new UdpSocket({ netns: ns, sendBufferSize: 4096 });
      for (let i = 0; i < 300; i++) tx.send(Buffer.alloc(1000), { address: ${JSON.stringify(SENDER)}, port: 7200 });
      await new Promise((resolve) => queueMicrotask(resolve));
      return tx.queuedSends;
    })();
    const during = fds();
    for (let i = 0; i < 1000 && received < 300; i++) { global.gc(); await new Promise((r) => setTimeout(r, 5)); }
    await collect();
    out['UdpSocket with queued sends'] = { made: 1, queued, received, before, during, after: fds() };
    await rx.close();
    console.log(JSON.stringify(out));
  })();
`;

describeRoot('process exit, worker termination and finalizers with open sockets', () => {
  const topo = useTopology(() => chain());

  beforeAll(async () => {
    requireDist();
    // The router's egress to the sender is shaped, so a tiny send buffer fills and sends queue.
    await topo.exec('router', ['tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', '20mbit', 'burst', '4kb', 'limit', '8mb']);
    await topo.exec('router', ['ping', '-6', '-c', '1', '-W', '2', SENDER]);
  });

  test('process.exit(0) with every kind of socket open, receiving and with sends queued: exit status 0', () => {
    const r = runChild([OPEN_EVERYTHING, topo.ns('router'), 'exit']);
    expect(r).toMatchObject({ status: 0, signal: null, stderr: '' });
    const opened = JSON.parse(r.stdout) as { open: number; queued: number };
    expect(opened.queued).toBeGreaterThan(0);
    record('lifecycle', { test: 'process.exit', objectsOpen: opened.open, queued: opened.queued, status: r.status });
  });

  test('an uncaught exception with everything open: status 1 and the error, no abort or crash', () => {
    const r = runChild([OPEN_EVERYTHING, topo.ns('router'), 'throw']);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('thrown with every socket open');
    expect(r.stderr).not.toMatch(/FATAL|Assertion|Abort|Segmentation|core dumped/i);
    record('lifecycle', { test: 'uncaught exception', status: r.status });
  });

  test('everything unref()ed: the process ends by itself once its work is done', () => {
    const r = runChild([OPEN_EVERYTHING, topo.ns('router'), 'unref']);
    expect(r).toMatchObject({ status: 0, signal: null, stderr: '' });
    record('lifecycle', { test: 'unref', status: r.status });
  });

  test('SIGTERM handled by closing everything: queued sends rejected, process ends with status 0', async () => {
    const child = spawn(process.execPath, ['-e', OPEN_EVERYTHING, topo.ns('router'), 'sigterm'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (signalled || !stdout.includes('waiting for SIGTERM')) return;
      signalled = true;
      child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [status, signal] = await exitOf(child, 30000);
    expect({ status, signal, stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    const lines = stdout.trim().split('\n');
    const opened = JSON.parse(lines[0]) as { open: number; queued: number };
    const closed = JSON.parse(lines[lines.length - 1]) as { closed: number; rejected: number; sent: number };
    expect(closed.closed).toBe(opened.open);
    expect(closed.rejected + closed.sent).toBe(1000);
    expect(closed.rejected).toBeGreaterThan(0);
    record('lifecycle', { test: 'SIGTERM close', objectsClosed: closed.closed, sendsRejected: closed.rejected, sendsSent: closed.sent });
  }, 40000);

  test('worker.terminate() while its sockets receive a flood and have sends queued: no crash, every time', async () => {
    const ROUNDS = 12;
    const exitCodes: number[] = [];
    let flooded = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const port = 7300 + round * 4;
      const stream = flood(topo.ns('sender'), port);
      let stopped = false;
      let worker: Worker | undefined;
      try {
        worker = new Worker(WORKER, { eval: true, workerData: { ns: topo.ns('router'), port } });
        const w = worker;
        const exited = new Promise<number>((resolve) => w.once('exit', resolve));
        const errors: Error[] = [];
        w.on('error', (err) => errors.push(err));
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`round ${round}: the worker never reported receiving`)), 10000);
          w.once('message', () => resolve());
        }).finally(() => clearTimeout(timer));
        // Terminate at a different point of the worker's event loop each round.
        if (round % 3 === 1) await new Promise((resolve) => setImmediate(resolve));
        if (round % 3 === 2) await new Promise((resolve) => setTimeout(resolve, round));
        exitCodes.push(await w.terminate());
        expect(await exited).toBe(1);
        expect(errors).toEqual([]);
        stopped = true;
        flooded += await stream.stop();
      } finally {
        // A failed round must not leave its worker running or its flood looping forever.
        if (!stopped) {
          await worker?.terminate();
          await stream.stop();
        }
      }
    }
    expect(exitCodes).toEqual(Array.from({ length: ROUNDS }, () => 1));
    // This process is unharmed: a socket here still sends and receives.
    await using rx = new UdpSocket({ netns: topo.ns('router'), port: 7299 });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    const got = new Promise<string>((resolve) => rx.once('message', (d: Buffer) => resolve(d.toString())));
    await tx.send('still alive', { address: ROUTER_IN, port: 7299 });
    expect(await got).toBe('still alive');
    record('lifecycle', { test: 'worker.terminate', rounds: ROUNDS, datagramsFlooded: flooded });
  }, 120000);

  test('unreachable, unclosed objects of every class: the finalizer closes their fds, memberships and joins go too', async () => {
    const COUNT = 40;
    const r = runChild([UNREACHABLE, topo.ns('router'), String(COUNT), topo.ns('sender')], ['--expose-gc']);
    expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    const out = JSON.parse(r.stdout) as Record<string, { made: number; before: number; during: number; after: number; queued?: number; received?: number }>;
    expect(Object.keys(out)).toHaveLength(8);
    for (const [kind, counts] of Object.entries(out)) {
      // Each object held at least one fd, and after collection none is left.
      expect({ kind, opened: counts.during - counts.before >= counts.made, after: counts.after }).toEqual({ kind, opened: true, after: counts.before });
    }
    expect(out['UdpSocket with queued sends'].queued).toBeGreaterThan(0);
    expect(out['UdpSocket with queued sends'].received).toBe(300);
    // The kernel forgot the memberships and anycast joins along with the fds.
    const igmp6 = (await topo.exec('router', ['cat', '/proc/net/igmp6'])).stdout;
    const anycast6 = (await topo.exec('router', ['cat', '/proc/net/anycast6'])).stdout;
    expect(igmp6).not.toMatch(/ff020000000000000000000000010001/);
    expect(anycast6).not.toMatch(/20010db800070000/);
    expect(anycast6).not.toMatch(/20010db800080000/);
    record('lifecycle', { test: 'finalizer', perKind: out });
  }, 60000);
});
