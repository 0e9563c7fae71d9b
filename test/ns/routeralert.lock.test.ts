// One forwarding tap per router-alert value and namespace. The kernel hands a tapped packet
// to every tap of its value, so two that forward send each packet on twice: a second
// forwarding tap is refused (ERR_ROUTER_ALERT_TAPPED), in this process and in another; an
// observer (observe: true) shares the value and never forwards; the lock goes with close()
// and with the holding process. Children run on dist/, the compiled library.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { UdpSocket, hopByHop } from '../../lib';
import { RawSocket } from '../../lib/sockets/raw';
import { RouterAlertSocket, type Ipv4RouterAlertPacket, type RouterAlertPacket, type TappedError } from '../../lib/sockets/routeralert/socket';
import { describeRoot } from '../helpers/privileged';
import { chain, useTopology } from '../helpers/topology';
import { exitOf, nextEvent } from '../helpers/wire';

const ENTRY = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
const RECEIVER = '2001:db8:2::2';

/** A thrown error, for matching its fields. */
function thrown(fn: () => unknown): TappedError {
  try {
    fn();
  } catch (err) {
    return err as TappedError;
  }
  throw new Error('did not throw');
}

/**
 * A child that opens a tap (`options`) and prints one JSON line: `{ ok: true }` while it holds
 * it (it then waits to be killed), or `{ code, pid }` when refused (and exits).
 */
function tapInChild(options: object): { child: ChildProcess; first: Promise<{ ok?: boolean; code?: string; pid?: number }> } {
  const script = `
    const lib = require(${JSON.stringify(ENTRY)});
    try {
      const tap = new lib.RouterAlertSocket(${JSON.stringify(options)});
      tap.on('warning', () => undefined);
      console.log(JSON.stringify({ ok: true }));
      setTimeout(() => undefined, 60000); // held until killed
    } catch (err) {
      console.log(JSON.stringify({ code: err.code, pid: err.pid }));
    }`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const first = new Promise<{ ok?: boolean; code?: string; pid?: number }>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`child said nothing: ${err}`)), 10_000);
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { ok?: boolean; code?: string; pid?: number });
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      if (!out.includes('\n')) reject(new Error(`child exited without a word: ${err}`));
    });
  });
  first.catch(() => undefined);
  return { child, first };
}

