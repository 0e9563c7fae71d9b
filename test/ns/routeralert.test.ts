// RouterAlertSocket on a real sender - router - receiver chain: what the kernel taps, what
// it holds back, what forward() puts on the wire (checked by tcpdump, not by our parser),
// Time Exceeded, namespace isolation, malformed packets, and every bad input.
import { UdpSocket, hopByHop, type MessageInfo } from '../../lib';
import { buildUdpPacket, internetChecksum, parsePacket, upperLayerChecksum } from '../../lib/codec/packet';
import { RawSocket } from '../../lib/sockets/raw';
import { RouterAlertSocket, type ForwardResult, type Ipv4RouterAlertPacket, type RouterAlertPacket } from '../../lib/sockets/routeralert/socket';
import { describeRoot } from '../helpers/privileged';
import { chain, useTopology } from '../helpers/topology';
import { nextEvent, tcpdump } from '../helpers/wire';


const SENDER = '2001:db8:1::1';
const ROUTER_IN = '2001:db8:1::2';
const RECEIVER = '2001:db8:2::2';

const nextPacket = async (ra: RouterAlertSocket): Promise<RouterAlertPacket> => (await nextEvent<[RouterAlertPacket]>(ra, 'packet'))[0];
const nextMessage = (sock: UdpSocket | RawSocket): Promise<[Buffer, MessageInfo]> => nextEvent<[Buffer, MessageInfo]>(sock, 'message');

/** The packet bytes of tcpdump -x output (its hex dump starts at the IP header). */
function hexBytes(out: string): Buffer {
  const hex = out
    .split('\n')
    .map((l) => /^\s+0x[0-9a-f]+:\s+(.*)$/.exec(l)?.[1] ?? '')
    .join(' ')
    .replace(/\s+/g, '');
  return Buffer.from(hex, 'hex');
}

/** An IPv4 + UDP packet (UDP checksum 0, legal over IPv4), optionally with a Router Alert option. */
function ipv4Udp(spec: { source: string; destination: string; ttl: number; port: number; data: string; routerAlert?: number }): Buffer {
  const option = spec.routerAlert === undefined ? Buffer.alloc(0) : Buffer.from([0x94, 0x04, spec.routerAlert >> 8, spec.routerAlert & 0xff]);
  const headerLength = 20 + option.length;
  const data = Buffer.from(spec.data);
  const b = Buffer.alloc(headerLength + 8 + data.length);
  b[0] = 0x40 | (headerLength / 4);
  b.writeUInt16BE(b.length, 2);
  b[8] = spec.ttl;
  b[9] = 17;
  Buffer.from(spec.source.split('.').map(Number)).copy(b, 12);
  Buffer.from(spec.destination.split('.').map(Number)).copy(b, 16);
  option.copy(b, 20);
  b.writeUInt16BE(internetChecksum([b.subarray(0, headerLength)]), 10);
  b.writeUInt16BE(5000, headerLength);
  b.writeUInt16BE(spec.port, headerLength + 2);
  b.writeUInt16BE(8 + data.length, headerLength + 4);
  data.copy(b, headerLength + 8);
  return b;
}

