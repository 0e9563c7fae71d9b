// MulticastSocket over IPv6: real hosts in network namespaces, real MLD memberships.
// Argument checks first (no privilege), then two hosts on a link, a hub with several links,
// source filters on a shared segment, the MULTICAST_ALL default, and the coded errors.
import { execFileSync } from 'node:child_process';
import { MulticastSocket } from '../../lib/sockets/multicast';
import { igmp6, readNetFile } from '../../lib/links/procnet';
import { Inbox } from '../helpers/inbox';
import { describeRoot } from '../helpers/privileged';
import { hostPair, lan, star, useTopology } from '../helpers/topology';

/** Lines of /proc/net/mcfilter6 in a namespace: per-socket source filters (INC / EXC counts). */
function mcfilter6(netns: string): Array<{ ifname: string; group: string; source: string; include: number; exclude: number }> {
  return readNetFile('mcfilter6', netns)
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 6 && /^\d+$/.test(f[0]))
    .map((f) => ({ ifname: f[1], group: f[2], source: f[3], include: Number(f[4]), exclude: Number(f[5]) }));
}

describe('MulticastSocket arguments (no privilege: each check fails before any system call)', () => {
  test('constructor options are checked', () => {
    expect(() => new MulticastSocket({ multicastHopLimit: 256 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new MulticastSocket({ multicastHopLimit: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new MulticastSocket({ multicastHopLimit: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new MulticastSocket({ multicastHopLimit: '1' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new MulticastSocket({ multicastLoopback: 2 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new MulticastSocket({ multicastAll: 'no' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new MulticastSocket({ ignoreOwn: 1 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new MulticastSocket({ receivePacketInfo: false })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/needs options.device/) }));
    expect(() => new MulticastSocket({ multicastInterface: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new MulticastSocket({ multicastInterface: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new MulticastSocket({ family: 5 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new MulticastSocket('x' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  test('setters are strict, groups must be multicast of the socket family, sources must match', async () => {
    await using sock = new MulticastSocket();
    expect(() => sock.setMulticastHopLimit(256)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => sock.setMulticastLoopback(2 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => sock.setMulticastLoopback(1 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => sock.setMulticastInterface({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => sock.setMulticastInterface('no/such' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    const bad: Array<[() => unknown, string, RegExp?]> = [
      [() => sock.join('2001:db8::1', { interface: 1 }), 'ERR_INVALID_ARG_VALUE', /not a multicast address/],
      [() => sock.join('224.0.1.1', { interface: 1 }), 'ERR_INVALID_ARG_VALUE', /IPv4 address but the socket is IPv6/],
      [() => sock.join('ff02::13%eth0', { interface: 1 }), 'ERR_INVALID_ARG_VALUE', /zone/],
      [() => sock.join('nonsense', { interface: 1 }), 'ERR_INVALID_ARG_VALUE'],
      [() => sock.join(42 as never, { interface: 1 }), 'ERR_INVALID_ARG_TYPE'],
      [() => sock.join('ff02::13', undefined as never), 'ERR_INVALID_ARG_TYPE'],
      [() => sock.join('ff3e::1', { interface: 1, source: '192.0.2.1' }), 'ERR_INVALID_ARG_VALUE', /IPv4 address but the group ff3e::1 is IPv6/],
      [() => sock.join('ff3e::1', { interface: 1, source: 'ff3e::2' }), 'ERR_INVALID_ARG_VALUE', /unicast/],
      [() => sock.join('ff3e::1', { interface: 1, source: '::' }), 'ERR_INVALID_ARG_VALUE', /unicast/],
      [() => sock.join('ff3e::1', { interface: 1, source: 7 as never }), 'ERR_INVALID_ARG_TYPE'],
      [() => sock.join('ff3e::1', { interface: 'all', includeLoopback: 'yes' as never }), 'ERR_INVALID_ARG_TYPE'],
      [() => sock.join('ff3e::1', { interface: {} as never }), 'ERR_INVALID_ARG_TYPE'],
      [() => sock.join('ff3e::1', { interface: -3 }), 'ERR_OUT_OF_RANGE'],
      [() => sock.leave('ff3e::1', { interface: [] as never }), 'ERR_INVALID_ARG_TYPE'],
      [() => sock.block('ff3e::1', { interface: 1, source: '10.0.0.1' }), 'ERR_INVALID_ARG_VALUE'],
      [() => sock.unblock('ff3e::1', null as never), 'ERR_INVALID_ARG_TYPE'],
    ];
    for (const [fn, code, message] of bad) {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      expect(caught).toMatchObject({ code });
      if (message) expect((caught as Error).message).toMatch(message);
    }
    expect(sock.memberships()).toEqual([]);
  });

  test('use after close is a coded error; memberships() is empty', async () => {
    const sock = new MulticastSocket();
    await sock.close();
    const closed = expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' });
    expect(() => sock.join('ff02::13', { interface: 1 })).toThrow(closed);
    expect(() => sock.leave('ff02::13', { interface: 1 })).toThrow(closed);
    expect(() => sock.block('ff02::13', { interface: 1, source: '2001:db8::1' })).toThrow(closed);
    expect(() => sock.unblock('ff02::13', { interface: 1, source: '2001:db8::1' })).toThrow(closed);
    expect(() => sock.setMulticastHopLimit(1)).toThrow(closed);
    expect(() => sock.getMulticastHopLimit()).toThrow(closed);
    expect(() => sock.setMulticastLoopback(true)).toThrow(closed);
    expect(() => sock.getMulticastLoopback()).toThrow(closed);
    expect(() => sock.setMulticastInterface(1)).toThrow(closed);
    expect(() => sock.getMulticastInterface()).toThrow(closed);
    await expect(sock.send('x', { address: 'ff02::13', port: 7017 })).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    expect(sock.memberships()).toEqual([]);
  });

  test('defaults as the kernel reports them, and what the setters set', async () => {
    await using sock = new MulticastSocket({ multicastHopLimit: 9, multicastLoopback: false });
    expect(sock.getMulticastHopLimit()).toBe(9);
    expect(sock.getMulticastLoopback()).toBe(false);
    sock.setMulticastHopLimit(0);
    sock.setMulticastLoopback(true);
    expect(sock.getMulticastHopLimit()).toBe(0);
    expect(sock.getMulticastLoopback()).toBe(true);
    expect(sock.getMulticastInterface()).toBeNull();
    await using plain = new MulticastSocket({ family: 4 });
    expect(plain.getMulticastHopLimit()).toBe(1);
    expect(plain.getMulticastLoopback()).toBe(true);
    // hopLimit is the unicast one, beside the multicast one: each setter sets its own.
    await using both = new MulticastSocket({ hopLimit: 33, multicastHopLimit: 3 });
    expect([both.getHopLimit(), both.getMulticastHopLimit()]).toEqual([33, 3]);
    both.setHopLimit(44);
    expect([both.getHopLimit(), both.getMulticastHopLimit()]).toEqual([44, 3]);
    both.setMulticastHopLimit(5);
    expect([both.getHopLimit(), both.getMulticastHopLimit()]).toEqual([44, 5]);
  });
});

describeRoot('two hosts on a link (hostPair)', () => {
  const topo = useTopology(() => hostPair());

  test('exchange on ff02::13 port 7017 with hop limit 1: arrival interface, group and hop limit reported', async () => {
    const common = { port: 7017, reuseAddr: true, multicastHopLimit: 1, multicastLoopback: false };
    await using a = new MulticastSocket({ ...common, netns: topo.ns('a') });
    await using b = new MulticastSocket({ ...common, netns: topo.ns('b') });
    const aIf = { index: topo.ifindex('a', 'eth0'), name: 'eth0' };
    const bIf = { index: topo.ifindex('b', 'eth0'), name: 'eth0' };
    expect(a.join('ff02::13', { interface: 'eth0' })).toEqual([{ group: 'ff02::13', interface: aIf }]);
    expect(b.join('ff02:0::13', { interface: bIf.index })).toEqual([{ group: 'ff02::13', interface: bIf }]);
    expect(b.memberships()).toEqual([{ group: 'ff02::13', interface: bIf }]);
    const atA = new Inbox(a);
    const atB = new Inbox(b);

    await a.send('M_DISCOVERY from a', { address: 'ff02::13', port: 7017, interface: 'eth0' });
    const one = await atB.next('a -> b');
    expect(one.data).toBe('M_DISCOVERY from a');
    expect(one.info).toMatchObject({ address: 'fe80::1%eth0', port: 7017, family: 6, interface: bIf, destination: 'ff02::13', hopLimit: 1 });

    // The reply goes the other way through the same group; the sender's own copy is not
    // looped back (loopback: false), so a hears only b.
    await b.send('M_RESPONSE from b', { address: 'ff02::13', port: 7017, interface: bIf.index });
    const two = await atA.next('b -> a');
    expect(two.data).toBe('M_RESPONSE from b');
    expect(two.info).toMatchObject({ address: 'fe80::2%eth0', interface: aIf, destination: 'ff02::13', hopLimit: 1 });
    expect(atA.items).toEqual([]);
    expect(atB.items).toEqual([]);
  });

  test('the per-packet hop limit sets the multicast hop count; the sticky one applies only to multicast', async () => {
    await using rx = new MulticastSocket({ netns: topo.ns('b'), port: 7018 });
    rx.join('ff02::13', { interface: 'eth0' });
    const inbox = new Inbox(rx);
    await using tx = new MulticastSocket({ netns: topo.ns('a'), multicastHopLimit: 1, multicastInterface: 'eth0' });
    expect(tx.getMulticastInterface()).toEqual({ index: topo.ifindex('a', 'eth0'), name: 'eth0' });

    await tx.send('sticky', { address: 'ff02::13', port: 7018 });
    await tx.send('per packet', { address: 'ff02::13', port: 7018, hopLimit: 5 });
    // A unicast datagram from the same socket keeps the unicast default (64).
    await tx.send('unicast', { address: '2001:db8:1::2', port: 7018 });
    const got = [await inbox.next('sticky'), await inbox.next('per packet'), await inbox.next('unicast')];
    expect(got.map((g) => [g.data, g.info.destination, g.info.hopLimit])).toEqual([
      ['sticky', 'ff02::13', 1],
      ['per packet', 'ff02::13', 5],
      ['unicast', '2001:db8:1::2', 64],
    ]);

    tx.setMulticastInterface(null);
    expect(tx.getMulticastInterface()).toBeNull();
  });

  // Lean: the arrival interface the own-address check needs is the bound device.
  test.each([
    ['', {}],
    [' (lean: bound to eth0, no PKTINFO)', { device: 'eth0', receivePacketInfo: false }],
  ] as const)("ignoreOwn drops the host's own datagrams, which the receiver's loopback setting cannot%s", async (_name, lean) => {
    const netns = topo.ns('a');
    // loopback: false on the RECEIVER changes nothing for what it receives: it is a
    // property of the sending socket (what the GRASP seed found out the hard way).
    await using quiet = new MulticastSocket({ netns, port: 7019, reuseAddr: true, multicastLoopback: false, ignoreOwn: true, ...lean });
    await using plain = new MulticastSocket({ netns, port: 7019, reuseAddr: true, multicastLoopback: false });
    quiet.join('ff02::13', { interface: 'eth0' });
    plain.join('ff02::13', { interface: 'eth0' });
    const atQuiet = new Inbox(quiet);
    const atPlain = new Inbox(plain);
    // A 'batch' listener sees what the filter admits, like 'message'.
    const quietBatches: string[][] = [];
    quiet.on('batch', (batch) => quietBatches.push(Array.from(batch, (m) => m.data.toString())));
    await using tx = new MulticastSocket({ netns, multicastInterface: 'eth0' }); // loopback on (default)
    await using peer = new MulticastSocket({ netns: topo.ns('b') });

    await tx.send('own', { address: 'ff02::13', port: 7019 });
    // The kernel hands a datagram to all sockets of the port at once: once plain has it,
    // quiet has it too (or never will).
    const looped = await atPlain.next('own, looped back');
    expect(looped.data).toBe('own');
    expect(looped.info).toMatchObject({ address: 'fe80::1%eth0', interface: { name: 'eth0' }, destination: 'ff02::13' });

    // A global source is the host's on every interface; the own set is refreshed on a miss.
    await tx.send('own global', { address: 'ff02::13', port: 7019, source: '2001:db8:1::1' });
    expect((await atPlain.next('own global')).info.address).toBe('2001:db8:1::1');

    await peer.send('neighbour', { address: 'ff02::13', port: 7019, interface: 'eth0' });
    expect((await atPlain.next('neighbour')).data).toBe('neighbour');
    const first = await atQuiet.next('neighbour at quiet');
    expect(first.data).toBe('neighbour');
    expect(first.info.address).toBe('fe80::2%eth0');
    expect(quiet.stats).toMatchObject({ own: 2, notJoined: 0 });
    expect(plain.stats).toMatchObject({ own: 0, notJoined: 0 });
    expect(quietBatches.flat()).toEqual(['neighbour']);
  });

  test('MULTICAST_ALL is off: a socket on the same port that did not join hears nothing; multicastAll: true restores the kernel default', async () => {
    const netns = topo.ns('b');
    await using tx = new MulticastSocket({ netns: topo.ns('a'), multicastInterface: 'eth0' });
    // joined: the group's member. other: same port, joined only a marker group.
    await using joined = new MulticastSocket({ netns, port: 7040, reusePort: true });
    await using other = new MulticastSocket({ netns, port: 7040, reusePort: true });
    joined.join('ff02::4040', { interface: 'eth0' });
    other.join('ff02::4041', { interface: 'eth0' });
    const atJoined = new Inbox(joined);
    const atOther = new Inbox(other);
    await tx.send('group', { address: 'ff02::4040', port: 7040 });
    expect((await atJoined.next('group at its member')).info.destination).toBe('ff02::4040');
    await tx.send('marker', { address: 'ff02::4041', port: 7040 });
    // Delivery to a socket is in order: had the group datagram reached `other`, it would
    // come before the marker. dropped.notJoined 0: the kernel kept it out, not our filter.
    const first = await atOther.next('marker');
    expect([first.data, first.info.destination]).toEqual(['marker', 'ff02::4041']);
    expect(other.stats.notJoined).toBe(0);

    // The kernel's default: the same socket would receive the group another socket joined,
    // and all-nodes traffic it never asked for.
    await using nosy = new MulticastSocket({ netns, port: 7040, reusePort: true, multicastAll: true });
    const atNosy = new Inbox(nosy);
    await tx.send('group again', { address: 'ff02::4040', port: 7040 });
    await tx.send('all nodes', { address: 'ff02::1', port: 7040 });
    const seen = [await atNosy.next('group at nosy'), await atNosy.next('all nodes at nosy')];
    expect(seen.map((g) => [g.data, g.info.destination])).toEqual([
      ['group again', 'ff02::4040'],
      ['all nodes', 'ff02::1'],
    ]);
    expect(nosy.memberships()).toEqual([]);
  });

  test('membership errors are coded: duplicate, not joined, unknown interface', async () => {
    const netns = topo.ns('a');
    const eth0 = topo.ifindex('a', 'eth0');
    await using sock = new MulticastSocket({ netns, port: 7041 });
    sock.join('ff02::13', { interface: 'eth0' });
    // The same membership named by index is still a duplicate (the kernel: EADDRINUSE).
    expect(() => sock.join('ff02::13', { interface: eth0 })).toThrow(expect.objectContaining({ code: 'ERR_MULTICAST_ALREADY_JOINED', message: expect.stringMatching(/ff02::13 on eth0 \(\d+\) is already joined/) }));
    expect(() => sock.leave('ff02::14', { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'ERR_MULTICAST_NOT_JOINED' }));
    expect(() => sock.leave('ff02::13', { interface: 'lo' })).toThrow(expect.objectContaining({ code: 'ERR_MULTICAST_NOT_JOINED' }));
    expect(() => sock.block('ff02::14', { interface: 'eth0', source: '2001:db8:1::2' })).toThrow(expect.objectContaining({ code: 'ERR_MULTICAST_NOT_JOINED' }));
    for (const spec of ['eth9', 4242]) {
      expect(() => sock.join('ff02::13', { interface: spec })).toThrow(expect.objectContaining({ code: 'ENODEV', netns }));
      expect(() => sock.leave('ff02::13', { interface: spec })).toThrow(expect.objectContaining({ code: 'ENODEV' }));
      expect(() => sock.setMulticastInterface(spec)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
      expect(() => new MulticastSocket({ netns, multicastInterface: spec })).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    }
    await expect(sock.send('x', { address: 'ff02::13', port: 7041, interface: 'eth9' })).rejects.toMatchObject({ code: 'ENODEV' });
    expect(sock.memberships()).toEqual([{ group: 'ff02::13', interface: { index: eth0, name: 'eth0' } }]);
    expect(sock.leave('ff02::13', { interface: 'eth0' })).toEqual([{ group: 'ff02::13', interface: { index: eth0, name: 'eth0' } }]);
    expect(() => sock.leave('ff02::13', { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'ERR_MULTICAST_NOT_JOINED' }));
    expect(sock.memberships()).toEqual([]);
  });

  test('a failed bind leaves nothing open and reports the bind error', async () => {
    const netns = topo.ns('a');
    await using first = new MulticastSocket({ netns, port: 7042 });
    expect(() => new MulticastSocket({ netns, port: 7042 })).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    expect(first.address().port).toBe(7042);
  });
});

describeRoot('a hub with two links (star(2)): one socket, every interface', () => {
  const topo = useTopology(() => star(2));

  test("interface: 'all' joins both links, tells the senders apart, and close() leaves", async () => {
    const netns = topo.ns('hub');
    const eth0 = { index: topo.ifindex('hub', 'eth0'), name: 'eth0' };
    const eth1 = { index: topo.ifindex('hub', 'eth1'), name: 'eth1' };
    await using hub = new MulticastSocket({ netns, port: 7017, reuseAddr: true });
    const added = hub.join('ff02::13', { interface: 'all' });
    expect(added).toEqual([
      { group: 'ff02::13', interface: eth0 },
      { group: 'ff02::13', interface: eth1 },
    ]);
    expect(hub.memberships()).toEqual(added);
    // The kernel's table in the hub's namespace agrees (one user each: this socket).
    const joined = igmp6(netns).filter((e) => e.address === 'ff02::13');
    expect(joined.map((e) => [e.interface.index, e.interface.name, e.users]).sort()).toEqual([
      [eth0.index, 'eth0', 1],
      [eth1.index, 'eth1', 1],
    ]);
    // Joining 'all' again adds nothing: every interface is joined already.
    expect(hub.join('ff02::13', { interface: 'all' })).toEqual([]);

    const inbox = new Inbox(hub);
    await using p0 = new MulticastSocket({ netns: topo.ns('peer0'), port: 7017, reuseAddr: true });
    await using p1 = new MulticastSocket({ netns: topo.ns('peer1'), port: 7017, reuseAddr: true });
    await p0.send('from peer0', { address: 'ff02::13', port: 7017, interface: 'eth0' });
    const a = await inbox.next('peer0');
    await p1.send('from peer1', { address: 'ff02::13', port: 7017, interface: 'eth0' });
    const b = await inbox.next('peer1');
    // Both peers are fe80::2 on their own link: only the interface tells them apart.
    expect([a.data, a.info.address, a.info.interface]).toEqual(['from peer0', 'fe80::2%eth0', eth0]);
    expect([b.data, b.info.address, b.info.interface]).toEqual(['from peer1', 'fe80::2%eth1', eth1]);

    await hub.close();
    expect(hub.memberships()).toEqual([]);
    expect(igmp6(netns).filter((e) => e.address === 'ff02::13')).toEqual([]);
  });

  test('a membership is per interface: what the IPv6 kernel lets through from another link is dropped', async () => {
    const netns = topo.ns('hub');
    // onlyEth0 joined the group on eth0; helper joined it on eth1, for the same port.
    await using onlyEth0 = new MulticastSocket({ netns, port: 7020, reuseAddr: true });
    await using helper = new MulticastSocket({ netns, port: 7020, reuseAddr: true });
    onlyEth0.join('ff02::4242', { interface: 'eth0' });
    helper.join('ff02::4242', { interface: 'eth1' });
    const atOnly = new Inbox(onlyEth0);
    const atHelper = new Inbox(helper);
    await using p0 = new MulticastSocket({ netns: topo.ns('peer0'), multicastInterface: 'eth0' });
    await using p1 = new MulticastSocket({ netns: topo.ns('peer1'), multicastInterface: 'eth0' });

    await p1.send('via eth1', { address: 'ff02::4242', port: 7020 });
    expect((await atHelper.next('via eth1 at helper')).info.interface?.name).toBe('eth1');
    await p0.send('via eth0', { address: 'ff02::4242', port: 7020 });
    const first = await atOnly.next('via eth0');
    expect([first.data, first.info.interface?.name]).toEqual(['via eth0', 'eth0']);
    // The kernel did hand over the eth1 datagram (it checks the group, not the interface);
    // the socket's own filter removed it.
    expect(onlyEth0.stats.notJoined).toBe(1);
  });

  test('leaving a group on one interface drops what keeps arriving there, mid-stream', async () => {
    const netns = topo.ns('hub');
    const G = 'ff02::4245';
    // sock holds the group on both links, helper on eth0: after sock leaves eth0, the kernel
    // still takes the group in there and hands it to sock (it matches by group only).
    await using sock = new MulticastSocket({ netns, port: 7022, reuseAddr: true });
    await using helper = new MulticastSocket({ netns, port: 7022, reuseAddr: true });
    sock.join(G, { interface: 'eth0' });
    sock.join(G, { interface: 'eth1' });
    helper.join(G, { interface: 'eth0' });
    const atSock = new Inbox(sock);
    const atHelper = new Inbox(helper);
    await using p0 = new MulticastSocket({ netns: topo.ns('peer0'), multicastInterface: 'eth0' });
    await using p1 = new MulticastSocket({ netns: topo.ns('peer1'), multicastInterface: 'eth0' });

    // Two in a row from eth0: the second is admitted by the membership the first one found.
    for (const text of ['one', 'two']) {
      await p0.send(text, { address: G, port: 7022 });
      expect((await atSock.next(text)).data).toBe(text);
      expect((await atHelper.next(`${text} at helper`)).data).toBe(text);
    }
    sock.leave(G, { interface: 'eth0' });
    await p0.send('after leave', { address: G, port: 7022 });
    expect((await atHelper.next('after leave at helper')).data).toBe('after leave');
    await p1.send('via eth1', { address: G, port: 7022 });
    const next = await atSock.next('via eth1');
    expect([next.data, next.info.interface?.name]).toEqual(['via eth1', 'eth1']);
    expect(sock.stats.notJoined).toBe(1);
  });

  test('receivePacketInfo false: bound to one device, the kernel keeps the membership to it', async () => {
    const netns = topo.ns('hub');
    const eth0 = { index: topo.ifindex('hub', 'eth0'), name: 'eth0' };
    const G = 'ff02::4343';
    const G2 = 'ff02::4344';
    await using lean = new MulticastSocket({ netns, port: 7021, reuseAddr: true, device: 'eth0', receivePacketInfo: false, receiveHopLimit: false });
    // Memberships stay on the device: nothing else could be told apart on arrival.
    for (const spec of ['eth1', topo.ifindex('hub', 'eth1'), 'all'] as const) {
      expect(() => lean.join(G, { interface: spec })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/must be eth0 .*bound to/) }));
    }
    expect(lean.join(G, { interface: 'eth0' })).toEqual([{ group: G, interface: eth0 }]);
    // Another socket on the port holds G on eth1 and G2 on eth0, so the host accepts both there.
    await using helper = new MulticastSocket({ netns, port: 7021, reuseAddr: true });
    helper.join(G, { interface: 'eth1' });
    helper.join(G2, { interface: 'eth0' });
    const atLean = new Inbox(lean);
    const atHelper = new Inbox(helper);
    await using p0 = new MulticastSocket({ netns: topo.ns('peer0'), multicastInterface: 'eth0' });
    await using p1 = new MulticastSocket({ netns: topo.ns('peer1'), multicastInterface: 'eth0' });

    // Each of these waits at the helper, so the kernel has decided about it before the next.
    await p1.send('G via eth1', { address: G, port: 7021 });
    expect((await atHelper.next('G via eth1 at helper')).info.interface?.name).toBe('eth1');
    await p0.send('G2 via eth0', { address: G2, port: 7021 });
    expect((await atHelper.next('G2 via eth0 at helper')).info.destination).toBe(G2);
    await p0.send('G via eth0', { address: G, port: 7021 });
    const got = await atLean.next('G via eth0');
    expect(got.data).toBe('G via eth0');
    expect(got.info).toMatchObject({ address: 'fe80::2%eth0', interface: eth0, destination: null, hopLimit: null });
    // The device binding and MULTICAST_ALL off kept the other two out in the kernel.
    expect(atLean.items).toEqual([]);
    expect(lean.stats.notJoined).toBe(0);
  });

  test('GRASP style: one socket per interface (the seed), or one socket and a per-packet interface', async () => {
    const hubNs = topo.ns('hub');
    const peers = ['peer0', 'peer1'] as const;
    await using rx0 = new MulticastSocket({ netns: topo.ns('peer0'), port: 7017, reuseAddr: true });
    await using rx1 = new MulticastSocket({ netns: topo.ns('peer1'), port: 7017, reuseAddr: true });
    const inboxes = [new Inbox(rx0), new Inbox(rx1)];
    for (const [i, rx] of [rx0, rx1].entries()) rx.join('ff02::13', { interface: topo.ifindex(peers[i], 'eth0') });

    // Style 1, as the seed does it in Python: a socket per interface, IPV6_MULTICAST_IF by index.
    const hubLinks = ['eth0', 'eth1'].map((name) => topo.ifindex('hub', name));
    const perInterface: MulticastSocket[] = [];
    try {
      // Opened inside the try: if the second one cannot be made, the first is still closed.
      for (const index of hubLinks) perInterface.push(new MulticastSocket({ netns: hubNs, reuseAddr: true, multicastInterface: index, multicastLoopback: false, multicastHopLimit: 1 }));
      for (const [i, s] of perInterface.entries()) await s.send(`style 1 on eth${i}`, { address: 'ff02::13', port: 7017 });
    } finally {
      await Promise.all(perInterface.map((s) => s.close()));
    }
    // Style 2: one socket speaks on every interface, the interface chosen per datagram.
    await using one = new MulticastSocket({ netns: hubNs, multicastLoopback: false, multicastHopLimit: 1 });
    for (const [i, index] of hubLinks.entries()) await one.send(`style 2 on eth${i}`, { address: 'ff02::13', port: 7017, interface: index });

    for (const [i, inbox] of inboxes.entries()) {
      const got = [await inbox.next(`style 1 at peer${i}`), await inbox.next(`style 2 at peer${i}`)];
      expect(got.map((g) => g.data)).toEqual([`style 1 on eth${i}`, `style 2 on eth${i}`]);
      for (const g of got) expect(g.info).toMatchObject({ address: 'fe80::1%eth0', destination: 'ff02::13', hopLimit: 1 });
      expect(inbox.items).toEqual([]);
    }
  });
});

describeRoot("interface: 'all' skips interfaces that are down, not multicast-capable, or loopback", () => {
  const topo = useTopology(() => star(3));

  test('only eth0 qualifies; includeLoopback adds lo; joining all again picks up what came up', async () => {
    const netns = topo.ns('hub');
    execFileSync('ip', ['-n', netns, 'link', 'set', 'eth1', 'down']);
    execFileSync('ip', ['-n', netns, 'link', 'set', 'eth2', 'multicast', 'off']);
    const ref = (name: string) => ({ index: topo.ifindex('hub', name), name });
    await using sock = new MulticastSocket({ netns, port: 7017 });
    expect(sock.join('ff02::13', { interface: 'all' })).toEqual([{ group: 'ff02::13', interface: ref('eth0') }]);
    expect(sock.join('ff02::14', { interface: 'all', includeLoopback: true })).toEqual([
      { group: 'ff02::14', interface: ref('lo') },
      { group: 'ff02::14', interface: ref('eth0') },
    ]);
    execFileSync('ip', ['-n', netns, 'link', 'set', 'eth1', 'up']);
    execFileSync('ip', ['-n', netns, 'link', 'set', 'eth2', 'multicast', 'on']);
    expect(sock.join('ff02::13', { interface: 'all' })).toEqual([
      { group: 'ff02::13', interface: ref('eth1') },
      { group: 'ff02::13', interface: ref('eth2') },
    ]);
    const onHub = igmp6(netns).filter((e) => e.address === 'ff02::13' || e.address === 'ff02::14');
    expect(onHub.map((e) => `${e.address}@${e.interface.name}`).sort()).toEqual(['ff02::13@eth0', 'ff02::13@eth1', 'ff02::13@eth2', 'ff02::14@eth0', 'ff02::14@lo']);
    // leave 'all' drops every interface the socket holds the group on, loopback too.
    expect(sock.leave('ff02::14', { interface: 'all', includeLoopback: false }).map((m) => m.interface.name)).toEqual(['lo', 'eth0']);
    expect(sock.memberships().map((m) => `${m.group}@${m.interface.name}`)).toEqual(['ff02::13@eth0', 'ff02::13@eth1', 'ff02::13@eth2']);
  });
});

describeRoot('source filters on one segment (lan a, b, c)', () => {
  const topo = useTopology(() => lan(['a', 'b', 'c']));
  const A = '2001:db8:1::1';
  const B = '2001:db8:1::2';

  test('source-specific: c joins (S=a, G); a and b both send; only a arrives', async () => {
    const netns = topo.ns('c');
    const G = 'ff3e::4242';
    await using ssm = new MulticastSocket({ netns, port: 7030, reuseAddr: true });
    // A witness on the same port that hears every source, to know when the kernel has
    // decided about each datagram.
    await using witness = new MulticastSocket({ netns, port: 7030, reuseAddr: true });
    const eth0 = { index: topo.ifindex('c', 'eth0'), name: 'eth0' };
    expect(ssm.join(G, { interface: 'eth0', source: A })).toEqual([{ group: G, interface: eth0, source: A }]);
    witness.join(G, { interface: 'eth0' });
    expect(mcfilter6(netns)).toContainEqual({ ifname: 'eth0', group: 'ff3e0000000000000000000000004242', source: '20010db8000100000000000000000001', include: 1, exclude: 0 });
    const atSsm = new Inbox(ssm);
    const atWitness = new Inbox(witness);
    await using a = new MulticastSocket({ netns: topo.ns('a'), multicastInterface: 'eth0' });
    await using b = new MulticastSocket({ netns: topo.ns('b'), multicastInterface: 'eth0' });

    for (const round of [1, 2]) {
      await b.send(`b${round}`, { address: G, port: 7030 });
      expect((await atWitness.next(`b${round} at witness`)).info.address).toBe(B);
      await a.send(`a${round}`, { address: G, port: 7030 });
      expect((await atWitness.next(`a${round} at witness`)).info.address).toBe(A);
      const got = await atSsm.next(`a${round} at the source-specific socket`);
      expect([got.data, got.info.address, got.info.destination]).toEqual([`a${round}`, A, G]);
    }
    // The kernel filtered b out; nothing reached our own filter.
    expect(ssm.stats.notJoined).toBe(0);
    expect(atSsm.items).toEqual([]);
  });

  test('block and unblock on an any-source group', async () => {
    const netns = topo.ns('c');
    const G = 'ff3e::4343';
    await using asm = new MulticastSocket({ netns, port: 7031, reuseAddr: true });
    await using witness = new MulticastSocket({ netns, port: 7031, reuseAddr: true });
    asm.join(G, { interface: 'eth0' });
    witness.join(G, { interface: 'eth0' });
    asm.block(G, { interface: 'eth0', source: A });
    expect(asm.memberships()).toEqual([{ group: G, interface: { index: topo.ifindex('c', 'eth0'), name: 'eth0' }, blocked: [A] }]);
    expect(mcfilter6(netns)).toContainEqual({ ifname: 'eth0', group: 'ff3e0000000000000000000000004343', source: '20010db8000100000000000000000001', include: 0, exclude: 1 });
    expect(() => asm.block(G, { interface: 'eth0', source: A })).toThrow(expect.objectContaining({ code: 'ERR_MULTICAST_ALREADY_BLOCKED' }));
    expect(() => asm.unblock(G, { interface: 'eth0', source: B })).toThrow(expect.objectContaining({ code: 'ERR_MULTICAST_NOT_BLOCKED' }));
    const atAsm = new Inbox(asm);
    const atWitness = new Inbox(witness);
    await using a = new MulticastSocket({ netns: topo.ns('a'), multicastInterface: 'eth0' });
    await using b = new MulticastSocket({ netns: topo.ns('b'), multicastInterface: 'eth0' });

    await a.send('a blocked', { address: G, port: 7031 });
    expect((await atWitness.next('a at witness')).data).toBe('a blocked');
    await b.send('b', { address: G, port: 7031 });
    expect((await atAsm.next('b')).info.address).toBe(B);

    asm.unblock(G, { interface: 'all', source: A });
    expect(asm.memberships()[0].blocked).toBeUndefined();
    await a.send('a again', { address: G, port: 7031 });
    const again = await atAsm.next('a after unblock');
    expect([again.data, again.info.address]).toEqual(['a again', A]);
  });

  test('any-source and source-specific memberships of one group on one interface are refused', async () => {
    await using sock = new MulticastSocket({ netns: topo.ns('c'), port: 7032 });
    sock.join('ff3e::1', { interface: 'eth0', source: A });
    sock.join('ff3e::1', { interface: 'eth0', source: B });
    sock.join('ff3e::2', { interface: 'eth0' });
    const conflict = expect.objectContaining({ code: 'ERR_MULTICAST_SOURCE_CONFLICT' });
    // The kernel would say EADDRINUSE here ...
    expect(() => sock.join('ff3e::1', { interface: 'eth0' })).toThrow(conflict);
    // ... and here it would silently turn the any-source membership into a source-specific one.
    expect(() => sock.join('ff3e::2', { interface: 'eth0', source: A })).toThrow(conflict);
    expect(() => sock.block('ff3e::1', { interface: 'eth0', source: A })).toThrow(conflict);
    expect(() => sock.join('ff3e::1', { interface: 'eth0', source: A })).toThrow(expect.objectContaining({ code: 'ERR_MULTICAST_ALREADY_JOINED' }));
    expect(() => sock.leave('ff3e::1', { interface: 'eth0' })).toThrow(
      expect.objectContaining({ code: 'ERR_MULTICAST_NOT_JOINED', message: expect.stringContaining('joined source-specifically') }),
    );
    expect(sock.memberships().map((m) => [m.group, m.source])).toEqual([
      ['ff3e::1', A],
      ['ff3e::1', B],
      ['ff3e::2', undefined],
    ]);
    sock.leave('ff3e::1', { interface: 'eth0', source: A });
    sock.leave('ff3e::1', { interface: 'eth0', source: B });
    // The last source gone, the group is gone: now an any-source join is fine.
    expect(sock.join('ff3e::1', { interface: 'eth0' })).toHaveLength(1);
  });

  test('more sources than net.ipv6.mld_max_msf: ENOBUFS explained, bookkeeping unchanged', async () => {
    await using sock = new MulticastSocket({ netns: topo.ns('c'), port: 7033 });
    for (let i = 1; i <= 64; i++) sock.join('ff3e::77', { interface: 'eth0', source: `2001:db8:9::${i.toString(16)}` });
    let caught: unknown;
    try {
      sock.join('ff3e::77', { interface: 'eth0', source: '2001:db8:9::1000' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'ENOBUFS', syscall: 'setsockopt', option: 'MCAST_JOIN_SOURCE_GROUP', interface: expect.stringMatching(/^eth0 \(\d+\)$/) });
    expect((caught as Error).message).toMatch(/mld_max_msf/);
    expect(sock.memberships()).toHaveLength(64);
  });
});

describeRoot('limits and teardown (hostPair)', () => {
  const topo = useTopology(() => hostPair());

  test('out of socket option memory: ENOMEM explained, every join before it kept', async () => {
    const netns = topo.ns('a');
    // optmem_max is per namespace: shrink it here so a few dozen memberships exhaust it.
    await topo.exec('a', ['sh', '-c', 'echo 2048 > /proc/sys/net/core/optmem_max']);
    await using sock = new MulticastSocket({ netns, port: 7050 });
    let caught: unknown;
    for (let i = 1; i <= 1000 && caught === undefined; i++) {
      try {
        sock.join(`ff05::${i.toString(16)}`, { interface: 'eth0' });
      } catch (err) {
        caught = err;
      }
    }
    expect(caught).toMatchObject({ code: 'ENOMEM', option: 'MCAST_JOIN_GROUP', netns });
    expect((caught as Error).message).toMatch(/optmem_max/);
    const held = sock.memberships().length;
    expect(held).toBeGreaterThan(0);
    expect(igmp6(netns).filter((e) => e.address.startsWith('ff05::')).length).toBe(held);
  });

  test('an AbortSignal closes the socket, and its memberships go with it', async () => {
    const netns = topo.ns('b');
    const ac = new AbortController();
    await using sock = new MulticastSocket({ netns, port: 7051, signal: ac.signal });
    sock.join('ff02::4141', { interface: 'all' });
    expect(igmp6(netns).some((e) => e.address === 'ff02::4141')).toBe(true);
    const closed = new Promise<void>((resolve) => sock.once('close', resolve));
    ac.abort();
    await closed;
    expect(sock.closed).toBe(true);
    expect(sock.memberships()).toEqual([]);
    expect(igmp6(netns).some((e) => e.address === 'ff02::4141')).toBe(false);
  });
});