describe('RouterAlertSocket: the observe option and unknown keys are checked before any system call', () => {
  const cases: Array<[string, unknown, string]> = [
    ["observe 'yes'", { value: 5, observe: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
    ['observe 1', { value: 5, observe: 1 }, 'ERR_INVALID_ARG_TYPE'],
    ['observe null', { value: 5, observe: null }, 'ERR_INVALID_ARG_TYPE'],
    ['observe on IPv4, not a boolean', { family: 4, protocol: 17, observe: 'no' }, 'ERR_INVALID_ARG_TYPE'],
    ['an unknown key', { value: 5, observer: true }, 'ERR_INVALID_ARG_VALUE'],
    ['the old name of nothing: ingress', { value: 5, ingress: 'eth0' }, 'ERR_INVALID_ARG_VALUE'],
  ];
  test.each(cases)('%s', (_name, options, code) => {
    expect(() => new RouterAlertSocket(options as never)).toThrow(expect.objectContaining({ code }));
  });

  test('an unknown key is named with the nearest known one', () => {
    expect(() => new RouterAlertSocket({ value: 5, observer: true } as never)).toThrow(/options\.observer.*nearest known one is 'observe'/);
  });
});

describeRoot('RouterAlertSocket: one forwarding tap per value and namespace', () => {
  const topo = useTopology(() => chain());

  test('a second forwarding tap of the value in this process is refused, naming value, namespace and pid; after close() the value is free', async () => {
    const router = topo.ns('router');
    const first = new RouterAlertSocket({ value: 5, netns: router });
    try {
      const err = thrown(() => new RouterAlertSocket({ value: 5, netns: router }));
      expect(err).toMatchObject({ code: 'ERR_ROUTER_ALERT_TAPPED', family: 6, value: 5, netns: router, pid: process.pid });
      expect(err.message).toContain('Router Alert value 5');
      expect(err.message).toContain(`network namespace ${router}`);
      expect(err.message).toContain(`process ${process.pid}`);
      // Another value is another tap.
      await using six = new RouterAlertSocket({ value: 6, netns: router });
      expect(six.observe).toBe(false);
    } finally {
      await first.close();
    }
    await using again = new RouterAlertSocket({ value: 5, netns: router });
    expect(again.closed).toBe(false);
  });

  test('IPv4: the lock is per protocol', async () => {
    const router = topo.ns('router');
    await using udp = new RouterAlertSocket({ family: 4, protocol: 17, netns: router });
    expect(thrown(() => new RouterAlertSocket({ family: 4, protocol: 17, netns: router }))).toMatchObject({
      code: 'ERR_ROUTER_ALERT_TAPPED',
      family: 4,
      protocol: 17,
      pid: process.pid,
    });
    await using rsvp = new RouterAlertSocket({ family: 4, protocol: 46, netns: router });
    // IPv6 value 17 is not IPv4 protocol 17.
    await using v6 = new RouterAlertSocket({ value: 17, netns: router });
    expect([udp.closed, rsvp.closed, v6.closed]).toEqual([false, false, false]);
  });

  test('device-bound taps: one per device, and none beside an unbound tap of the value', async () => {
    const router = topo.ns('router');
    {
      await using eth0 = new RouterAlertSocket({ value: 5, netns: router, device: 'eth0' });
      await using eth1 = new RouterAlertSocket({ value: 5, netns: router, device: 'eth1' });
      const again = thrown(() => new RouterAlertSocket({ value: 5, netns: router, device: 'eth0' }));
      expect(again).toMatchObject({ code: 'ERR_ROUTER_ALERT_TAPPED', pid: process.pid });
      expect(again.message).toContain(`on eth0 (${topo.ifindex('router', 'eth0')})`);
      expect(thrown(() => new RouterAlertSocket({ value: 5, netns: router }))).toMatchObject({ code: 'ERR_ROUTER_ALERT_TAPPED', pid: process.pid });
      expect([eth0.closed, eth1.closed]).toEqual([false, false]);
    }
    await using all = new RouterAlertSocket({ value: 5, netns: router });
    expect(thrown(() => new RouterAlertSocket({ value: 5, netns: router, device: 'eth1' }))).toMatchObject({ code: 'ERR_ROUTER_ALERT_TAPPED', pid: process.pid });
    expect(all.closed).toBe(false);
  });

  test('a tap of the same value in another namespace is another tap', async () => {
    await using router = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using sender = new RouterAlertSocket({ value: 5, netns: topo.ns('sender') });
    sender.on('warning', () => undefined); // the sender does not forward
    await using receiver = new RouterAlertSocket({ value: 5, netns: topo.ns('receiver') });
    receiver.on('warning', () => undefined);
    expect([router.closed, sender.closed, receiver.closed]).toEqual([false, false, false]);
  });

  test('an observer opens beside the forwarding tap and sees every packet; forward() on it is refused; the receiver gets each datagram once', async () => {
    const router = topo.ns('router');
    await using ra = new RouterAlertSocket({ value: 5, netns: router });
    await using watcher = new RouterAlertSocket({ value: 5, observe: true, netns: router });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7300 });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    expect(watcher.observe).toBe(true);
    // Two observers are no more trouble than one.
    await using second = new RouterAlertSocket({ value: 5, observe: true, netns: router });
    second.on('packet', (p: RouterAlertPacket) => second.drop(p));

    const forwarded: Array<Promise<unknown>> = [];
    ra.on('packet', (p: RouterAlertPacket) => forwarded.push(ra.forward(p)));
    const seen: RouterAlertPacket[] = [];
    watcher.on('packet', (p: RouterAlertPacket) => seen.push(p));
    const received: string[] = [];
    rx.on('message', (d: Buffer) => received.push(d.toString()));

    const texts = ['one', 'two', 'three', 'four', 'five'];
    for (const text of texts) await tx.send(text, { address: RECEIVER, port: 7300, hopByHop: [hopByHop.routerAlert(5)] });
    // A datagram without the alert takes the same path after them: once it is here, every
    // forwarded copy that was ever coming is here too.
    const marker = nextEvent<[Buffer]>(rx, 'message', 5000, (d) => d.toString() === 'end');
    for (let i = 0; i < 50 && forwarded.length < texts.length; i++) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(forwarded);
    await tx.send('end', { address: RECEIVER, port: 7300 });
    await marker;
    expect(received).toEqual([...texts, 'end']);
    expect(seen.map((p) => p.udp?.data.toString())).toEqual(texts);
    expect(seen[0].interface).toEqual({ index: topo.ifindex('router', 'eth0'), name: 'eth0' });
    await expect(watcher.forward(seen[0])).rejects.toMatchObject({ code: 'ERR_ROUTER_ALERT_OBSERVER' });
    // Still its own to drop.
    for (const p of seen) watcher.drop(p);
    expect(watcher.stats).toMatchObject({ received: 5, dropped: 5, forwarded: 0 });
    expect(ra.stats).toMatchObject({ received: 5, forwarded: 5 });
  });

  test('IPv4 observer: sees the packet, refuses forward()', async () => {
    const router = topo.ns('router');
    await using ra = new RouterAlertSocket({ family: 4, protocol: 17, netns: router });
    await using watcher = new RouterAlertSocket({ family: 4, protocol: 17, observe: true, netns: router });
    ra.on('packet', (p: Ipv4RouterAlertPacket) => ra.drop(p));
    const seen = nextEvent<[Ipv4RouterAlertPacket]>(watcher, 'packet', 5000);
    // A router alert on IPv4 needs the option in the header: a header-included raw send.
    await using raw = new RawSocket({ family: 4, protocol: 17, headerIncluded: true, netns: topo.ns('sender') });
    const b = Buffer.alloc(24 + 8 + 2);
    b[0] = 0x46;
    b.writeUInt16BE(b.length, 2);
    b[8] = 64;
    b[9] = 17;
    Buffer.from([192, 0, 2, 1, 192, 0, 2, 66, 0x94, 0x04, 0, 0]).copy(b, 12);
    b.writeUInt16BE(5000, 24);
    b.writeUInt16BE(7301, 26);
    b.writeUInt16BE(10, 28);
    b.write('v4', 32);
    await raw.send(b, { address: '192.0.2.66' });
    const [pkt] = await seen;
    expect(pkt.interface).toEqual({ index: topo.ifindex('router', 'eth0'), name: 'eth0' });
    await expect(watcher.forward(pkt)).rejects.toMatchObject({ code: 'ERR_ROUTER_ALERT_OBSERVER' });
    watcher.drop(pkt);
  });

  test('a tap held by another process refuses ours with its pid; once that process is killed, the value is ours', async () => {
    const router = topo.ns('router');
    const { child, first } = tapInChild({ value: 7, netns: router });
    try {
      expect(await first).toEqual({ ok: true });
      const err = thrown(() => new RouterAlertSocket({ value: 7, netns: router }));
      expect(err).toMatchObject({ code: 'ERR_ROUTER_ALERT_TAPPED', value: 7, netns: router, pid: child.pid });
      // An observer is welcome beside it.
      await using watcher = new RouterAlertSocket({ value: 7, observe: true, netns: router });
      expect(watcher.closed).toBe(false);
    } finally {
      child.kill('SIGKILL');
      await exitOf(child, 5000);
    }
    // The kernel dropped the name with the process: no close() was ever called.
    await using ours = new RouterAlertSocket({ value: 7, netns: router });
    expect(ours.closed).toBe(false);
  });

  test('a tap held by this process refuses one in a child, with our pid', async () => {
    const router = topo.ns('router');
    await using ours = new RouterAlertSocket({ value: 8, netns: router });
    const { child, first } = tapInChild({ value: 8, netns: router });
    try {
      expect(await first).toEqual({ code: 'ERR_ROUTER_ALERT_TAPPED', pid: process.pid });
    } finally {
      await exitOf(child, 5000);
    }
    // And an observer in a child is not refused.
    const observer = tapInChild({ value: 8, observe: true, netns: router });
    try {
      expect(await observer.first).toEqual({ ok: true });
    } finally {
      observer.child.kill('SIGKILL');
      await exitOf(observer.child, 5000);
    }
    expect(ours.closed).toBe(false);
  });

  test('the renamed and shared names: address(), a live stats, forward() options with an unknown key', async () => {
    const router = topo.ns('router');
    await using ra = new RouterAlertSocket({ value: 9, netns: router });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    expect(ra.address()).toMatchObject({ family: 6 });
    const stats = ra.stats;
    const tapped = nextEvent<[RouterAlertPacket]>(ra, 'packet', 5000);
    await tx.send('x', { address: RECEIVER, port: 7302, hopByHop: [hopByHop.routerAlert(9)] });
    const [pkt] = await tapped;
    // The same object, counting on.
    expect(stats.received).toBe(1);
    expect(ra.stats.received).toBe(1);
    expect(pkt.interface?.name).toBe('eth0');
    expect('ingress' in pkt).toBe(false);
    expect(Object.keys(pkt)).toContain('interface');
    await expect(ra.forward(pkt, { paylod: 'x' } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("nearest known one is 'payload'") });
    ra.drop(pkt);
    await ra.close();
    expect(() => ra.address()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });
});
