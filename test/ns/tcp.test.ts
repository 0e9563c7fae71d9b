// TCP in a namespace: sockets created there by ip6sock, used through Node's net objects.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { connectTcp, createTcpServer } from '../../lib';
import { describeRoot } from '../helpers/privileged';
import { hostPair, useTopology } from '../helpers/topology';

/** The address fields of one end of a connection, as net.Socket reports them. */
interface Ends {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  remoteFamily: string | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  localFamily: string | undefined;
  address: unknown;
}

function ends(socket: net.Socket): Ends {
  return {
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    remoteFamily: socket.remoteFamily,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    localFamily: (socket as net.Socket & { localFamily?: string }).localFamily,
    address: socket.address(),
  };
}

/** A server that answers `echo:<what it got>` and records the ends of every accepted socket. */
function echoServer(accepted: Ends[] = []): (socket: net.Socket) => void {
  return (socket) => {
    accepted.push(ends(socket));
    socket.on('data', (d) => socket.end(`echo:${d.toString()}`));
  };
}

/**
 * Waits for the connection, writes `text`, collects the reply until close. `connected` is
 * true when the socket connectTcp() resolved with was connected already.
 */
async function roundTrip(connecting: Promise<net.Socket>, text: string): Promise<{ reply: string; ends: Ends; connected: boolean }> {
  const socket = await within(connecting, 'connect');
  const connected = !socket.connecting && !socket.pending;
  const at = ends(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // A peer that never answers must not keep the connection, and jest, alive.
      socket.destroy();
      reject(new Error('no reply within 5 s'));
    }, 5000);
    let reply = '';
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ reply, ends: at, connected });
    });
    socket.write(text);
  });
}

/** Rejects when `promise` has not settled within 5 s, so no connect can hang a test. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within 5 s`)), 5000)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The error connectTcp() rejects with; fails if it connects instead. */
async function errorOf(connecting: Promise<net.Socket>): Promise<NodeJS.ErrnoException & Record<string, unknown>> {
  let socket: net.Socket;
  try {
    socket = await within(connecting, 'connect');
  } catch (err) {
    return err as NodeJS.ErrnoException & Record<string, unknown>;
  }
  socket.destroy();
  throw new Error('connected');
}

const closeServer = (server: net.Server): Promise<void> => new Promise((r) => server.close(() => r()));

