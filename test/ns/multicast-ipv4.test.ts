// MulticastSocket over IPv4: the multicast seed's 224.0.1.1 port 5000 sender/receiver pair,
// with interfaces chosen by index (ip_mreqn / group_req) instead of the seed's INADDR_ANY.
import * as os from 'node:os';
import { MulticastSocket } from '../../lib/sockets/multicast';
import { readNetFile } from '../../lib/links/procnet';
import { Inbox } from '../helpers/inbox';
import { describeRoot } from '../helpers/privileged';
import { hostPair, lan, star, useTopology } from '../helpers/topology';

/**
 * The IPv4 memberships of a namespace from /proc/net/igmp, as 'device group' strings. The
 * kernel prints each group as the host-order integer of its network-order bytes (%08X).
 */
function igmp(netns: string): string[] {
  const out: string[] = [];
  let device = '';
  for (const line of readNetFile('igmp', netns).split('\n')) {
    const head = /^\d+\s+(\S+)\s*:/.exec(line);
    if (head) {
      device = head[1];
      continue;
    }
    const group = /^\s+([0-9A-F]{8})\s+\d+/.exec(line);
    if (!group) continue;
    const bytes = Buffer.alloc(4);
    if (os.endianness() === 'LE') bytes.writeUInt32LE(parseInt(group[1], 16));
    else bytes.writeUInt32BE(parseInt(group[1], 16));
    out.push(`${device} ${[...bytes].join('.')}`);
  }
  return out;
}

