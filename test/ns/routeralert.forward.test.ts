// What forward() sends for a tapped IPv6 packet now that packets are decoded on first read:
// a packet whose decoded parts were never handed out leaves as a copy of its bytes (a wrong
// checksum included), one the application changed is rebuilt. The arrival check of the
// common shape (quickRouterAlert) is held against the full parser.
import { inspect } from 'node:util';
import { UdpSocket, type MessageInfo } from '../../lib';
import { findRouterAlert, option, routerAlert, jumboPayload, encode as encodeHopByHop } from '../../lib/codec/hopbyhop';
import { buildIcmpv6Packet, buildUdpPacket, parsePacket, serializePacket, type UdpPacketSpec } from '../../lib/codec/packet';
import { RawSocket } from '../../lib/sockets/raw';
import { quickRouterAlert } from '../../lib/sockets/routeralert/packet';
import { RouterAlertSocket, type RouterAlertPacket } from '../../lib/sockets/routeralert/socket';
import { mutateBytes, Rng } from '../stress/fuzz/targets';
import { describeRoot } from '../helpers/privileged';
import { chain, useTopology } from '../helpers/topology';
import { dumpedPackets, nextEvent, tcpdump } from '../helpers/wire';


const SENDER = '2001:db8:1::1';
const RECEIVER = '2001:db8:2::2';

/** A UDP packet with a router alert, as a sender on the chain would make it. */
function raUdp(data: string, port: number, extra: Partial<UdpPacketSpec> = {}): Buffer {
  return buildUdpPacket({ source: SENDER, destination: RECEIVER, sourcePort: 4000, destinationPort: port, hopLimit: 64, hopByHop: [routerAlert(5)], data: Buffer.from(data), ...extra });
}

/** The same packet with its UDP checksum off by one (the receiver's UDP stack would drop it). */
function wrongChecksum(b: Buffer, udpAt = 48): Buffer {
  const out = Buffer.from(b);
  out.writeUInt16BE((out.readUInt16BE(udpAt + 6) + 1) & 0xffff || 1, udpAt + 6);
  return out;
}

/** `b` with a destination options header (8 bytes of PadN) between hop-by-hop and UDP. */
function withDestinationOptions(b: Buffer): Buffer {
  const out = Buffer.concat([b.subarray(0, 48), Buffer.from([b[40], 0, 1, 4, 0, 0, 0, 0]), b.subarray(48)]);
  out[40] = 60;
  out.writeUInt16BE(out.length - 40, 4);
  return out;
}

/** What a router sends on for `b`: the same bytes, hop limit one lower. */
function oneHopLower(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out[7]--;
  return out;
}

