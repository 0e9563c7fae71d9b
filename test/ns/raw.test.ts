// RawSocket: the ICMPv6 filter (built here, applied by the kernel), kernel checksums,
// header-included sends, multicast joins, and the capability every raw socket needs.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { UdpSocket, type MessageInfo } from '../../lib';
import { buildUdpPacket } from '../../lib/codec/packet';
import { icmpFilterBytes, icmpv6Types, RawSocket } from '../../lib/sockets/raw';
import { describeRoot, testRoot } from '../helpers/privileged';
import { nextMessage } from '../helpers/wire';
import { hostPair, useTopology, type Topology } from '../helpers/topology';

const A = '2001:db8:1::1';
const B = '2001:db8:1::2';

/** Collects the ICMPv6 types a socket receives. */
function typesSeen(sock: RawSocket): number[] {
  const types: number[] = [];
  sock.on('message', (data: Buffer) => types.push(data[0]));
  return types;
}

/** ping inside a host; the exit status is not the point (multicast pings may get no reply). */
function ping(topo: Topology<'a' | 'b'>, host: 'a' | 'b', args: string[]): Promise<void> {
  return topo.exec(host, ['ping', '-6', '-n', '-q', '-W', '1', ...args]).then(
    () => undefined,
    () => undefined,
  );
}

/** The bit of `type` in an ICMP6_FILTER value (host-order u32 words, set = blocked). */
function blocked(filter: Buffer, type: number): boolean {
  const words = new Uint32Array(filter.buffer, filter.byteOffset, 8);
  return (words[type >> 5] & (1 << (type & 31))) !== 0;
}

describe('ICMPv6 filter bytes', () => {
  test('pass: everything blocked but the listed types, by name or number', () => {
    const f = icmpFilterBytes({ pass: ['echo-request', 3] });
    expect(f.length).toBe(32);
    for (let t = 0; t < 256; t++) expect(blocked(f, t)).toBe(t !== 128 && t !== 3);
  });

  test('block: only the listed types blocked', () => {
    const f = icmpFilterBytes({ block: ['echo-reply', 'redirect', 'mldv2-report', 255] });
    for (let t = 0; t < 256; t++) expect(blocked(f, t)).toBe([129, 137, 143, 255].includes(t));
    expect(icmpFilterBytes({ block: [] }).equals(Buffer.alloc(32))).toBe(true);
    expect(icmpFilterBytes({ pass: [] }).equals(Buffer.alloc(32, 0xff))).toBe(true);
    // A hole was skipped by forEach (a filter silently missing a type); a huge sparse list
    // was walked in full. Both are refused before anything is built.
    // eslint-disable-next-line no-sparse-arrays
    expect(() => icmpFilterBytes({ block: [1, , 3] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('filter.block[1]') }));
    const huge: number[] = [];
    huge.length = 2 ** 32 - 1;
    expect(() => icmpFilterBytes({ pass: huge })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('filter.pass.length') }));
  });

  test('every name maps to its RFC number', () => {
    expect(icmpv6Types).toEqual({
      'destination-unreachable': 1,
      'packet-too-big': 2,
      'time-exceeded': 3,
      'parameter-problem': 4,
      'echo-request': 128,
      'echo-reply': 129,
      'mld-query': 130,
      'mld-report': 131,
      'mld-done': 132,
      'router-solicitation': 133,
      'router-advertisement': 134,
      'neighbor-solicitation': 135,
      'neighbor-advertisement': 136,
      redirect: 137,
      'mldv2-report': 143,
    });
  });

  const bad: Array<[string, unknown, string]> = [
    ['null', null, 'ERR_INVALID_ARG_TYPE'],
    ['neither pass nor block', {}, 'ERR_INVALID_ARG_VALUE'],
    ['both pass and block', { pass: [], block: [] }, 'ERR_INVALID_ARG_VALUE'],
    ['pass not an array', { pass: 'echo-request' }, 'ERR_INVALID_ARG_TYPE'],
    ['unknown name', { pass: ['echo'] }, 'ERR_INVALID_ARG_VALUE'],
    ['inherited name', { pass: ['toString'] }, 'ERR_INVALID_ARG_VALUE'],
    ['type 256', { block: [256] }, 'ERR_OUT_OF_RANGE'],
    ['type -1', { block: [-1] }, 'ERR_OUT_OF_RANGE'],
    ['type 1.5', { block: [1.5] }, 'ERR_OUT_OF_RANGE'],
    ['type object', { block: [{}] }, 'ERR_INVALID_ARG_TYPE'],
  ];
  test.each(bad)('rejects %s', (_name, filter, code) => {
    expect(() => icmpFilterBytes(filter)).toThrow(expect.objectContaining({ code }));
  });
});