describeRoot('TCP inside a namespace', () => {
  const topo = useTopology(() => hostPair());

  test('a server in one namespace answers a client in another, from a chosen local port', async () => {
    const accepted: Ends[] = [];
    const server = await createTcpServer({ netns: topo.ns('b'), port: 7017 }, echoServer(accepted));
    try {
      expect(server.address()).toEqual({ address: '::', family: 'IPv6', port: 7017 });
      const r = await roundTrip(connectTcp({ netns: topo.ns('a'), address: '2001:db8:1::2', port: 7017, localPort: 7017 }), 'M_DISCOVERY');
      expect(r.reply).toBe('echo:M_DISCOVERY');
      // The promise settles once connected, as createTcpServer()'s once listening.
      expect(r.connected).toBe(true);
      expect(r.ends).toEqual({
        remoteAddress: '2001:db8:1::2', remotePort: 7017, remoteFamily: 'IPv6',
        localAddress: '2001:db8:1::1', localPort: 7017, localFamily: 'IPv6',
        address: { address: '2001:db8:1::1', family: 'IPv6', port: 7017 },
      });
      expect(accepted).toEqual([{
        remoteAddress: '2001:db8:1::1', remotePort: 7017, remoteFamily: 'IPv6',
        localAddress: '2001:db8:1::2', localPort: 7017, localFamily: 'IPv6',
        address: { address: '2001:db8:1::2', family: 'IPv6', port: 7017 },
      }]);
    } finally {
      await closeServer(server);
    }
  });

  test('link-local destinations with a zone, IPv4 too; addresses named in the socket\'s namespace', async () => {
    const accepted6: Ends[] = [];
    const accepted4: Ends[] = [];
    const server6 = await createTcpServer({ netns: topo.ns('b'), port: 7018 }, echoServer(accepted6));
    const server4 = await createTcpServer({ netns: topo.ns('b'), port: 7018, family: 4 }, echoServer(accepted4));
    try {
      const ll = await roundTrip(connectTcp({ netns: topo.ns('a'), address: 'fe80::2%eth0', port: 7018 }), 'll');
      expect(ll.reply).toBe('echo:ll');
      const port6 = ll.ends.localPort;
      expect(port6).toEqual(expect.any(Number));
      // 'eth0' is the interface of each socket's own namespace (index 10 or 11 there; the
      // host has no such index, or another interface under it).
      expect(ll.ends).toEqual({
        remoteAddress: 'fe80::2%eth0', remotePort: 7018, remoteFamily: 'IPv6',
        localAddress: 'fe80::1%eth0', localPort: port6, localFamily: 'IPv6',
        address: { address: 'fe80::1%eth0', family: 'IPv6', port: port6 },
      });
      expect(accepted6).toEqual([{
        remoteAddress: 'fe80::1%eth0', remotePort: port6, remoteFamily: 'IPv6',
        localAddress: 'fe80::2%eth0', localPort: 7018, localFamily: 'IPv6',
        address: { address: 'fe80::2%eth0', family: 'IPv6', port: 7018 },
      }]);

      // The zone by index, as the namespace numbers it.
      const byIndex = await roundTrip(connectTcp({ netns: topo.ns('a'), address: `fe80::2%${topo.ifindex('a', 'eth0')}`, port: 7018 }), 'idx');
      expect(byIndex.reply).toBe('echo:idx');
      expect(byIndex.ends.remoteAddress).toBe('fe80::2%eth0');

      const v4 = await roundTrip(connectTcp({ netns: topo.ns('a'), address: '192.0.2.2', port: 7018 }), 'v4');
      expect(v4.reply).toBe('echo:v4');
      const port4 = v4.ends.localPort;
      expect(v4.ends).toEqual({
        remoteAddress: '192.0.2.2', remotePort: 7018, remoteFamily: 'IPv4',
        localAddress: '192.0.2.1', localPort: port4, localFamily: 'IPv4',
        address: { address: '192.0.2.1', family: 'IPv4', port: port4 },
      });
      expect(accepted4).toEqual([{
        remoteAddress: '192.0.2.1', remotePort: port4, remoteFamily: 'IPv4',
        localAddress: '192.0.2.2', localPort: 7018, localFamily: 'IPv4',
        address: { address: '192.0.2.2', family: 'IPv4', port: 7018 },
      }]);
    } finally {
      await closeServer(server6);
      await closeServer(server4);
    }
  });

  test('a server on a link-local address reports it with its zone', async () => {
    const server = await createTcpServer({ netns: topo.ns('b'), port: 7021, address: 'fe80::2%eth0' }, echoServer());
    try {
      expect(server.address()).toEqual({ address: 'fe80::2%eth0', family: 'IPv6', port: 7021 });
      expect((await roundTrip(connectTcp({ netns: topo.ns('a'), address: 'fe80::2%eth0', port: 7021 }), 'z')).reply).toBe('echo:z');
    } finally {
      await closeServer(server);
    }
  });

  test('reusePort: a connection leaves from the port its own server listens on', async () => {
    // The peer (a) records where connections come from.
    const seenByPeer: Ends[] = [];
    const peer = await createTcpServer({ netns: topo.ns('a'), port: 7100 }, echoServer(seenByPeer));
    const own = await createTcpServer({ netns: topo.ns('b'), port: 7017, reusePort: true }, echoServer());
    try {
      const global = await roundTrip(connectTcp({ netns: topo.ns('b'), address: '2001:db8:1::1', port: 7100, localPort: 7017, reusePort: true }), 'g');
      expect(global.reply).toBe('echo:g');
      expect(global.ends).toMatchObject({ localAddress: '2001:db8:1::2', localPort: 7017 });
      const linkLocal = await roundTrip(connectTcp({ netns: topo.ns('b'), address: 'fe80::1%eth0', port: 7100, localPort: 7017, reusePort: true, reuseAddr: true }), 'l');
      expect(linkLocal.reply).toBe('echo:l');
      expect(seenByPeer.map((e) => [e.remoteAddress, e.remotePort])).toEqual([
        ['2001:db8:1::2', 7017],
        ['fe80::2%eth0', 7017],
      ]);
      // The server still listens on that port and answers.
      expect((await roundTrip(connectTcp({ netns: topo.ns('a'), address: '2001:db8:1::2', port: 7017 }), 'still')).reply).toBe('echo:still');

      // Without reusePort on the connection: the kernel refuses the port, as a rejection
      // (not a throw), with the way out in the message.
      const err = await errorOf(connectTcp({ netns: topo.ns('b'), address: '2001:db8:1::1', port: 7100, localPort: 7017, reuseAddr: true }));
      expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', errno: expect.any(Number), address: '::', port: 7017, netns: topo.ns('b') });
      expect(err.message).toMatch(/set reusePort: true on both/);
    } finally {
      await closeServer(own);
      await closeServer(peer);
    }
  });

  test('reusePort only on the connection is not enough: both need it', async () => {
    const own = await createTcpServer({ netns: topo.ns('b'), port: 7022 }, echoServer());
    try {
      const err = await errorOf(connectTcp({ netns: topo.ns('b'), address: '2001:db8:1::1', port: 7100, localPort: 7022, reusePort: true }));
      expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', port: 7022 });
    } finally {
      await closeServer(own);
    }
  });

  test('aborting the signal while connecting ends the attempt: AbortError, no descriptor left', async () => {
    const before = fs.readdirSync('/proc/self/fd').length;
    // No host answers 2001:db8:1::99: the connect would wait for neighbour discovery.
    const controller = new AbortController();
    const connecting = connectTcp({ netns: topo.ns('a'), address: '2001:db8:1::99', port: 7017, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 50));
    expect(topo.execSync('a', ['ss', '-tan']).stdout).toMatch(/SYN-SENT.*\[2001:db8:1::99\]:7017/);
    controller.abort();
    await expect(connecting).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    await new Promise((r) => setTimeout(r, 20));
    expect(topo.execSync('a', ['ss', '-tan']).stdout).not.toMatch(/2001:db8:1::99/);
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before);
    // Aborted before the call: nothing is opened at all.
    await expect(connectTcp({ netns: topo.ns('a'), address: '2001:db8:1::2', port: 7017, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before);
  });

  test('the listening socket lives in the namespace, not in the host', async () => {
    const server = await createTcpServer({ netns: topo.ns('b'), port: 7019, address: '2001:db8:1::2' }, echoServer());
    try {
      const listening = (out: string): boolean => /\[2001:db8:1::2\]:7019\b/.test(out);
      expect(listening(topo.execSync('b', ['ss', '-tln']).stdout)).toBe(true);
      expect(listening(execFileSync('ss', ['-tln']).toString())).toBe(false);
    } finally {
      await closeServer(server);
    }
  });

  test('errors of the connect reject the promise, with the context net would not give', async () => {
    const refused = await errorOf(connectTcp({ netns: topo.ns('a'), address: '2001:db8:1::2', port: 7999 }));
    expect(refused).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect', errno: expect.any(Number), address: '2001:db8:1::2', port: 7999, netns: topo.ns('a') });
    const zone = await errorOf(connectTcp({ netns: topo.ns('a'), address: 'fe80::2%eth9', port: 1 }));
    expect(zone).toMatchObject({ code: 'ENODEV', syscall: 'if_nametoindex', interface: 'eth9', netns: topo.ns('a') });
    const zoneIndex = await errorOf(connectTcp({ netns: topo.ns('a'), address: 'fe80::2%999', port: 1 }));
    expect(zoneIndex).toMatchObject({ code: 'ENODEV', interface: 999 });
    const device = await errorOf(connectTcp({ netns: topo.ns('a'), device: 'eth9', address: '2001:db8:1::2', port: 1 }));
    expect(device).toMatchObject({ code: 'ENODEV', syscall: 'setsockopt' });
    const ns = await errorOf(connectTcp({ netns: 'ip6sock-no-such-ns', address: '2001:db8:1::2', port: 1 }));
    expect(ns).toMatchObject({ code: 'ENOENT', syscall: 'open', netns: 'ip6sock-no-such-ns' });
    const notHere = await errorOf(connectTcp({ netns: topo.ns('a'), address: '2001:db8:1::2', port: 1, localAddress: '2001:db8::77' }));
    expect(notHere).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind', address: '2001:db8::77' });
    expect(notHere.message).not.toMatch(/reusePort/);
    // A zone by number that names another interface than `device`: the kernel refuses it.
    const other = await errorOf(connectTcp({ netns: topo.ns('a'), device: 'lo', address: `fe80::2%${topo.ifindex('a', 'eth0')}`, port: 1 }));
    expect(other).toMatchObject({ code: 'EINVAL', syscall: 'connect' });
    expect(other.message).toMatch(/zone is not options\.device \(lo\)/);
  });

  test('errors: taken ports and bad arguments of the server', async () => {
    const server = await createTcpServer({ netns: topo.ns('b'), port: 7020, reuseAddr: false });
    try {
      await expect(createTcpServer({ netns: topo.ns('b'), port: 7020, reuseAddr: false })).rejects.toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    } finally {
      await closeServer(server);
    }
    await expect(createTcpServer({ netns: 'ip6sock-no-such-ns' })).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(createTcpServer({ port: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(createTcpServer({ address: 'x' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(createTcpServer({ netns: topo.ns('a'), device: 'eth9' })).rejects.toMatchObject({ code: 'ENODEV' });
    for (const reusePort of ['yes', 1, null]) {
      await expect(createTcpServer({ netns: topo.ns('a'), reusePort: reusePort as never })).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_TYPE',
        message: expect.stringContaining('options.reusePort'),
      });
    }
  });

  test('bad arguments of connectTcp reject (never throw), before any socket exists', async () => {
    const before = fs.readdirSync('/proc/self/fd').length;
    const ok = { netns: topo.ns('a'), address: '2001:db8:1::2', port: 7017 };
    const cases: Array<[unknown, string, RegExp]> = [
      [undefined, 'ERR_INVALID_ARG_TYPE', /"options"/],
      [{ ...ok, port: 0 }, 'ERR_OUT_OF_RANGE', /options\.port/],
      [{ ...ok, port: '7017' }, 'ERR_INVALID_ARG_TYPE', /options\.port/],
      [{ ...ok, address: 'nope' }, 'ERR_INVALID_ARG_VALUE', /options\.address/],
      [{ ...ok, address: 'fe80::2%' }, 'ERR_INVALID_ARG_VALUE', /empty zone/],
      [{ ...ok, address: 'fe80::2%0' }, 'ERR_OUT_OF_RANGE', /options\.address zone/],
      [{ ...ok, address: 'fe80::2%a/b' }, 'ERR_INVALID_ARG_VALUE', /options\.address zone/],
      [{ ...ok, address: 'fe80::2%eth0', device: 'lo' }, 'ERR_INVALID_ARG_VALUE', /conflicts with the address zone eth0/],
      [{ ...ok, family: 4 }, 'ERR_INVALID_ARG_VALUE', /options\.address/],
      [{ ...ok, device: 7 }, 'ERR_INVALID_ARG_TYPE', /options\.device/],
      [{ ...ok, netns: '' }, 'ERR_INVALID_ARG_VALUE', /options\.netns/],
      [{ ...ok, localAddress: 'x' }, 'ERR_INVALID_ARG_VALUE', /options\.localAddress/],
      [{ ...ok, localAddress: 'fe80::1%0' }, 'ERR_OUT_OF_RANGE', /options\.localAddress zone/],
      [{ ...ok, localPort: 65536 }, 'ERR_OUT_OF_RANGE', /options\.localPort/],
      [{ ...ok, localPort: 1.5 }, 'ERR_OUT_OF_RANGE', /options\.localPort/],
      [{ ...ok, reuseAddr: 1 }, 'ERR_INVALID_ARG_TYPE', /options\.reuseAddr/],
      [{ ...ok, reusePort: 'true' }, 'ERR_INVALID_ARG_TYPE', /options\.reusePort/],
      [{ ...ok, reusePort: 1 }, 'ERR_INVALID_ARG_TYPE', /options\.reusePort/],
      [{ ...ok, reusePort: null }, 'ERR_INVALID_ARG_TYPE', /options\.reusePort/],
      [{ ...ok, signal: {} }, 'ERR_INVALID_ARG_TYPE', /options\.signal/],
      [{ ...ok, prot: 7017 }, 'ERR_INVALID_ARG_VALUE', /options\.prot.*nearest known one is 'port'/],
    ];
    for (const [options, code, message] of cases) {
      let returned: unknown;
      expect(() => (returned = connectTcp(options as never))).not.toThrow();
      const err = await errorOf(returned as Promise<net.Socket>);
      expect({ options, code: err.code, message: err.message }).toEqual({ options, code, message: expect.stringMatching(message) });
    }
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before);
  });
});