describe('quickRouterAlert: the arrival check of the common shape', () => {
  test('takes the common shapes and gives their router alert', () => {
    expect(quickRouterAlert(raUdp('x', 7000), 0, 57)).toBe(5);
    const icmp = buildIcmpv6Packet({ source: SENDER, destination: RECEIVER, type: 128, hopByHop: [routerAlert(7)], body: Buffer.from('ping') });
    expect(quickRouterAlert(icmp, 0, icmp.length)).toBe(7);
    // At an offset inside a larger buffer, with trailing bytes after the payload length.
    const inside = Buffer.concat([Buffer.alloc(13, 0xee), raUdp('hello', 7000), Buffer.alloc(5, 0xee)]);
    expect(quickRouterAlert(inside, 13, inside.length - 13)).toBe(5);
    // The first of two alerts, as findRouterAlert says; unknown options do not matter.
    const two = raUdp('x', 7000, { hopByHop: [option(0x3e, Buffer.from([1, 2, 3])), routerAlert(9), routerAlert(5)] });
    expect(quickRouterAlert(two, 0, two.length)).toBe(9);
  });

  test('leaves everything else to the full parser', () => {
    const good = raUdp('12345678', 7000);
    const cases: Array<[string, Buffer]> = [
      ['no hop-by-hop header', buildUdpPacket({ source: SENDER, destination: RECEIVER, sourcePort: 1, destinationPort: 2, data: Buffer.from('x') })],
      ['no router alert', raUdp('x', 7000, { hopByHop: [option(0x3e, Buffer.from([1]))] })],
      ['a destination options header after hop-by-hop', withDestinationOptions(good)],
      ['a jumbo payload option', Buffer.concat([good.subarray(0, 40), encodeHopByHop([routerAlert(5), jumboPayload(70000)], { nextHeader: 17 }), good.subarray(48)])],
      ['payload length 0', Buffer.from(good).fill(0, 4, 6)],
      ['payload length past the data', (() => { const b = Buffer.from(good); b.writeUInt16BE(200, 4); return b; })()],
      ['UDP length past the payload', (() => { const b = Buffer.from(good); b.writeUInt16BE(200, 52); return b; })()],
      ['UDP length under 8', (() => { const b = Buffer.from(good); b.writeUInt16BE(7, 52); return b; })()],
      ['IPv4', Buffer.from(good).fill(0x45, 0, 1)],
      ['cut short', good.subarray(0, 47)],
    ];
    for (const [name, b] of cases) expect([name, quickRouterAlert(b, 0, b.length)]).toEqual([name, -1]);
  });

  test('whatever it takes, parsePacket takes too, with the same alert, and rebuilds unchanged as the bytes that came', () => {
    const r = new Rng(0x5eed);
    const corpus: Buffer[] = [];
    for (let i = 0; i < 64; i++) {
      const hbh = [routerAlert(r.int(0x10000)), ...(r.bool(0.3) ? [option(0x3e + r.int(4), r.bytes(r.int(6)))] : [])];
      if (r.bool(0.5)) hbh.reverse();
      const common = { source: SENDER, destination: RECEIVER, hopLimit: r.int(256), trafficClass: r.int(256), flowLabel: r.int(0x100000), hopByHop: hbh };
      corpus.push(
        r.bool(0.6)
          ? buildUdpPacket({ ...common, sourcePort: r.int(0x10000), destinationPort: r.int(0x10000), data: r.bytes(r.int(64)) })
          : buildIcmpv6Packet({ ...common, type: r.pick([1, 3, 128, 143]), body: r.bytes(r.int(64)) }),
      );
    }
    let taken = 0;
    let checked = 0;
    for (let i = 0; i < 20000; i++) {
      const base = r.pick(corpus);
      const b = r.bool(0.2) ? Buffer.from(base) : mutateBytes(r, base, corpus, [4, 5, 41, 52, 53]);
      const value = quickRouterAlert(b, 0, b.length);
      checked++;
      if (value < 0) continue;
      taken++;
      const p = parsePacket(b, { strict: false });
      expect(p.hopByHop === undefined ? undefined : findRouterAlert(p.hopByHop)).toBe(value);
      expect(p.extensions.map((e) => e.type)).toEqual([0]);
      // forward() of an untouched packet sends this copy; serializePacket must agree.
      if (!serializePacket(p).equals(b.subarray(0, 40 + b.readUInt16BE(4)))) throw new Error(`not rebuilt as it came: ${b.toString('hex')}`);
    }
    expect(checked).toBe(20000);
    // Both sides of the check are exercised.
    expect(taken).toBeGreaterThan(2000);
    expect(taken).toBeLessThan(checked);
  });
});