describe('RawSocket rejects bad options before any system call', () => {
  const cases: Array<[string, unknown, string]> = [
    ['no options', undefined, 'ERR_INVALID_ARG_TYPE'],
    ['protocol missing', {}, 'ERR_INVALID_ARG_TYPE'],
    ["protocol '58'", { protocol: '58' }, 'ERR_INVALID_ARG_TYPE'],
    ['protocol 0', { protocol: 0 }, 'ERR_OUT_OF_RANGE'],
    ['protocol 256', { protocol: 256 }, 'ERR_OUT_OF_RANGE'],
    ['family 5', { protocol: 58, family: 5 }, 'ERR_INVALID_ARG_VALUE'],
    ['icmpFilter on UDP', { protocol: 17, icmpFilter: { pass: [] } }, 'ERR_INVALID_ARG_VALUE'],
    ['icmpFilter on IPv4', { family: 4, protocol: 58, icmpFilter: { pass: [] } }, 'ERR_INVALID_ARG_VALUE'],
    ['icmpFilter unknown type', { protocol: 58, icmpFilter: { pass: ['pong'] } }, 'ERR_INVALID_ARG_VALUE'],
    ['checksumOffset odd', { protocol: 17, checksumOffset: 3 }, 'ERR_INVALID_ARG_VALUE'],
    ['checksumOffset -2', { protocol: 17, checksumOffset: -2 }, 'ERR_OUT_OF_RANGE'],
    ['checksumOffset on ICMPv6', { protocol: 58, checksumOffset: 2 }, 'ERR_INVALID_ARG_VALUE'],
    ['checksumOffset on IPv4', { family: 4, protocol: 17, checksumOffset: 6 }, 'ERR_INVALID_ARG_VALUE'],
    ['headerIncluded not boolean', { protocol: 17, headerIncluded: 1 }, 'ERR_INVALID_ARG_TYPE'],
    ['receiveHopByHop on IPv4', { family: 4, protocol: 17, receiveHopByHop: true }, 'ERR_INVALID_ARG_VALUE'],
    ['bad address', { protocol: 58, address: '2001:db8::g' }, 'ERR_INVALID_ARG_VALUE'],
    ['IPv4 address on IPv6', { protocol: 58, address: '192.0.2.1' }, 'ERR_INVALID_ARG_VALUE'],
    ['device name too long', { protocol: 58, device: 'x'.repeat(16) }, 'ERR_INVALID_ARG_VALUE'],
  ];
  test.each(cases)('%s', (_name, options, code) => {
    expect(() => new RawSocket(options as never)).toThrow(expect.objectContaining({ code }));
  });
});

