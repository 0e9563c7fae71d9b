// TCP in a namespace: sockets created there by ip6sock, used through Node's net objects.
import { execFileSync } from 'node:child_process';
import * as net from 'node:net';
import { connectTcp, createTcpServer } from '../lib';
import { describeRoot } from './helpers/privileged';
import { hostPair, useTopology } from './helpers/topology';

function echoServer(socket: net.Socket): void {
  socket.on('data', (d) => socket.end(`echo:${d.toString()}`));
}

function roundTrip(socket: net.Socket, text: string): Promise<{ reply: string; local: string | undefined; localPort: number | undefined }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reply within 5 s')), 5000);
    let reply = '';
    let local: string | undefined;
    let localPort: number | undefined;
    socket.once('connect', () => {
      socket.write(text);
      // Node names a link-local zone with if_indextoname in its own namespace, so these
      // getters throw ENXIO for a link-local socket in another namespace (see lib/tcp.ts).
      try {
        local = socket.localAddress;
        localPort = socket.localPort;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
      }
    });
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    socket.once('error', reject);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ reply, local, localPort });
    });
  });
}

describeRoot('TCP inside a namespace', () => {
  const topo = useTopology(() => hostPair());

  test('a server in one namespace answers a client in another, from a chosen local port', async () => {
    const server = await createTcpServer({ netns: topo.ns('b'), port: 7017 }, echoServer);
    try {
      expect(server.address()).toMatchObject({ port: 7017 });
      const client = connectTcp({ netns: topo.ns('a'), address: '2001:db8:1::2', port: 7017, localPort: 7017 });
      const r = await roundTrip(client, 'M_DISCOVERY');
      expect(r).toEqual({ reply: 'echo:M_DISCOVERY', local: '2001:db8:1::1', localPort: 7017 });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('link-local destinations with a zone, IPv4 too', async () => {
    const server6 = await createTcpServer({ netns: topo.ns('b'), port: 7018 }, echoServer);
    const server4 = await createTcpServer({ netns: topo.ns('b'), port: 7018, family: 4 }, echoServer);
    try {
      expect((await roundTrip(connectTcp({ netns: topo.ns('a'), address: 'fe80::2%eth0', port: 7018 }), 'll')).reply).toBe('echo:ll');
      expect((await roundTrip(connectTcp({ netns: topo.ns('a'), address: '192.0.2.2', port: 7018 }), 'v4')).reply).toBe('echo:v4');
    } finally {
      await new Promise((r) => server6.close(r));
      await new Promise((r) => server4.close(r));
    }
  });

  test('the listening socket lives in the namespace, not in the host', async () => {
    const server = await createTcpServer({ netns: topo.ns('b'), port: 7019, address: '2001:db8:1::2' }, echoServer);
    try {
      const listening = (out: string): boolean => /\[2001:db8:1::2\]:7019\b/.test(out);
      expect(listening(topo.execSync('b', ['ss', '-tln']).stdout)).toBe(true);
      expect(listening(execFileSync('ss', ['-tln']).toString())).toBe(false);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('errors: refused connections, taken ports, bad arguments', async () => {
    const refused = connectTcp({ netns: topo.ns('a'), address: '2001:db8:1::2', port: 7999 });
    await expect(new Promise((_, reject) => refused.once('error', reject))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const server = await createTcpServer({ netns: topo.ns('b'), port: 7020, reuseAddr: false });
    try {
      await expect(createTcpServer({ netns: topo.ns('b'), port: 7020, reuseAddr: false })).rejects.toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    } finally {
      await new Promise((r) => server.close(r));
    }
    await expect(createTcpServer({ netns: 'ip6sock-no-such-ns' })).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(createTcpServer({ port: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(createTcpServer({ address: 'x' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(createTcpServer({ netns: topo.ns('a'), device: 'eth9' })).rejects.toMatchObject({ code: 'ENODEV' });
    expect(() => connectTcp({ address: '2001:db8:1::2', port: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => connectTcp({ address: 'nope', port: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => connectTcp(undefined as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => connectTcp({ netns: topo.ns('a'), address: 'fe80::2%eth9', port: 1 })).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => connectTcp({ netns: topo.ns('a'), address: 'fe80::2%eth0', device: 'lo', port: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});