describeRoot('RouterAlertSocket.forward() on a sender - router - receiver chain', () => {
  const topo = useTopology(() => chain());

  /**
   * Injects `packets` from the sender, lets `handle` look at each tapped packet (by index)
   * before forward(), and returns what crossed the receiver's link.
   */
  async function relay(ra: RouterAlertSocket, packets: Buffer[], handle: (p: RouterAlertPacket, i: number) => void, filter = `ip6[6] == 0 and dst host ${RECEIVER}`): Promise<Buffer[]> {
    await using inject = new RawSocket({ protocol: 255, netns: topo.ns('sender') });
    const dump = await tcpdump(topo, 'receiver', filter, { count: packets.length });
    const results: Array<Promise<unknown>> = [];
    let n = 0;
    ra.on('packet', (p: RouterAlertPacket) => {
      handle(p, n++);
      results.push(ra.forward(p));
    });
    for (const p of packets) await inject.send(p, { address: RECEIVER });
    const out = dumpedPackets(await dump());
    expect(await Promise.all(results)).toEqual(packets.map(() => expect.objectContaining({ forwarded: true })));
    return out;
  }

  test('an untouched packet leaves byte for byte, wrong checksum and all: unread, header read, views read, uncommon shapes', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    const sent = [
      wrongChecksum(raUdp('not read at all', 7200)),
      wrongChecksum(raUdp('header read', 7200, { trafficClass: 0x2c, flowLabel: 0x12345 })),
      wrongChecksum(raUdp('views read', 7200)),
      wrongChecksum(withDestinationOptions(raUdp('destination options', 7200)), 56),
      wrongChecksum(raUdp('shown and copied', 7200)),
      wrongChecksum(withDestinationOptions(raUdp('uncommon, not read', 7200)), 56),
    ];
    const seen: string[] = [];
    let copy: Promise<unknown> | undefined;
    const out = await relay(ra, sent, (p, i) => {
      if (i === 1) seen.push(`${p.header.source} ${p.header.destination} ${p.header.hopLimit} ${p.header.trafficClass} ${p.header.flowLabel} ${p.protocol} ${p.routerAlert}`);
      if (i === 2) {
        // Read-only use of what was handed out changes nothing.
        seen.push(`${p.udp?.data.toString()} ${p.udp?.checksumValid} ${p.hopByHop?.options.length} ${p.extensions.length} ${p.payload.length} ${p.bytes.length}`);
      }
      if (i === 3) seen.push(`${p.destinationOptions?.length} ${p.udp?.data.toString()}`);
      if (i === 4) {
        seen.push(JSON.stringify(Object.keys(JSON.parse(JSON.stringify(p)) as object)));
        seen.push(String(inspect(p).includes("data: <Buffer 73 68 6f 77")));
        // A copy of a tapped packet is not the packet: forward() refuses it, the packet goes on.
        copy = ra.forward({ ...p }).then(
          () => 'forwarded',
          (err: { code?: string }) => err.code,
        );
      }
    });
    expect(await copy).toBe('ERR_INVALID_ARG_VALUE');
    expect(seen).toEqual([
      `${SENDER} ${RECEIVER} 64 44 74565 17 5`,
      'views read false 1 1 18 66',
      '1 destination options',
      '["header","extensions","protocol","payload","hopByHop","udp","family","routerAlert","routerAlerts","interface","bytes"]',
      'true',
    ]);
    expect(out.map((b) => b.toString('hex'))).toEqual(sent.map((b) => oneHopLower(b).toString('hex')));
    expect(ra.stats).toMatchObject({ forwarded: sent.length, malformed: 0 });
  });

  test('a packet the application changed is rebuilt: view changed in place, header field, hop-by-hop removed, bytes edited; the hop limit is the header\'s', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7201, receiveHopByHop: true, receiveTrafficClass: true });
    const got: Array<[string, MessageInfo]> = [];
    rx.on('message', (d: Buffer, info: MessageInfo) => got.push([d.toString(), info]));
    const sent = [raUdp('changed in place', 7201), raUdp('traffic class', 7201), raUdp('no more alert', 7201), raUdp('bytes edited', 7201), raUdp('hop limit', 7201), raUdp('header bytes', 7201)];
    const out = await relay(
      ra,
      sent,
      (p, i) => {
        if (i === 0) p.udp!.data.write('CHANGED', 0); // a lazily decoded view, changed where it lies
        if (i === 1) p.header.trafficClass = 0xb8;
        if (i === 2) p.hopByHop = undefined;
        if (i === 3) p.bytes.write('B', 56); // the data's first byte, in the packet as received
        if (i === 4) p.header.hopLimit = 10;
        // The header is built from its fields, as parsed when `bytes` was handed out.
        if (i === 5) p.bytes[7] = 3;
      },
      `dst host ${RECEIVER} and (ip6[6] == 0 or ip6[6] == 17)`,
    );
    // The receiver's UDP stack takes only valid checksums: every one was recomputed.
    const deadline = Date.now() + 3000;
    while (got.length < sent.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(got.map(([d]) => d)).toEqual(['CHANGED in place', 'traffic class', 'no more alert', 'Bytes edited', 'hop limit', 'header bytes']);
    expect(got[1][1].trafficClass).toBe(0xb8);
    expect(got[0][1].hopByHop).not.toBeNull();
    expect(got[2][1].hopByHop).toBeNull();
    expect(out[2].length).toBe(sent[2].length - 8);
    expect(got.map(([, info]) => info.hopLimit)).toEqual([63, 63, 63, 63, 9, 63]);
    // The hop limit alone is not covered by any checksum: otherwise byte for byte.
    const expected = Buffer.from(sent[4]);
    expected[7] = 9;
    expect(out[4].equals(expected)).toBe(true);
  });

  test('a view assigned without reading it first, and a new payload given to forward(), are sent as such', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7202 });
    await using inject = new RawSocket({ protocol: 255, netns: topo.ns('sender') });
    const got: string[] = [];
    rx.on('message', (d: Buffer) => got.push(d.toString()));
    let n = 0;
    ra.on('packet', (p: RouterAlertPacket) => {
      if (n++ === 0) {
        p.udp = { sourcePort: 4000, destinationPort: 7202, length: 0, checksum: 0, data: Buffer.from('udp assigned') };
        void ra.forward(p);
      } else {
        void ra.forward(p, { payload: 'payload option' });
      }
    });
    const first = nextEvent<[Buffer]>(rx, 'message');
    await inject.send(raUdp('assign udp', 7202), { address: RECEIVER });
    await first;
    const second = nextEvent<[Buffer]>(rx, 'message');
    await inject.send(raUdp('option payload', 7202), { address: RECEIVER });
    await second;
    expect(got).toEqual(['udp assigned', 'payload option']);
    expect(ra.stats).toMatchObject({ forwarded: 2 });
  });

  test('an unread packet with a changed header field is rebuilt, and a bad one is refused and stays pending', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7203 });
    await using inject = new RawSocket({ protocol: 255, netns: topo.ns('sender') });
    const tapped = nextEvent<[RouterAlertPacket]>(ra, 'packet');
    await inject.send(raUdp('new source', 7203), { address: RECEIVER });
    const [pkt] = await tapped;
    pkt.header = { ...pkt.header, source: '2001:db8:1::99' };
    const arrived = nextEvent<[Buffer, MessageInfo]>(rx, 'message');
    await expect(ra.forward(pkt)).resolves.toMatchObject({ forwarded: true });
    const [data, info] = await arrived; // a valid checksum over the new pseudo-header
    expect([data.toString(), info.address]).toEqual(['new source', '2001:db8:1::99']);

    const again = nextEvent<[RouterAlertPacket]>(ra, 'packet');
    await inject.send(raUdp('bad version', 7203), { address: RECEIVER });
    const [bad] = await again;
    bad.header.version = 4;
    await expect(ra.forward(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    bad.header.version = 6;
    const fixed = nextEvent<[Buffer]>(rx, 'message');
    await expect(ra.forward(bad)).resolves.toMatchObject({ forwarded: true });
    expect((await fixed)[0].toString()).toBe('bad version');
    expect(ra.stats).toMatchObject({ forwarded: 2, received: 2 });
  });
});