testRoot('without CAP_NET_RAW every raw socket fails with an error naming the capability', async () => {
  // A child whose bounding set lacks CAP_NET_RAW (root otherwise), loading the compiled package.
  const dist = path.join(__dirname, '..', '..', 'dist', 'lib');
  const script = `
    const { RawSocket } = require(${JSON.stringify(path.join(dist, 'index.js'))});
    const { RouterAlertSocket } = require(${JSON.stringify(path.join(dist, 'index.js'))});
    const { UdpSocket, hopByHop } = require(${JSON.stringify(path.join(dist, 'index.js'))});
    const pick = (e) => ({ code: e.code, syscall: e.syscall, capability: e.capability, message: e.message });
    (async () => {
      const out = {};
      const tries = {
        raw: () => new RawSocket({ protocol: 58 }),
        rawV4: () => new RawSocket({ family: 4, protocol: 1 }),
        routerAlert: () => new RouterAlertSocket({ value: 5 }),
        routerAlertV4: () => new RouterAlertSocket({ family: 4, protocol: 17 }),
        udpStickyHopByHop: () => new UdpSocket({ hopByHop: [hopByHop.routerAlert(5)] }),
      };
      for (const [name, make] of Object.entries(tries)) {
        try { await make().close(); out[name] = 'opened'; } catch (e) { out[name] = pick(e); }
      }
      const udp = new UdpSocket();
      out.udpPlain = await udp.send('x', { address: '::1', port: 9 }).then(() => 'sent', pick);
      out.udpHopByHop = await udp.send('x', { address: '::1', port: 9, hopByHop: [hopByHop.routerAlert(5)] }).then(() => 'sent', pick);
      await udp.close();
      process.stdout.write(JSON.stringify(out));
    })();
  `;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile('setpriv', ['--inh-caps=-all', '--bounding-set=-net_raw', '--', process.execPath, '-e', script], { timeout: 20000 }, (err, out, errOut) =>
      err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
    ),
  );
  const out = JSON.parse(stdout) as Record<string, unknown>;
  const needsNetRaw = { code: 'EPERM', syscall: 'socket', capability: 'CAP_NET_RAW', message: expect.stringContaining('needs CAP_NET_RAW') };
  expect(out.raw).toEqual(needsNetRaw);
  expect(out.rawV4).toEqual(needsNetRaw);
  expect(out.routerAlert).toEqual(needsNetRaw);
  expect(out.routerAlertV4).toEqual(needsNetRaw);
  expect(out.udpStickyHopByHop).toMatchObject({ code: 'EPERM', capability: 'CAP_NET_RAW' });
  // The same child can send without options: only the raw features are missing.
  expect(out.udpPlain).toBe('sent');
  expect(out.udpHopByHop).toMatchObject({ code: 'EPERM', syscall: 'sendmsg' });
});

