// Sockets and interface discovery inside network namespaces: real hosts, real packets.
import { execFileSync } from 'node:child_process';
import { interfaces, MessageInfo, UdpSocket } from '../../lib';
import { describeRoot } from '../helpers/privileged';
import { nextMessage } from '../helpers/wire';
import { hostPair, star, useTopology } from '../helpers/topology';

interface IpAddrJson {
  ifindex: number;
  ifname: string;
  flags: string[];
  addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string }>;
}

describeRoot('sockets in a network namespace', () => {
  const topo = useTopology(() => hostPair());

  test('a socket opened with netns binds to that namespace\'s address and receives from the peer', async () => {
    const hostLinksBefore = execFileSync('ip', ['-o', 'link']).toString();
    await using rx = new UdpSocket({ netns: topo.ns('b'), address: '2001:db8:1::2', port: 7000 });
    await using tx = new UdpSocket({ netns: topo.ns('a') });
    const got = nextMessage(rx);
    await tx.send('across the link', { address: '2001:db8:1::2', port: 7000 });
    const [data, info] = await got;
    expect(data.toString()).toBe('across the link');
    expect(info).toMatchObject({
      address: '2001:db8:1::1',
      destination: '2001:db8:1::2',
      interface: { index: topo.ifindex('b', 'eth0'), name: 'eth0' },
      hopLimit: 64,
    });
    // The host's own namespace has no such address, and its links did not change.
    expect(() => new UdpSocket({ address: '2001:db8:1::2', port: 7000 })).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL' }));
    expect(execFileSync('ip', ['-o', 'link']).toString()).toBe(hostLinksBefore);
  });

  test('link-local: the source carries %interface, replies go back through the zone', async () => {
    await using rx = new UdpSocket({ netns: topo.ns('b'), port: 7001 });
    await using tx = new UdpSocket({ netns: topo.ns('a'), address: 'fe80::1%eth0' });
    const got = nextMessage(rx);
    await tx.send('ll', { address: 'fe80::2%eth0', port: 7001 });
    const [, info] = await got;
    expect(info.address).toBe('fe80::1%eth0');
    expect(info.destination).toBe('fe80::2');
    const back = nextMessage(tx);
    await rx.send('reply', { address: info.address, port: info.port });
    expect((await back)[1]).toMatchObject({ address: 'fe80::2%eth0', interface: { name: 'eth0' } });
  });

  test('a link-local source needs an outgoing interface: EINVAL says so, and each way of naming one works', async () => {
    await using rx = new UdpSocket({ netns: topo.ns('b'), port: 7003 });
    await using tx = new UdpSocket({ netns: topo.ns('a') });
    const err = await tx.send('x', { address: '2001:db8:1::2', port: 7003, source: 'fe80::1' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EINVAL', syscall: 'sendmsg' });
    expect((err as Error).message).toContain('the link-local source fe80::1 needs an outgoing interface');
    for (const [label, options] of [
      ['options.interface', { address: '2001:db8:1::2', interface: 'eth0' }],
      ['a zone on the destination', { address: 'fe80::2%eth0' }],
    ] as const) {
      const got = nextMessage(rx);
      await tx.send(label, { port: 7003, source: 'fe80::1', ...options });
      const [data, info] = await got;
      expect(data.toString()).toBe(label);
      expect(info.address).toBe('fe80::1%eth0');
    }
    await using bound = new UdpSocket({ netns: topo.ns('a'), device: 'eth0' });
    const got = nextMessage(rx);
    await bound.send('bound', { address: '2001:db8:1::2', port: 7003, source: 'fe80::1' });
    expect((await got)[1].address).toBe('fe80::1%eth0');
  });

  test('interfaces.list({ netns }) agrees with ip -6 addr in that namespace', () => {
    const ours = interfaces.list({ netns: topo.ns('a') });
    const theirs = JSON.parse(execFileSync('ip', ['-n', topo.ns('a'), '-j', 'addr']).toString()) as IpAddrJson[];
    expect(ours.map((i) => [i.index, i.name]).sort()).toEqual(theirs.map((i) => [i.ifindex, i.ifname]).sort());
    for (const t of theirs) {
      const o = ours.find((i) => i.index === t.ifindex)!;
      expect(o.flags.up).toBe(t.flags.includes('UP'));
      expect(o.flags.multicast).toBe(t.flags.includes('MULTICAST'));
      expect(o.flags.loopback).toBe(t.flags.includes('LOOPBACK'));
      const v6 = t.addr_info.filter((a) => a.family === 'inet6');
      expect(o.linkLocal.map((a) => `${a.address}/${a.prefixLength}`).sort()).toEqual(
        v6.filter((a) => a.scope === 'link').map((a) => `${a.local}/${a.prefixlen}`).sort(),
      );
      expect(o.global.map((a) => `${a.address}/${a.prefixLength}`).sort()).toEqual(
        v6.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort(),
      );
      expect(o.ipv4.map((a) => `${a.address}/${a.prefixLength}`).sort()).toEqual(
        t.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`).sort(),
      );
    }
    const eth0 = ours.find((i) => i.name === 'eth0')!;
    expect(eth0.linkLocal[0]).toEqual({ address: 'fe80::1', prefixLength: 64, family: 6, scopeId: eth0.index });
    expect(interfaces.nameToIndex('eth0', { netns: topo.ns('a') })).toBe(topo.ifindex('a', 'eth0'));
    expect(interfaces.indexToName(topo.ifindex('a', 'eth0'), { netns: topo.ns('a') })).toBe('eth0');
  });

  test('sourceFor picks the address the kernel picks', () => {
    for (const dest of ['2001:db8:1::2', '2001:db8:1::99', 'fe80::2%eth0', '192.0.2.2']) {
      const ours = interfaces.sourceFor(dest, { netns: topo.ns('a') });
      const [addr, zone] = dest.split('%');
      const args = ['-n', topo.ns('a'), '-j', 'route', 'get', addr];
      if (zone) args.push('oif', zone);
      const route = JSON.parse(execFileSync('ip', args).toString()) as Array<{ prefsrc: string }>;
      expect(ours).toBe(route[0].prefsrc);
    }
    expect(interfaces.sourceFor('fe80::2', { netns: topo.ns('a'), interface: 'eth0' })).toBe('fe80::1');
  });

  test('bad inputs in a namespace give coded errors', () => {
    const netns = topo.ns('a');
    expect(() => interfaces.nameToIndex('eth9', { netns })).toThrow(expect.objectContaining({ code: 'ENODEV', netns }));
    expect(() => interfaces.indexToName(4242, { netns })).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => interfaces.indexToName(-1, { netns })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => interfaces.list({ netns: 'ip6sock-missing-ns' })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => interfaces.list('x' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => interfaces.sourceFor('not an address', { netns })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => interfaces.sourceFor('2001:db8:77::1', { netns })).toThrow(expect.objectContaining({ code: 'ENETUNREACH' }));
    expect(() => new UdpSocket({ netns, device: 'eth9' })).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });
});

describeRoot('per-packet interface and hop limit', () => {
  const topo = useTopology(() => star(2));

  test('a datagram sent with a PKTINFO interface and hop limit leaves there and arrives with that hop limit', async () => {
    await using peer0 = new UdpSocket({ netns: topo.ns('peer0'), port: 7100 });
    await using peer1 = new UdpSocket({ netns: topo.ns('peer1'), port: 7100 });
    await using hub = new UdpSocket({ netns: topo.ns('hub') });
    const seen0: MessageInfo[] = [];
    peer0.on('message', (_d: Buffer, info: MessageInfo) => seen0.push(info));
    // fe80::2 exists on both links: only the interface decides which peer gets it.
    const got1 = nextMessage(peer1);
    await hub.send('to peer1', { address: 'fe80::2', port: 7100, interface: 'eth1', hopLimit: 3 });
    const [data, info] = await got1;
    expect(data.toString()).toBe('to peer1');
    expect(info).toMatchObject({ address: 'fe80::1%eth0', destination: 'fe80::2', hopLimit: 3, interface: { name: 'eth0', index: topo.ifindex('peer1', 'eth0') } });
    const got0 = nextMessage(peer0);
    await hub.send('to peer0', { address: 'fe80::2', port: 7100, interface: topo.ifindex('hub', 'eth0'), hopLimit: 200 });
    expect((await got0)[1]).toMatchObject({ hopLimit: 200 });
    expect(seen0.length).toBe(1);
  });

  test('a socket bound to a device sends and receives only there', async () => {
    await using hub = new UdpSocket({ netns: topo.ns('hub'), device: 'eth1', port: 7200 });
    await using peer0 = new UdpSocket({ netns: topo.ns('peer0') });
    await using peer1 = new UdpSocket({ netns: topo.ns('peer1') });
    const got = nextMessage(hub);
    await peer0.send('via eth0', { address: '2001:db8:1::1', port: 7200 }); // dropped: wrong device
    await peer1.send('via eth1', { address: '2001:db8:2::1', port: 7200 });
    const [data, info] = await got;
    expect(data.toString()).toBe('via eth1');
    expect(info.interface?.name).toBe('eth1');
  });
});