describeRoot('IPv4: the seed pair, 224.0.1.1 port 5000, interfaces by index (hostPair)', () => {
  const topo = useTopology(() => hostPair());
  const GRUPO = '224.0.1.1';
  const PUERTO = 5000;

  test('the sender sends lines, the receiver bound to the group gets them with source, interface and TTL', async () => {
    const aEth0 = topo.ifindex('a', 'eth0');
    const bEth0 = topo.ifindex('b', 'eth0');
    // Receiver: the seed binds to the group and port and joins; here the join names eth0 by index.
    await using receiver = new MulticastSocket({ family: 4, netns: topo.ns('b'), address: GRUPO, port: PUERTO });
    expect(receiver.join(GRUPO, { interface: bEth0 })).toEqual([{ group: GRUPO, interface: { index: bEth0, name: 'eth0' } }]);
    expect(igmp(topo.ns('b'))).toContain(`eth0 ${GRUPO}`);
    const inbox = new Inbox(receiver);
    // Sender: the seed just calls sendto(); here the outgoing interface is set by index.
    await using sender = new MulticastSocket({ family: 4, netns: topo.ns('a'), multicastInterface: aEth0 });
    expect(sender.getMulticastInterface()).toEqual({ index: aEth0, name: 'eth0' });
    const port = sender.address().port;

    for (const line of ['Hola\n', 'Mundo\n']) await sender.send(line, { address: GRUPO, port: PUERTO });
    sender.setMulticastHopLimit(4);
    await sender.send('TTL 4\n', { address: GRUPO, port: PUERTO });
    await sender.send('TTL 9\n', { address: GRUPO, port: PUERTO, hopLimit: 9 });

    const got = [await inbox.next('Hola'), await inbox.next('Mundo'), await inbox.next('TTL 4'), await inbox.next('TTL 9')];
    expect(got.map((g) => [g.data, g.info.hopLimit])).toEqual([
      ['Hola\n', 1],
      ['Mundo\n', 1],
      ['TTL 4\n', 4],
      ['TTL 9\n', 9],
    ]);
    for (const g of got) {
      expect(g.info).toMatchObject({ address: '192.0.2.1', port, family: 4, destination: GRUPO, interface: { index: bEth0, name: 'eth0' } });
    }
    expect(sender.getMulticastHopLimit()).toBe(4);
  });

  test('lean (receivePacketInfo and receiveHopLimit false, bound to eth0): only its group, from the kernel, without control data', async () => {
    const bEth0 = { index: topo.ifindex('b', 'eth0'), name: 'eth0' };
    const opts = { family: 4, netns: topo.ns('b'), port: PUERTO + 1, reuseAddr: true } as const;
    await using lean = new MulticastSocket({ ...opts, device: 'eth0', receivePacketInfo: false, receiveHopLimit: false });
    expect(() => lean.join(GRUPO, { interface: 'lo' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/must be eth0/) }));
    lean.join(GRUPO, { interface: 'eth0' });
    // Another socket of the port joined another group on the same link.
    await using other = new MulticastSocket(opts);
    other.join('224.0.1.2', { interface: 'eth0' });
    const atLean = new Inbox(lean);
    const atOther = new Inbox(other);
    await using sender = new MulticastSocket({ family: 4, netns: topo.ns('a'), multicastInterface: 'eth0' });

    await sender.send('not joined', { address: '224.0.1.2', port: PUERTO + 1 });
    expect((await atOther.next('224.0.1.2 at the other socket')).data).toBe('not joined');
    await sender.send('joined', { address: GRUPO, port: PUERTO + 1 });
    const got = await atLean.next('joined');
    expect(got.data).toBe('joined');
    expect(got.info).toMatchObject({ address: '192.0.2.1', family: 4, interface: bEth0, destination: null, hopLimit: null });
    expect(atLean.items).toEqual([]);
    expect(lean.stats.notJoined).toBe(0);
  });

  test('looped-back copies arrive on the sending interface; ignoreOwn drops them', async () => {
    const netns = topo.ns('a');
    await using plain = new MulticastSocket({ family: 4, netns, port: 5001, reuseAddr: true });
    await using quiet = new MulticastSocket({ family: 4, netns, port: 5001, reuseAddr: true, ignoreOwn: true });
    plain.join(GRUPO, { interface: 'eth0' });
    quiet.join(GRUPO, { interface: 'eth0' });
    const atPlain = new Inbox(plain);
    const atQuiet = new Inbox(quiet);
    await using tx = new MulticastSocket({ family: 4, netns, multicastInterface: 'eth0' });
    await using peer = new MulticastSocket({ family: 4, netns: topo.ns('b'), multicastInterface: 'eth0' });
    await tx.send('own', { address: GRUPO, port: 5001 });
    expect((await atPlain.next('own')).info).toMatchObject({ address: '192.0.2.1', interface: { name: 'eth0' }, destination: GRUPO });
    await peer.send('peer', { address: GRUPO, port: 5001 });
    expect((await atPlain.next('peer at plain')).info.address).toBe('192.0.2.2');
    expect((await atQuiet.next('peer at quiet')).info.address).toBe('192.0.2.2');
    expect(quiet.stats).toMatchObject({ own: 1, notJoined: 0 });
  });

  test('IPv4 errors: the 21st group is ENOBUFS (igmp_max_memberships), explained; IPv6 groups refused', async () => {
    await using sock = new MulticastSocket({ family: 4, netns: topo.ns('a'), port: 5002 });
    for (let i = 1; i <= 20; i++) sock.join(`239.1.1.${i}`, { interface: 'eth0' });
    let caught: unknown;
    try {
      sock.join('239.1.1.21', { interface: 'eth0' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'ENOBUFS', option: 'MCAST_JOIN_GROUP', address: '239.1.1.21' });
    expect((caught as Error).message).toMatch(/igmp_max_memberships/);
    expect(sock.memberships()).toHaveLength(20);
    expect(() => sock.join('ff02::13', { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('IPv6 address but the socket is IPv4') }));
    expect(() => sock.join('192.0.2.9', { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('224.0.0.0/4') }));
    expect(() => sock.join('239.1.1.1', { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'ERR_MULTICAST_ALREADY_JOINED' }));
    expect(() => sock.join('239.1.1.1', { interface: 'eth0', source: '2001:db8::1' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('IPv6 address but the group 239.1.1.1 is IPv4') }));
    expect(() => sock.setMulticastInterface('eth9')).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => sock.setMulticastHopLimit(256)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => sock.setMulticastLoopback(2 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describeRoot("IPv4 on a hub: interface 'all', /proc/net/igmp, close (star(2))", () => {
  const topo = useTopology(() => star(2));

  test('both links joined, senders told apart by interface, memberships gone after close', async () => {
    const netns = topo.ns('hub');
    await using hub = new MulticastSocket({ family: 4, netns, port: 5000 });
    expect(hub.join('224.0.1.1', { interface: 'all' }).map((m) => m.interface.name)).toEqual(['eth0', 'eth1']);
    expect(igmp(netns)).toEqual(expect.arrayContaining(['eth0 224.0.1.1', 'eth1 224.0.1.1']));
    const inbox = new Inbox(hub);
    await using p0 = new MulticastSocket({ family: 4, netns: topo.ns('peer0') });
    await using p1 = new MulticastSocket({ family: 4, netns: topo.ns('peer1') });
    await p0.send('from peer0', { address: '224.0.1.1', port: 5000, interface: 'eth0' });
    const a = await inbox.next('peer0');
    await p1.send('from peer1', { address: '224.0.1.1', port: 5000, interface: 'eth0' });
    const b = await inbox.next('peer1');
    expect([a.info.address, a.info.interface?.name]).toEqual(['198.18.0.2', 'eth0']);
    expect([b.info.address, b.info.interface?.name]).toEqual(['198.18.1.2', 'eth1']);
    await hub.close();
    expect(igmp(netns).filter((e) => e.endsWith(' 224.0.1.1'))).toEqual([]);
  });
});

describeRoot('IPv4 source-specific membership (lan a, b, c)', () => {
  const topo = useTopology(() => lan(['a', 'b', 'c']));

  test('c joins (S=a, G=232.1.1.1); only a arrives', async () => {
    const netns = topo.ns('c');
    const G = '232.1.1.1';
    await using ssm = new MulticastSocket({ family: 4, netns, port: 5003, reuseAddr: true });
    await using witness = new MulticastSocket({ family: 4, netns, port: 5003, reuseAddr: true });
    ssm.join(G, { interface: 'eth0', source: '192.0.2.1' });
    witness.join(G, { interface: 'eth0' });
    const atSsm = new Inbox(ssm);
    const atWitness = new Inbox(witness);
    await using a = new MulticastSocket({ family: 4, netns: topo.ns('a'), multicastInterface: 'eth0' });
    await using b = new MulticastSocket({ family: 4, netns: topo.ns('b'), multicastInterface: 'eth0' });
    await b.send('b', { address: G, port: 5003 });
    expect((await atWitness.next('b at witness')).info.address).toBe('192.0.2.2');
    await a.send('a', { address: G, port: 5003 });
    const got = await atSsm.next('a');
    expect([got.data, got.info.address, got.info.destination]).toEqual(['a', '192.0.2.1', G]);
    expect(ssm.stats.notJoined).toBe(0);
  });
});