describeRoot('RawSocket between two hosts', () => {
  const topo = useTopology(() => hostPair());

  test('an ICMPv6 socket that passes echo requests gets ping\'s requests and nothing else; blocked echo replies never arrive', async () => {
    await using requests = new RawSocket({ protocol: 58, netns: topo.ns('b'), icmpFilter: { pass: ['echo-request'] } });
    await using everything = new RawSocket({ protocol: 58, netns: topo.ns('a') });
    await using noReplies = new RawSocket({ protocol: 58, netns: topo.ns('a'), icmpFilter: { block: ['echo-reply'] } });
    const seenB: Array<[Buffer, MessageInfo]> = [];
    requests.on('message', (d: Buffer, i: MessageInfo) => seenB.push([d, i]));
    const seenAll = typesSeen(everything);
    const seenNoReplies = typesSeen(noReplies);
    // Each socket is awaited on its own: the order of two sockets' callbacks is not defined.
    const threeReplies = nextMessage(everything, () => seenAll.filter((t) => t === 129).length === 3);
    const threeRequests = nextMessage(requests, () => seenB.length === 3);

    await ping(topo, 'a', ['-c', '3', '-i', '0.2', B]);
    await Promise.all([threeReplies, threeRequests]);
    expect(seenB.map(([d]) => d[0])).toEqual([128, 128, 128]);
    for (const [data, info] of seenB) {
      expect(info).toMatchObject({ address: A, destination: B, interface: { index: topo.ifindex('b', 'eth0'), name: 'eth0' }, port: 0 });
      expect(data[1]).toBe(0);
    }
    expect(seenB.map(([d]) => d.readUInt16BE(6))).toEqual([1, 2, 3]); // echo sequence numbers

    // A request from b reaches a after a's three replies did: if the filter had let a reply
    // through, it would be queued ahead of this.
    const marker = nextMessage(noReplies, (d) => d[0] === 128);
    await ping(topo, 'b', ['-c', '1', A]);
    await marker;
    expect(seenNoReplies).not.toContain(129);

    // The filter can be changed on an open socket.
    noReplies.setIcmpFilter({ pass: ['echo-reply'] });
    const reply = nextMessage(noReplies);
    await ping(topo, 'a', ['-c', '1', B]);
    expect((await reply)[0][0]).toBe(129);
  });

  test('checksumOffset: the kernel fills in the UDP checksum; without it the receiver drops the datagram', async () => {
    await using rx = new UdpSocket({ netns: topo.ns('b'), port: 7200 });
    await using plain = new RawSocket({ protocol: 17, netns: topo.ns('a') });
    await using summed = new RawSocket({ protocol: 17, netns: topo.ns('a'), checksumOffset: 6 });
    const datagram = (text: string): Buffer => {
      const b = Buffer.alloc(8 + text.length);
      b.writeUInt16BE(4242, 0);
      b.writeUInt16BE(7200, 2);
      b.writeUInt16BE(b.length, 4); // checksum left 0: "none", which IPv6 forbids
      b.write(text, 8);
      return b;
    };
    const got = nextMessage(rx);
    await plain.send(datagram('no checksum'), { address: B });
    await summed.send(datagram('kernel checksum'), { address: B, hopLimit: 5 });
    const [data, info] = await got;
    expect(data.toString()).toBe('kernel checksum');
    expect(info).toMatchObject({ address: A, port: 4242, hopLimit: 5 });
  });

  test('headerIncluded: a whole packet leaves as built (hop limit, traffic class, flow label)', async () => {
    await using rx = new UdpSocket({ netns: topo.ns('b'), port: 7201, receiveTrafficClass: true });
    await using raw = new RawSocket({ protocol: 17, netns: topo.ns('a'), headerIncluded: true });
    expect(raw.headerIncluded).toBe(true);
    expect(raw.protocol).toBe(17);
    const got = nextMessage(rx);
    const packet = buildUdpPacket({ source: A, destination: B, sourcePort: 4243, destinationPort: 7201, hopLimit: 9, trafficClass: 0x28, data: Buffer.from('built by hand') });
    await expect(raw.send(packet, { address: B })).resolves.toBe(packet.length);
    const [data, info] = await got;
    expect(data.toString()).toBe('built by hand');
    expect(info).toMatchObject({ address: A, port: 4243, hopLimit: 9, trafficClass: 0x28 });
  });

  test('join() makes the host accept a group on one interface; leave() ends it', async () => {
    const group = 'ff05::4242';
    const filter = { pass: ['echo-request'] } as const;
    await using joined = new RawSocket({ protocol: 58, netns: topo.ns('b'), icmpFilter: filter });
    await using other = new RawSocket({ protocol: 58, netns: topo.ns('b'), icmpFilter: filter });
    const seen: string[] = [];
    joined.on('message', (_d: Buffer, i: MessageInfo) => seen.push(i.destination ?? ''));
    // A unicast request sent after a group one: once it is here, the group one was delivered or dropped.
    const groupThenUnicast = async (): Promise<void> => {
      await ping(topo, 'a', ['-c', '1', '-I', 'eth0', group]);
      const marker = nextMessage(joined, (_d, i) => i.destination === B);
      await ping(topo, 'a', ['-c', '1', B]);
      await marker;
    };

    await groupThenUnicast();
    expect(seen).toEqual([B]); // not a member: the kernel dropped the group packet

    const eth0 = { index: topo.ifindex('b', 'eth0'), name: 'eth0' };
    // join() returns the memberships added, as MulticastSocket.join() does.
    expect(joined.join(group, { interface: 'eth0' })).toEqual([{ group, interface: eth0 }]);
    const viaOther = nextMessage(other, (_d, i) => i.destination === group);
    const viaGroup = nextMessage(joined, (_d, i) => i.destination === group);
    await groupThenUnicast();
    expect((await viaGroup)[1]).toMatchObject({ address: A, destination: group, interface: { name: 'eth0', index: topo.ifindex('b', 'eth0') } });
    // Linux gives a group the host accepts to every unbound raw socket of the protocol.
    expect((await viaOther)[1].destination).toBe(group);
    expect(seen).toEqual([B, group, B]);

    expect(joined.leave(group, { interface: topo.ifindex('b', 'eth0') })).toEqual([{ group, interface: eth0 }]);
    await groupThenUnicast();
    expect(seen).toEqual([B, group, B, B]);

    // Kernel state errors come back coded, with the option and group named.
    joined.join(group, { interface: 'eth0' });
    expect(() => joined.join(group, { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'EADDRINUSE', option: 'MCAST_JOIN_GROUP', address: group }));
    joined.leave(group, { interface: 'eth0' });
    expect(() => joined.leave(group, { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL', option: 'MCAST_LEAVE_GROUP' }));

    // Source-specific: the membership is the kernel's (EADDRINUSE for a second one), but
    // Linux does not filter by source what it hands a raw socket not bound to an address:
    // the group packet from A, which is not the joined source, arrives all the same.
    expect(joined.join(group, { interface: 'eth0', source: B })).toEqual([{ group, interface: eth0, source: B }]);
    expect(() => joined.join(group, { interface: 'eth0', source: B })).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL', option: 'MCAST_JOIN_SOURCE_GROUP' }));
    await groupThenUnicast();
    expect(seen).toEqual([B, group, B, B, group, B]);
    expect(() => joined.join(group, { interface: 'eth0', source: 'ff02::1' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('unicast') }));
    expect(joined.leave(group, { interface: 'eth0', source: B })).toEqual([{ group, interface: eth0, source: B }]);
  });

  test('bad arguments to send, join and setIcmpFilter, and use after close', async () => {
    await using sock = new RawSocket({ protocol: 58, netns: topo.ns('a') });
    const sendCases: Array<[unknown, unknown, string]> = [
      [42, { address: B }, 'ERR_INVALID_ARG_TYPE'],
      [Buffer.alloc(8), undefined, 'ERR_INVALID_ARG_TYPE'],
      [Buffer.alloc(8), {}, 'ERR_INVALID_ARG_TYPE'],
      [Buffer.alloc(8), { address: 'nope' }, 'ERR_INVALID_ARG_VALUE'],
      [Buffer.alloc(8), { address: B, hopLimit: 256 }, 'ERR_OUT_OF_RANGE'],
      [Buffer.alloc(8), { address: B, interface: 'nosuch0' }, 'ENODEV'],
      [Buffer.alloc(8), { address: 'fe80::2%nosuch0' }, 'ENODEV'],
      [Buffer.alloc(8), { address: B, source: '2001:db8:9::9' }, 'EINVAL'],
      [Buffer.alloc(8), { address: '2001:db8:99::1' }, 'ENETUNREACH'],
    ];
    for (const [data, opts, code] of sendCases) {
      await expect(sock.send(data as never, opts as never)).rejects.toMatchObject({ code });
    }
    expect(() => sock.join('2001:db8::1', { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => sock.join('bogus', { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => sock.join('ff05::1', undefined as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => sock.join('ff05::1', { interface: 'nosuch0' })).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => sock.leave('ff05::1', { interface: 4242 })).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => sock.setIcmpFilter({ pass: ['nope' as never] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    await using udp = new RawSocket({ protocol: 17, netns: topo.ns('a') });
    expect(() => udp.setIcmpFilter({ pass: [] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    // Still usable after all that.
    await expect(sock.send(Buffer.from([128, 0, 0, 0, 0, 1, 0, 1]), { address: B })).resolves.toBe(8);

    await sock.close();
    await expect(sock.send(Buffer.alloc(8), { address: B })).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    expect(() => sock.join('ff05::1', { interface: 'eth0' })).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
    expect(() => sock.setIcmpFilter({ pass: [] })).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
    expect(() => sock.address()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });

  test('unknown device, unknown namespace, an address not on the host: coded system errors', () => {
    expect(() => new RawSocket({ protocol: 58, netns: topo.ns('a'), device: 'nosuch0' })).toThrow(expect.objectContaining({ code: 'ENODEV', interface: 'nosuch0' }));
    expect(() => new RawSocket({ protocol: 58, netns: 'ip6sock-no-such-namespace' })).toThrow(
      expect.objectContaining({ code: 'ENOENT', netns: 'ip6sock-no-such-namespace' }),
    );
    expect(() => new RawSocket({ protocol: 58, netns: topo.ns('a'), address: B })).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL', address: B }));
  });

  test('bound to an address, a raw socket receives only packets sent to it', async () => {
    await using bound = new RawSocket({ protocol: 58, netns: topo.ns('b'), address: B, icmpFilter: { pass: ['echo-request'] } });
    // (getsockname reports a raw socket's protocol where a port would be.)
    expect(bound.address()).toEqual({ address: B, port: 58, family: 6 });
    const dests: string[] = [];
    bound.on('message', (_d: Buffer, i: MessageInfo) => dests.push(i.destination ?? ''));
    await ping(topo, 'a', ['-c', '1', 'fe80::2%eth0']); // to b's link-local address: not for this socket
    const got = nextMessage(bound);
    await ping(topo, 'a', ['-c', '1', B]);
    await got;
    expect(dests).toEqual([B]);
  });
});