describe('RouterAlertSocket rejects bad options before any system call', () => {
  const cases: Array<[string, unknown, string]> = [
    ['no options', undefined, 'ERR_INVALID_ARG_TYPE'],
    ['options not an object', 'x', 'ERR_INVALID_ARG_TYPE'],
    ['value missing', {}, 'ERR_INVALID_ARG_TYPE'],
    ['value -1', { value: -1 }, 'ERR_OUT_OF_RANGE'],
    ['value 65536', { value: 65536 }, 'ERR_OUT_OF_RANGE'],
    ['value 1.5', { value: 1.5 }, 'ERR_OUT_OF_RANGE'],
    ["value '5'", { value: '5' }, 'ERR_INVALID_ARG_TYPE'],
    ['isolate not boolean', { value: 5, isolate: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
    ['family 5', { value: 5, family: 5 }, 'ERR_INVALID_ARG_VALUE'],
    ['protocol on IPv6', { value: 5, protocol: 17 }, 'ERR_INVALID_ARG_VALUE'],
    ['value on IPv4', { family: 4, protocol: 17, value: 5 }, 'ERR_INVALID_ARG_VALUE'],
    ['IPv4 without protocol', { family: 4 }, 'ERR_INVALID_ARG_TYPE'],
    ['IPv4 protocol 255', { family: 4, protocol: 255 }, 'ERR_OUT_OF_RANGE'],
    ['device name too long', { value: 5, device: 'x'.repeat(16) }, 'ERR_INVALID_ARG_VALUE'],
    ['signal not a signal', { value: 5, signal: {} }, 'ERR_INVALID_ARG_TYPE'],
    ['netns ..', { value: 5, netns: '..' }, 'ERR_INVALID_ARG_VALUE'],
  ];
  test.each(cases)('%s', (_name, options, code) => {
    expect(() => new RouterAlertSocket(options as never)).toThrow(expect.objectContaining({ code }));
  });
});

describeRoot('RouterAlertSocket on a sender - router - receiver chain', () => {
  const topo = useTopology(() => chain());

  test('a router-alert datagram is tapped whole, held back, and after forward() arrives one hop lower with the option intact', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7000, receiveHopByHop: true });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    const wire = await tcpdump(topo, 'receiver', `ip6[6] == 0 and dst host ${RECEIVER}`, { verbose: true });

    const tapped = nextPacket(ra);
    await tx.send('tap me', { address: RECEIVER, port: 7000, hopByHop: [hopByHop.routerAlert(5)] });
    const pkt = await tapped;
    // The whole packet: IPv6 header (original hop limit), hop-by-hop header, UDP, data.
    expect(pkt.family).toBe(6);
    expect(pkt.bytes.length).toBe(40 + 8 + 8 + 6);
    expect(pkt.bytes[0] >> 4).toBe(6);
    expect(pkt.header).toMatchObject({ version: 6, nextHeader: 0, hopLimit: 64, source: SENDER, destination: RECEIVER, payloadLength: 22 });
    expect(pkt.hopByHop?.options).toEqual([{ type: 5, name: 'routerAlert', routerAlert: 5 }]);
    expect([...(pkt.hopByHop?.raw ?? [])]).toEqual([17, 0, 0x05, 0x02, 0x00, 0x05, 0x01, 0x00]);
    expect(pkt.routerAlert).toBe(5);
    expect(pkt.udp).toMatchObject({ sourcePort: tx.address().port, destinationPort: 7000, length: 14, checksumValid: true });
    expect(pkt.udp?.data.toString()).toBe('tap me');
    expect(pkt.interface).toEqual({ index: topo.ifindex('router', 'eth0'), name: 'eth0' });

    // Held back: a plain datagram sent after it reaches the receiver first (same path, in order).
    const first = nextMessage(rx);
    await tx.send('plain', { address: RECEIVER, port: 7000 });
    expect((await first)[0].toString()).toBe('plain');

    const arrived = nextMessage(rx);
    await expect(ra.forward(pkt)).resolves.toEqual({ forwarded: true, bytes: pkt.bytes.length });
    const [data, info] = await arrived;
    expect(data.toString()).toBe('tap me');
    expect(info).toMatchObject({ address: SENDER, destination: RECEIVER, hopLimit: 63 });
    expect(info.hopByHop).not.toBeNull();
    expect(hopByHop.decode(info.hopByHop as Buffer).options).toEqual([{ type: 5, name: 'routerAlert', routerAlert: 5 }]);

    // tcpdump's own decoding of what crossed the receiver's link.
    const out = await wire();
    expect(out).toMatch(/hlim 63\b/);
    expect(out).toMatch(/rtalert: 0x0005/);
    const onWire = hexBytes(out);
    expect(onWire[7]).toBe(63);
    expect([...onWire.subarray(42, 46)]).toEqual([0x05, 0x02, 0x00, 0x05]);
    // Byte for byte the packet the router tapped, but for the hop limit.
    const expected = Buffer.from(pkt.bytes);
    expected[7] = 63;
    expect(onWire.equals(expected)).toBe(true);
    expect(ra.stats).toMatchObject({ received: 1, forwarded: 1, malformed: 0, dropped: 0 });
  });

  test('another router-alert value passes untouched, and a packet addressed to the router itself is not tapped', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7001, receiveHopByHop: true });
    await using local = new UdpSocket({ netns: topo.ns('router'), address: ROUTER_IN, port: 7001 });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    const tapped: RouterAlertPacket[] = [];
    ra.on('packet', (p: RouterAlertPacket) => tapped.push(p));

    const passed = nextMessage(rx);
    await tx.send('value 6', { address: RECEIVER, port: 7001, hopByHop: [hopByHop.routerAlert(6)] });
    const [data6, info6] = await passed;
    expect(data6.toString()).toBe('value 6');
    expect(info6.hopLimit).toBe(63); // the kernel forwarded it
    expect(hopByHop.findRouterAlert(hopByHop.decode(info6.hopByHop as Buffer))).toBe(6);

    const toRouter = nextMessage(local);
    await tx.send('for the router', { address: ROUTER_IN, port: 7001, hopByHop: [hopByHop.routerAlert(5)] });
    expect((await toRouter)[0].toString()).toBe('for the router');

    // Both went through the router before this one: the tap's first packet must be this one.
    const marker = nextPacket(ra);
    await tx.send('marker', { address: RECEIVER, port: 7001, hopByHop: [hopByHop.routerAlert(5)] });
    const pkt = await marker;
    expect(tapped.map((p) => p.udp?.data.toString())).toEqual(['marker']);
    ra.drop(pkt);
    expect(ra.stats).toMatchObject({ dropped: 1, forwarded: 0 });
  });

  test('isolation: a tap in another namespace takes nothing, and without isolation it steals the router\'s packets', async () => {
    // The chain is machine-wide: a value of our own so that no parallel test is affected.
    const value = 40000 + (process.pid % 20000);
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7002 });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    {
      await using isolated = new RouterAlertSocket({ value, netns: topo.ns('sender') });
      const warned = nextEvent<[Error & { code: string }]>(isolated, 'warning');
      isolated.on('packet', (p: RouterAlertPacket) => isolated.drop(p));
      expect((await warned)[0].code).toBe('IP6SOCK_NO_FORWARDING');
      const passed = nextMessage(rx);
      await tx.send('isolated', { address: RECEIVER, port: 7002, hopByHop: [hopByHop.routerAlert(value)] });
      // The router forwarded it, which it does only when no socket took it.
      expect((await passed)[1].hopLimit).toBe(63);
    }
    {
      await using stealer = new RouterAlertSocket({ value, isolate: false, netns: topo.ns('sender') });
      stealer.on('warning', () => undefined);
      expect(stealer.isolate).toBe(false);
      const stolen = nextPacket(stealer);
      await tx.send('stolen', { address: RECEIVER, port: 7002, hopByHop: [hopByHop.routerAlert(value)] });
      const pkt = await stolen;
      expect(pkt.udp?.data.toString()).toBe('stolen');
      // It arrived on the ROUTER's eth0 (index from the router's namespace), not on anything of the sender's.
      expect(pkt.interface?.index).toBe(topo.ifindex('router', 'eth0'));
      stealer.drop(pkt);
      const first = nextMessage(rx);
      await tx.send('after', { address: RECEIVER, port: 7002 });
      expect((await first)[0].toString()).toBe('after'); // 'stolen' never got through
    }
    // Closed again: the router forwards that value as before.
    const again = nextMessage(rx);
    await tx.send('free again', { address: RECEIVER, port: 7002, hopByHop: [hopByHop.routerAlert(value)] });
    expect((await again)[0].toString()).toBe('free again');
  });

  test('the seed\'s ra_policy demo: the router reads the payload, then forwards it; the packet keeps its foreign source', async () => {
    // As in the article: a packet P injected at router0 whose source is not router0's own.
    const text = '请将网卡的MTU缩小为1300，并且调整下面的内核参数：\nnet.core.rmem_default = 400382\n';
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 80 });
    await using inject = new RawSocket({ protocol: 255, netns: topo.ns('sender') });
    expect(inject.headerIncluded).toBe(true);
    const printed: string[] = [];
    const forwarded: Array<Promise<unknown>> = [];
    ra.on('packet', (pkt: RouterAlertPacket) => {
      printed.push(pkt.udp?.data.toString() ?? ''); // ra_policy's printf("%s\n", cmd)
      forwarded.push(ra.forward(pkt)); // hop_limit--, sendto(sd, data, ..., daddr)
    });
    const got = nextMessage(rx);
    const p = buildUdpPacket({
      source: '2001:db8:1::5614', // on the sender's link, but not one of its addresses
      destination: RECEIVER,
      sourcePort: 80,
      destinationPort: 80,
      hopLimit: 255,
      hopByHop: [hopByHop.routerAlert(5)],
      data: Buffer.from(text),
    });
    await inject.send(p, { address: RECEIVER });
    const [data, info] = await got;
    expect(data.toString()).toBe(text);
    expect(info).toMatchObject({ address: '2001:db8:1::5614', hopLimit: 254 });
    expect(printed).toEqual([text]);
    await expect(Promise.all(forwarded)).resolves.toEqual([{ forwarded: true, bytes: p.length }]);
  });

  test('forward() with a new payload rebuilds the datagram: new length and a valid checksum', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7003, receiveHopByHop: true });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    const wire = await tcpdump(topo, 'receiver', `ip6[6] == 0 and dst host ${RECEIVER}`, { verbose: true });
    const tapped = nextPacket(ra);
    await tx.send('reserve 10 Mbit/s', { address: RECEIVER, port: 7003, hopByHop: [hopByHop.routerAlert(5)] });
    const pkt = await tapped;
    const got = nextMessage(rx);
    const result = await ra.forward(pkt, { payload: 'reserve 5 Mbit/s (capped by router1)' });
    expect(result).toEqual({ forwarded: true, bytes: 40 + 8 + 8 + 36 });
    const [data, info] = await got; // the receiver's UDP stack drops a bad checksum
    expect(data.toString()).toBe('reserve 5 Mbit/s (capped by router1)');
    expect(info).toMatchObject({ port: tx.address().port, hopLimit: 63 });
    expect(hopByHop.findRouterAlert(hopByHop.decode(info.hopByHop as Buffer))).toBe(5);
    const out = await wire();
    expect(out).toMatch(/\[udp sum ok\]/);
    expect(out).toMatch(/payload length: 52/);
    // The application's packet object is untouched.
    expect(pkt.udp?.data.toString()).toBe('reserve 10 Mbit/s');

    // Changing a field of the packet is enough: here the router re-labels the alert so
    // that routers further on treat the packet differently (the seed's closing remark).
    const second = nextPacket(ra);
    await tx.send('relabel me', { address: RECEIVER, port: 7003, hopByHop: [hopByHop.routerAlert(5)] });
    const relabel = await second;
    relabel.hopByHop!.options = [hopByHop.routerAlert(6)];
    const got6 = nextMessage(rx);
    await ra.forward(relabel);
    const [data6, info6] = await got6;
    expect(data6.toString()).toBe('relabel me');
    expect(hopByHop.findRouterAlert(hopByHop.decode(info6.hopByHop as Buffer))).toBe(6);
  });

  test('hop limit 1: not forwarded; the sender gets ICMPv6 Time Exceeded (code 0) carrying the packet', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7004 });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    await using icmp = new RawSocket({ protocol: 58, netns: topo.ns('sender'), icmpFilter: { pass: ['time-exceeded'] } });
    const results: Array<Promise<unknown>> = [];
    const tapped: RouterAlertPacket[] = [];
    ra.on('packet', (p: RouterAlertPacket) => {
      tapped.push(p);
      results.push(ra.forward(p));
    });

    // Small: the whole packet comes back.
    let err = nextMessage(icmp);
    await tx.send('expire', { address: RECEIVER, port: 7004, hopLimit: 1, hopByHop: [hopByHop.routerAlert(5)] });
    let [data, info] = await err;
    expect(info).toMatchObject({ address: ROUTER_IN, destination: SENDER, interface: { name: 'eth0' } });
    expect([data[0], data[1]]).toEqual([3, 0]); // Time Exceeded, hop limit exceeded in transit
    expect(data.readUInt32BE(4)).toBe(0); // unused
    const check = Buffer.from(data);
    check.writeUInt16BE(0, 2);
    expect(upperLayerChecksum(ROUTER_IN, SENDER, 58, check)).toBe(data.readUInt16BE(2));
    const invoking = data.subarray(8);
    expect(invoking.equals(tapped[0].bytes)).toBe(true);
    const inner = parsePacket(invoking);
    expect(inner.header).toMatchObject({ hopLimit: 1, source: SENDER, destination: RECEIVER });
    expect(inner.udp?.data.toString()).toBe('expire');

    // Large: cut so that the ICMPv6 packet is exactly the minimum MTU, 1280 bytes.
    err = nextMessage(icmp);
    await tx.send(Buffer.alloc(1400, 0x61), { address: RECEIVER, port: 7004, hopLimit: 1, hopByHop: [hopByHop.routerAlert(5)] });
    [data] = await err;
    expect(40 + data.length).toBe(1280);
    expect(data.subarray(8).equals(tapped[1].bytes.subarray(0, 1232))).toBe(true);

    await expect(Promise.all(results)).resolves.toEqual([
      { forwarded: false, reason: 'hop-limit-exceeded', timeExceededSent: true },
      { forwarded: false, reason: 'hop-limit-exceeded', timeExceededSent: true },
    ]);
    expect(ra.stats).toMatchObject({ hopLimitExceeded: 2, forwarded: 0 });
    // Neither reached the receiver: a plain datagram sent afterwards is the first to arrive.
    const first = nextMessage(rx);
    await tx.send('plain', { address: RECEIVER, port: 7004 });
    expect((await first)[0].toString()).toBe('plain');
  });

  test('malformed packets that the kernel still taps are dropped and counted; the socket carries on', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using inject = new RawSocket({ protocol: 255, netns: topo.ns('sender') });
    const seen: RouterAlertPacket[] = [];
    ra.on('packet', (p: RouterAlertPacket) => {
      seen.push(p);
      ra.drop(p);
    });
    const good = (): Buffer =>
      buildUdpPacket({ source: SENDER, destination: RECEIVER, sourcePort: 4000, destinationPort: 7005, hopByHop: [hopByHop.routerAlert(5)], data: Buffer.from('12345678') });
    const variant = (edit: (b: Buffer) => void): Buffer => {
      const b = good();
      edit(b);
      return b;
    };
    // Tapped by the kernel (it checks only the IPv6 and hop-by-hop headers before the tap):
    const tappedButBad = [
      // payload length cuts the UDP header in half (the router trims the packet to it)
      variant((b) => b.writeUInt16BE(8 + 4, 4)),
      // UDP length larger than the datagram
      variant((b) => b.writeUInt16BE(200, 48 + 4)),
      // UDP length shorter than the UDP header
      variant((b) => b.writeUInt16BE(4, 48 + 4)),
      // a destination options header after the hop-by-hop header that claims 88 bytes
      variant((b) => {
        b[40] = 60;
        b[48] = 17;
        b[49] = 10;
      }),
    ];
    // Dropped by the router's kernel before any tap: they never reach the socket.
    const withHopByHop = (header: number[]): Buffer => {
      const b = good();
      const out = Buffer.concat([b.subarray(0, 40), Buffer.from(header), b.subarray(48)]);
      out.writeUInt16BE(out.length - 40, 4);
      return out;
    };
    const droppedByKernel = [
      // payload length longer than the packet
      variant((b) => b.writeUInt16BE(200, 4)),
      // hop-by-hop header longer than the payload (hdr-ext-len 5: 48 bytes)
      variant((b) => {
        b[41] = 5;
      }),
      // router alert option of length 3 (RFC 2711 says 2)
      withHopByHop([17, 0, 0x05, 0x03, 0x00, 0x05, 0x00, 0x00]),
      // a PadN whose padding is not zero
      withHopByHop([17, 1, 0x05, 0x02, 0x00, 0x05, 0x01, 0x02, 0x00, 0x07, 0x1e, 0x00, 0x01, 0x02, 0x00, 0x00]),
      // a padding run of 10 bytes (at most 7 allowed)
      withHopByHop([17, 1, 0x05, 0x02, 0x00, 0x05, 0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]),
    ];
    for (const p of [...tappedButBad, ...droppedByKernel]) await inject.send(p, { address: RECEIVER });
    // The same path and order: once this one is here, every earlier one was tapped or dropped.
    const last = nextPacket(ra);
    await inject.send(good(), { address: RECEIVER });
    await last;
    expect(seen.map((p) => p.udp?.data.toString())).toEqual(['12345678']);
    expect(ra.stats.malformed).toBe(tappedButBad.length);
    expect(ra.stats.received).toBe(tappedButBad.length + 1);
    expect(ra.stats.dropped).toBe(1);
  });

  test('the async iterator yields tapped packets', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7006 });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    const received: string[] = [];
    rx.on('message', (d: Buffer) => received.push(d.toString()));
    for (const text of ['one', 'two', 'three']) await tx.send(text, { address: RECEIVER, port: 7006, hopByHop: [hopByHop.routerAlert(5)] });
    const seen: string[] = [];
    const timer = setTimeout(() => void ra.close(), 3000); // bounds the loop if a packet never comes
    try {
      for await (const pkt of ra) {
        seen.push(pkt.udp?.data.toString() ?? '');
        await ra.forward(pkt);
        if (seen.length === 3) break;
      }
    } finally {
      clearTimeout(timer); // also when forward() throws out of the loop
    }
    expect(seen).toEqual(['one', 'two', 'three']);
    const last = nextMessage(rx);
    await tx.send('end', { address: RECEIVER, port: 7006 });
    await last;
    expect(received).toEqual(['one', 'two', 'three', 'end']);
  });

  test('a namespace that does not forward gets an IP6SOCK_NO_FORWARDING warning (event, else process warning)', async () => {
    await using host = new RouterAlertSocket({ value: 5, netns: topo.ns('sender') });
    const [warning] = await nextEvent<[Error & { code: string }]>(host, 'warning');
    expect(warning.code).toBe('IP6SOCK_NO_FORWARDING');
    expect(warning.message).toContain('net.ipv6.conf.all.forwarding is 0');
    await using v4 = new RouterAlertSocket({ family: 4, protocol: 17, netns: topo.ns('sender') });
    expect((await nextEvent<[Error]>(v4, 'warning'))[0].message).toContain('net.ipv4.ip_forward is 0');

    const none: Error[] = [];
    await using router = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    router.on('warning', (w: Error) => none.push(w));
    await new Promise((resolve) => setImmediate(resolve)); // past the tick the warning would come on
    expect(none).toEqual([]);

    const spy = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      // An observer: `host` above is the value's forwarding tap in this namespace.
      await using quiet = new RouterAlertSocket({ value: 5, observe: true, netns: topo.ns('sender') });
      await new Promise((resolve) => setImmediate(resolve));
      expect(spy).toHaveBeenCalledWith(expect.stringContaining('never receive'), expect.objectContaining({ code: 'IP6SOCK_NO_FORWARDING' }));
      expect(quiet.closed).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });

  test('IPv4: IP_ROUTER_ALERT taps a forwarded datagram with its IPv4 header; forward() lowers the TTL; TTL 1 gets ICMP Time Exceeded', async () => {
    await using ra = new RouterAlertSocket({ family: 4, protocol: 17, netns: topo.ns('router') });
    await using inject = new RawSocket({ family: 4, protocol: 17, headerIncluded: true, netns: topo.ns('sender') });
    await using rx = new UdpSocket({ family: 4, netns: topo.ns('receiver'), port: 7100 });
    await using tx = new UdpSocket({ family: 4, netns: topo.ns('sender') });
    await using icmp = new RawSocket({ family: 4, protocol: 1, netns: topo.ns('sender') });
    expect(ra.protocol).toBe(17);

    // A datagram to the router itself reaches the raw socket too (ordinary raw delivery): ignored.
    await tx.send('to the router', { address: '192.0.2.2', port: 7100 });
    const tapped = nextEvent<[Ipv4RouterAlertPacket]>(ra, 'packet');
    const sent = ipv4Udp({ source: '192.0.2.1', destination: '192.0.2.66', ttl: 64, port: 7100, data: 'v4 alert', routerAlert: 0 });
    await inject.send(sent, { address: '192.0.2.66' });
    const [pkt] = await tapped;
    expect(ra.stats.ignored).toBe(1);
    expect(pkt.family).toBe(4);
    expect(pkt.header).toMatchObject({ version: 4, headerLength: 24, ttl: 64, protocol: 17, source: '192.0.2.1', destination: '192.0.2.66' });
    expect([...pkt.header.options]).toEqual([0x94, 0x04, 0x00, 0x00]);
    expect(pkt.routerAlert).toBe(0);
    expect(pkt.routerAlerts).toEqual([0]);
    // As sent, but for what the sender's kernel fills in on header-included sends: the
    // identification (it was 0) and the header checksum.
    const asSent = Buffer.from(sent);
    pkt.bytes.copy(asSent, 4, 4, 6);
    pkt.bytes.copy(asSent, 10, 10, 12);
    expect(pkt.bytes.equals(asSent)).toBe(true);
    expect(internetChecksum([pkt.bytes.subarray(0, 24)])).toBe(0);
    expect(pkt.payload.subarray(8).toString()).toBe('v4 alert');
    expect(pkt.interface).toEqual({ index: topo.ifindex('router', 'eth0'), name: 'eth0' });

    const first = nextMessage(rx);
    await tx.send('plain', { address: '192.0.2.66', port: 7100 });
    expect((await first)[0].toString()).toBe('plain'); // held back by the tap
    const arrived = nextMessage(rx);
    await expect(ra.forward(pkt)).resolves.toEqual({ forwarded: true, bytes: sent.length });
    const [data, info] = await arrived;
    expect(data.toString()).toBe('v4 alert');
    expect(info).toMatchObject({ address: '192.0.2.1', hopLimit: 63 });
    await expect(ra.forward(pkt, { payload: 'x' })).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });

    const results: Array<Promise<ForwardResult>> = [];
    const tappedExpired: Ipv4RouterAlertPacket[] = [];
    ra.on('packet', (p: Ipv4RouterAlertPacket) => {
      tappedExpired.push(p);
      results.push(ra.forward(p));
    });
    const expired = ipv4Udp({ source: '192.0.2.1', destination: '192.0.2.66', ttl: 1, port: 7100, data: 'expire', routerAlert: 0 });
    // IPv4 raw sockets have no type filter and receive the IPv4 header: skip to the ICMP part,
    // and past the Port Unreachable the router sent for 'to the router' above.
    const icmpOf = (d: Buffer): Buffer => d.subarray((d[0] & 0x0f) * 4);
    const err = nextEvent<[Buffer, MessageInfo]>(icmp, 'message', 3000, (d) => icmpOf(d)[0] === 11);
    await inject.send(expired, { address: '192.0.2.66' });
    const [reply, replyInfo] = await err;
    expect(replyInfo.address).toBe('192.0.2.2');
    const message = icmpOf(reply);
    expect([message[0], message[1]]).toEqual([11, 0]);
    expect(internetChecksum([message])).toBe(0);
    expect(message.subarray(8).equals(tappedExpired[0].bytes)).toBe(true);
    await expect(Promise.all(results)).resolves.toEqual([{ forwarded: false, reason: 'hop-limit-exceeded', timeExceededSent: true }]);
  });

  test('forward() and drop() misuse and use after close give coded errors', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using other = new RouterAlertSocket({ value: 5, observe: true, netns: topo.ns('router') });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    const mine = nextPacket(ra);
    const theirs = nextPacket(other); // both sockets match: each gets its own copy
    await tx.send('x', { address: RECEIVER, port: 7007, hopByHop: [hopByHop.routerAlert(5)] });
    const pkt = await mine;
    other.drop(await theirs);

    await expect(ra.forward(null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(ra.forward({} as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(ra.forward(Object.assign(parsePacket(pkt.bytes), { family: 6 as const, routerAlert: 5, routerAlerts: [5], interface: null, bytes: pkt.bytes }))).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await expect(other.forward(pkt)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(ra.forward(pkt, 'x' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(ra.forward(pkt, { payload: 42 as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(() => ra.drop(undefined as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => other.drop(pkt)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    // A field broken by the application: rejected, and the packet stays the application's to fix.
    pkt.header.destination = 'not an address';
    await expect(ra.forward(pkt)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    pkt.header.destination = RECEIVER;
    ra.drop(pkt);
    expect(ra.stats.dropped).toBe(1);
    await expect(ra.forward(pkt)).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
    expect(() => ra.drop(pkt)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));

    await ra.close();
    await expect(ra.forward(pkt)).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    expect(() => ra.drop(pkt)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });

  test('an unknown device or namespace is a coded system error', () => {
    expect(() => new RouterAlertSocket({ value: 5, netns: topo.ns('router'), device: 'nosuch0' })).toThrow(
      expect.objectContaining({ code: 'ENODEV', interface: 'nosuch0', netns: topo.ns('router') }),
    );
    expect(() => new RouterAlertSocket({ value: 5, netns: 'ip6sock-no-such-namespace' })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'open', netns: 'ip6sock-no-such-namespace' }),
    );
    expect(() => new RouterAlertSocket({ family: 4, protocol: 17, netns: 'ip6sock-no-such-namespace' })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  test('a tap bound to a device sees only packets that came in there', async () => {
    await using wrong = new RouterAlertSocket({ value: 5, netns: topo.ns('router'), device: 'eth1' });
    await using right = new RouterAlertSocket({ value: 5, netns: topo.ns('router'), device: 'eth0' });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    await using back = new UdpSocket({ netns: topo.ns('receiver') });
    const seenWrong: RouterAlertPacket[] = [];
    wrong.on('packet', (p: RouterAlertPacket) => {
      seenWrong.push(p);
      wrong.drop(p);
    });
    const got = nextPacket(right);
    await tx.send('via eth0', { address: RECEIVER, port: 7008, hopByHop: [hopByHop.routerAlert(5)] });
    right.drop(await got);
    // Sent after the first was tapped, coming in on eth1: if eth1's socket had matched the
    // first packet, that one would be queued ahead of this one.
    const marker = nextPacket(wrong);
    await back.send('via eth1', { address: SENDER, port: 7008, hopByHop: [hopByHop.routerAlert(5)] });
    await marker;
    expect(seenWrong.map((p) => [p.udp?.data.toString(), p.interface?.name])).toEqual([['via eth1', 'eth1']]);
  });
});
