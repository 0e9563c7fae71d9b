import {
  encode as encodeOptions,
  destinationOptions,
  jumboPayload,
  option,
  routerAlert,
  routerAlertValues,
  type HopByHopOption,
} from '../../lib/codec/hopbyhop';
import { parseIpv6 } from '../../lib/codec/ipv6addr';
import {
  buildIcmpv6Packet,
  buildUdpPacket,
  internetChecksum,
  parsePacket,
  serializePacket,
  upperLayerChecksum,
  type Ipv6Packet,
} from '../../lib/codec/packet';
import { thrown } from '../helpers/thrown';

function h(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}

/*
 * Real packets, captured on Linux 6.18 with an AF_PACKET socket on one end of a veth pair
 * between two throwaway network namespaces (Ethernet header stripped). The kernel built
 * them, so their checksums are an oracle independent of this library.
 */

/** python3: UDP socket, setsockopt(IPV6_HOPOPTS, 00 00 05 02 00 05 01 00),
 *  [2001:db8:1::1]:40000 -> [2001:db8:1::2]:7017, data 'ip6sock test'. */
const KERNEL_UDP_RA = h(`
  600a6704 001c 00 40  20010db8000100000000000000000001  20010db8000100000000000000000002
  11 00 05 02 00 05 01 00
  9c40 1b69 0014 8a64  697036736f636b2074657374`);

/** python3: raw ICMPv6 socket, echo request id 0x1234 seq 1 'ping' (checksum by the kernel). */
const KERNEL_ECHO = h(`
  600cafb6 000c 3a 40  20010db8000100000000000000000001  20010db8000100000000000000000002
  80 00 333c 1234 0001 70696e67`);

/** The MLDv2 report (type 143) the kernel sent on link up: hop-by-hop router alert 0 (MLD). */
const KERNEL_MLD2 = h(`
  60000000 0038 00 01  fe80000000000000408da5fffe55e4c0  ff020000000000000000000000000016
  3a 00 05 02 00 00 01 00
  8f 00 c034 0000 0002
  04 00 0000 ff0200000000000000000001ff55e4c0
  04 00 0000 ff0200000000000000000001ff000001`);

/** Router solicitation, from the same capture. */
const KERNEL_RS = h(`
  60000000 0010 3a ff  fe80000000000000408da5fffe55e4c0  ff020000000000000000000000000002
  85 00 e5e6 00000000 0101428da555e4c0`);

/** Neighbour solicitation for 2001:db8:1::2, from the same capture. */
const KERNEL_NS = h(`
  60000000 0020 3a ff  20010db8000100000000000000000001  ff0200000000000000000001ff000002
  87 00 5182 00000000 20010db8000100000000000000000002 0101428da555e4c0`);

/**
 * Straightforward reference for the RFC 8200 §8.1 checksum: build the pseudo-header as
 * bytes, concatenate, pad, add words, fold. `upper` has its checksum field zeroed.
 */
function referenceChecksum(src: string, dst: string, nextHeader: number, upper: Buffer): number {
  const pseudo = Buffer.alloc(40);
  parseIpv6(src).copy(pseudo, 0);
  parseIpv6(dst).copy(pseudo, 16);
  pseudo.writeUInt32BE(upper.length, 32);
  pseudo[39] = nextHeader;
  const all = Buffer.concat([pseudo, upper, Buffer.alloc(upper.length % 2)]);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += all.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** Checks the UDP checksum of a packet's bytes with the reference implementation. */
function udpChecksumOk(bytes: Buffer, finalDestination?: string): boolean {
  const p = parsePacket(bytes);
  const udp = Buffer.from(p.payload.subarray(0, p.udp?.length || p.payload.length));
  const field = udp.readUInt16BE(6);
  udp.writeUInt16BE(0, 6);
  let expected = referenceChecksum(p.header.source, finalDestination ?? p.header.destination, 17, udp);
  if (expected === 0) expected = 0xffff;
  return field === expected;
}

function icmpChecksumOk(bytes: Buffer): boolean {
  const p = parsePacket(bytes);
  const msg = Buffer.from(p.payload);
  const field = msg.readUInt16BE(2);
  msg.writeUInt16BE(0, 2);
  return field === referenceChecksum(p.header.source, p.header.destination, 58, msg);
}

const SRC = '2001:db8:1::1';
const DST = '2001:db8:1::2';

describe('parsePacket on real packets', () => {
  test('UDP with a router alert', () => {
    const p = parsePacket(KERNEL_UDP_RA);
    expect(p.header).toEqual({
      version: 6, trafficClass: 0, flowLabel: 0xa6704, payloadLength: 28, nextHeader: 0, hopLimit: 64,
      source: SRC, destination: DST,
    });
    expect(p.hopByHop).toMatchObject({ nextHeader: 17, length: 8, offset: 40, options: [routerAlert(5)], problems: [] });
    expect(p.hopByHop?.raw).toEqual(h('1100050200050100'));
    expect(p.extensions).toEqual([{ type: 0, offset: 40, length: 8, raw: h('1100050200050100') }]);
    expect(p.protocol).toBe(17);
    expect(p.udp).toEqual({
      sourcePort: 40000, destinationPort: 7017, length: 20, checksum: 0x8a64, checksumValid: true, data: Buffer.from('ip6sock test'),
    });
    expect(p.payload.length).toBe(20);
    expect(p.icmpv6).toBeUndefined();
  });

  test('MLDv2 report: link-local source, router alert 0, ICMPv6 143', () => {
    const p = parsePacket(KERNEL_MLD2);
    expect(p.header).toMatchObject({ hopLimit: 1, source: 'fe80::408d:a5ff:fe55:e4c0', destination: 'ff02::16' });
    expect(p.hopByHop?.options).toEqual([routerAlert(routerAlertValues.MLD)]);
    expect(p.icmpv6).toMatchObject({ type: 143, code: 0, checksum: 0xc034, checksumValid: true });
    expect(p.icmpv6?.body.length).toBe(4 + 2 * 20);
  });

  test('echo request, router and neighbour solicitation', () => {
    expect(parsePacket(KERNEL_ECHO).icmpv6).toEqual({
      type: 128, code: 0, checksum: 0x333c, checksumValid: true, body: h('12340001 70696e67'),
    });
    expect(parsePacket(KERNEL_RS).icmpv6).toMatchObject({ type: 133, checksumValid: true });
    expect(parsePacket(KERNEL_NS)).toMatchObject({ header: { destination: 'ff02::1:ff00:2' }, icmpv6: { type: 135, checksumValid: true } });
  });

  test.each([
    ['UDP + router alert', KERNEL_UDP_RA],
    ['echo request', KERNEL_ECHO],
    ['MLDv2 report', KERNEL_MLD2],
    ['router solicitation', KERNEL_RS],
    ['neighbour solicitation', KERNEL_NS],
  ])('parse -> serialize is the identity: %s', (_name, bytes) => {
    expect(serializePacket(parsePacket(bytes)).toString('hex')).toBe(bytes.toString('hex'));
  });

  test('result buffers are views into the input; a Uint8Array is accepted', () => {
    const copy = Buffer.from(KERNEL_UDP_RA);
    const p = parsePacket(new Uint8Array(copy.buffer, copy.byteOffset, copy.length));
    expect(p.udp?.data.buffer).toBe(copy.buffer);
    copy[copy.length - 1] = 0x21;
    expect(p.udp?.data.toString()).toBe('ip6sock tes!');
  });

  test('the result has only the fields that apply', () => {
    expect(Object.keys(parsePacket(KERNEL_UDP_RA))).toEqual(['header', 'extensions', 'protocol', 'payload', 'hopByHop', 'udp']);
    expect(Object.keys(parsePacket(KERNEL_ECHO))).toEqual(['header', 'extensions', 'protocol', 'payload', 'icmpv6']);
  });

  test('an unusual but valid hop-by-hop layout survives parse -> serialize', () => {
    // Router alert at an odd offset after a 7-byte PadN, then PadN(1): 16 bytes.
    const hbh = h('11 01  01 05 00 00 00 00 00  05 02 00 05  01 01 00');
    const bytes = Buffer.concat([KERNEL_UDP_RA.subarray(0, 40), hbh, KERNEL_UDP_RA.subarray(48)]);
    bytes.writeUInt16BE(16 + 20, 4);
    const p = parsePacket(bytes);
    expect(p.hopByHop?.options).toEqual([routerAlert(5)]);
    expect(serializePacket(p)).toEqual(bytes);
    // Once the options change, they are re-encoded in the canonical layout.
    p.hopByHop!.options = [routerAlert(6)];
    expect(serializePacket(p).subarray(40, 48)).toEqual(h('11 00 05 02 00 06 01 00'));
  });

  test('a copy of a parsed packet is treated as hand-built and still serializes correctly', () => {
    const p = parsePacket(KERNEL_UDP_RA);
    expect(serializePacket({ ...p, header: { ...p.header } })).toEqual(KERNEL_UDP_RA);
  });

  test('bytes after the payload length are ignored', () => {
    const p = parsePacket(Buffer.concat([KERNEL_ECHO, h('deadbeef')]));
    expect(p.icmpv6?.body).toEqual(h('12340001 70696e67'));
    expect(serializePacket(p)).toEqual(KERNEL_ECHO);
  });
});

describe('building packets', () => {
  test('buildUdpPacket reproduces the kernel packet byte for byte', () => {
    const built = buildUdpPacket({
      source: SRC, destination: DST, sourcePort: 40000, destinationPort: 7017, hopLimit: 64, flowLabel: 0xa6704,
      hopByHop: [routerAlert(5)], data: Buffer.from('ip6sock test'),
    });
    expect(built.toString('hex')).toBe(KERNEL_UDP_RA.toString('hex'));
  });

  test('buildIcmpv6Packet reproduces the kernel MLDv2 report and echo request', () => {
    const mld = buildIcmpv6Packet({
      source: 'fe80::408d:a5ff:fe55:e4c0', destination: 'ff02::16', hopLimit: 1,
      hopByHop: [routerAlert(routerAlertValues.MLD)], type: 143, body: KERNEL_MLD2.subarray(48 + 4),
    });
    expect(mld.toString('hex')).toBe(KERNEL_MLD2.toString('hex'));
    const echo = buildIcmpv6Packet({ source: SRC, destination: DST, flowLabel: 0xcafb6, type: 128, body: h('12340001 70696e67') });
    expect(echo.toString('hex')).toBe(KERNEL_ECHO.toString('hex'));
  });

  test('a UDP checksum worked out by hand', () => {
    // Pseudo-header words: 2001 0db8 0 0 0 0 0 0001 | 2001 0db8 0 0 0 0 0 0002 | 0000 0008 | 0000 0011
    // UDP words: 0001 0002 0008 (checksum 0000)
    // Sum (hex): 2*2001 + 2*0db8 + (1 + 2) + 8 + 11 + (1 + 2 + 8) = 4002 + 1b70 + 27 = 5b99
    // Checksum: ~5b99 = a466.
    const b = buildUdpPacket({ source: '2001:db8::1', destination: '2001:db8::2', sourcePort: 1, destinationPort: 2, data: Buffer.alloc(0) });
    expect(b.toString('hex')).toBe('6000000000081140' + '20010db8000000000000000000000001' + '20010db8000000000000000000000002' + '000100020008a466');
    // Two data bytes a4 62 raise the sum (with lengths 10) to exactly ffff: the computed
    // checksum is 0, which UDP over IPv6 must send as ffff (RFC 8200 §8.1).
    const z = buildUdpPacket({ source: '2001:db8::1', destination: '2001:db8::2', sourcePort: 1, destinationPort: 2, data: h('a462') });
    expect(z.readUInt16BE(46)).toBe(0xffff);
    expect(parsePacket(z).udp?.checksumValid).toBe(true);
  });

  test('UDP checksums agree with the reference for many lengths and addresses', () => {
    for (let n = 0; n < 300; n += 7) {
      const data = Buffer.alloc(n, n & 0xff);
      const b = buildUdpPacket({
        source: `2001:db8:${n.toString(16)}::1`, destination: '2001:db8:ffff::fe', sourcePort: 5000 + n, destinationPort: 53,
        hopByHop: n % 2 ? [routerAlert(n)] : undefined, trafficClass: n & 0xff, flowLabel: n * 977, hopLimit: 255, data,
      });
      expect(udpChecksumOk(b)).toBe(true);
      const p = parsePacket(b);
      expect(p.udp?.data).toEqual(data);
      expect(p.header).toMatchObject({ trafficClass: n & 0xff, flowLabel: n * 977, hopLimit: 255 });
    }
  });

  test('defaults: hop limit 64, class and flow label 0, no hop-by-hop header', () => {
    const p = parsePacket(buildUdpPacket({ source: SRC, destination: DST, sourcePort: 1, destinationPort: 2, data: h('00') }));
    expect(p.header).toMatchObject({ version: 6, hopLimit: 64, trafficClass: 0, flowLabel: 0, nextHeader: 17 });
    expect(p.hopByHop).toBeUndefined();
  });

  test('builder argument errors name the field', () => {
    const base = { source: SRC, destination: DST, sourcePort: 1, destinationPort: 2, data: h('00') };
    expect(thrown(() => buildUdpPacket({ ...base, sourcePort: 70000 }))).toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('sourcePort') });
    expect(thrown(() => buildUdpPacket({ ...base, source: '2001:db8::1%eth0' }))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('source') });
    expect(thrown(() => buildUdpPacket({ ...base, data: 'x' as unknown as Buffer })).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => buildUdpPacket({ ...base, flowLabel: 0x100000 })).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => buildIcmpv6Packet({ source: SRC, destination: DST, type: 256 })).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => buildUdpPacket(null as unknown as typeof base)).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('checksum helpers', () => {
  test('internetChecksum: the RFC 1071 §3 example, in any split', () => {
    // Words 0001 f203 f4f5 f6f7 sum to 2ddf0, folded ddf2; the checksum is ~ddf2 = 220d.
    expect(internetChecksum([h('0001f203f4f5f6f7')])).toBe(0x220d);
    expect(internetChecksum([h('0001f2'), h('03f4f5'), h(''), h('f6f7')])).toBe(0x220d);
    expect(internetChecksum([h('00'), h('01'), h('f203f4f5f6f7')])).toBe(0x220d);
    expect(internetChecksum([h('01')])).toBe(0xfeff); // odd byte padded with zero
    expect(thrown(() => internetChecksum('x' as unknown as Uint8Array[])).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => internetChecksum([1 as unknown as Uint8Array])).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  test('upperLayerChecksum matches the kernel and takes text or bytes', () => {
    const udp = Buffer.from(KERNEL_UDP_RA.subarray(48));
    udp.writeUInt16BE(0, 6);
    expect(upperLayerChecksum(SRC, DST, 17, udp)).toBe(0x8a64);
    expect(upperLayerChecksum(parseIpv6(SRC), parseIpv6(DST), 17, udp)).toBe(0x8a64);
    const icmp = Buffer.from(KERNEL_ECHO.subarray(40));
    icmp.writeUInt16BE(0, 2);
    expect(upperLayerChecksum(SRC, DST, 58, icmp)).toBe(0x333c);
    expect(thrown(() => upperLayerChecksum(SRC, Buffer.alloc(4), 17, udp)).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => upperLayerChecksum(SRC, DST, 300, udp)).code).toBe('ERR_OUT_OF_RANGE');
  });
});

/** Extension headers for chain tests. */
const SRH = h(`
  00 04 04 01 01 00 0000
  20010db8000900000000000000000001
  20010db8000200000000000000000001`); // segment routing, 2 segments, 1 left; segment 0 is final
const FRAG_ATOMIC = h('00 00 0000 0badf00d');
const AH = h('00 04 0000 00000100 00000001 000000000000000000000000'); // (4 + 2) * 4 = 24 bytes

function ext(type: number, raw: Buffer): Ipv6Packet['extensions'][number] {
  return { type, offset: 0, length: raw.length, raw };
}

function handBuilt(extensions: Ipv6Packet['extensions'], upper: Partial<Ipv6Packet>, hbh?: Ipv6Packet['hopByHop']): Ipv6Packet {
  const pkt: Ipv6Packet = {
    header: { version: 6, trafficClass: 0, flowLabel: 0, payloadLength: 0, nextHeader: 0, hopLimit: 64, source: SRC, destination: '2001:db8:2::1' },
    extensions,
    protocol: 17,
    payload: Buffer.alloc(0),
    ...upper,
  };
  if (hbh) pkt.hopByHop = hbh;
  return pkt;
}

function hbhView(options: HopByHopOption[]): NonNullable<Ipv6Packet['hopByHop']> {
  return { nextHeader: 0, length: 0, offset: 40, options, problems: [], raw: Buffer.alloc(0) };
}

describe('extension header chain', () => {
  const dest1 = destinationOptions.encode([option(0x3e, h('01'))]);
  const dest2 = destinationOptions.encode([option(0x1e, h('0203'))]);
  const udp = { sourcePort: 9, destinationPort: 7, length: 0, checksum: 0, data: Buffer.from('chain') };

  test('hop-by-hop, destination, routing, fragment, AH, destination, UDP', () => {
    const bytes = serializePacket(handBuilt(
      [ext(60, dest1), ext(43, SRH), ext(44, FRAG_ATOMIC), ext(51, AH), ext(60, dest2)],
      { udp },
      hbhView([routerAlert(5)]),
    ));
    const p = parsePacket(bytes);
    expect(p.extensions.map(({ type, offset, length }) => [type, offset, length])).toEqual([
      [0, 40, 8], [60, 48, 8], [43, 56, 40], [44, 96, 8], [51, 104, 24], [60, 128, 8],
    ]);
    // Next-header bytes were linked by serializePacket.
    expect(p.extensions.map((e) => e.raw[0])).toEqual([60, 43, 44, 51, 60, 17]);
    expect(p.header.nextHeader).toBe(0);
    expect(p.destinationOptions?.map((d) => [d.offset, d.beforeRouting, d.options])).toEqual([
      [48, true, [option(0x3e, h('01'))]],
      [128, false, [option(0x1e, h('0203'))]],
    ]);
    expect(p.routing).toEqual({ routingType: 4, segmentsLeft: 1, finalDestination: '2001:db8:9::1' });
    expect(p.fragment).toEqual({ offset: 0, more: false, identification: 0x0badf00d });
    expect(p.protocol).toBe(17);
    expect(p.udp).toMatchObject({ sourcePort: 9, destinationPort: 7, length: 13, checksumValid: true });
    // The checksum covers the final destination (segment 0), not the header's destination.
    expect(udpChecksumOk(bytes, '2001:db8:9::1')).toBe(true);
    expect(udpChecksumOk(bytes)).toBe(false);
    expect(serializePacket(p)).toEqual(bytes);
  });

  test('with no segments left the header destination is final', () => {
    const done = Buffer.from(SRH);
    done[3] = 0;
    const bytes = serializePacket(handBuilt([ext(43, done)], { udp }));
    const p = parsePacket(bytes);
    expect(p.routing).toEqual({ routingType: 4, segmentsLeft: 0 });
    expect(udpChecksumOk(bytes)).toBe(true);
  });

  test('ESP stops the walk', () => {
    const bytes = serializePacket(handBuilt([], { protocol: 50, payload: h('00000100 00000001 abcdef') }, hbhView([routerAlert(1)])));
    const p = parsePacket(bytes);
    expect(p.extensions.map((e) => e.type)).toEqual([0]);
    expect(p.protocol).toBe(50);
    expect(p.payload).toEqual(h('00000100 00000001 abcdef'));
    expect(p.udp).toBeUndefined();
  });

  test('no next header (59): the rest is kept and passed on unchanged', () => {
    const bytes = serializePacket(handBuilt([ext(60, dest1)], { protocol: 59, payload: h('0102') }));
    const p = parsePacket(bytes);
    expect(p.protocol).toBe(59);
    expect(p.payload).toEqual(h('0102'));
    expect(serializePacket(p)).toEqual(bytes);
  });

  test('a non-first fragment: the walk stops, the upper layer stays raw', () => {
    const frag = h('00 00 05a8 12345678'); // offset 1448 bytes (181 * 8), M = 0
    const bytes = serializePacket(handBuilt([ext(44, frag)], { payload: h('0102030405060708090a') }));
    const p = parsePacket(bytes);
    expect(p.fragment).toEqual({ offset: 1448, more: false, identification: 0x12345678 });
    expect(p.protocol).toBe(17);
    expect(p.udp).toBeUndefined();
    expect(p.payload).toEqual(h('0102030405060708090a'));
    expect(serializePacket(p)).toEqual(bytes);
  });

  test('a first fragment: headers continue, the datagram is incomplete so UDP is not decoded', () => {
    const frag = h('00 00 0001 00000001'); // offset 0, M = 1
    const bytes = serializePacket(handBuilt([ext(44, frag), ext(60, dest1)], { payload: h('0009000700200000') }));
    const p = parsePacket(bytes);
    expect(p.extensions.map((e) => e.type)).toEqual([44, 60]);
    expect(p.fragment).toMatchObject({ offset: 0, more: true });
    expect(p.udp).toBeUndefined();
  });
});

describe('malformed packets', () => {
  const good = KERNEL_UDP_RA;
  function mutate(fn: (b: Buffer) => Buffer | void): Buffer {
    const b = Buffer.from(good);
    return fn(b) ?? b;
  }
  test.each<[string, Buffer, number]>([
    ['shorter than 40 bytes', good.subarray(0, 39), 0],
    ['empty', Buffer.alloc(0), 0],
    ['IPv4 version', mutate((b) => { b[0] = 0x45; }), 0],
    ['payload length beyond the data', good.subarray(0, good.length - 1), 4],
    ['hdr-ext-len lying upward', mutate((b) => { b[41] = 3; }), 41],
    ['option length past the header', mutate((b) => { b[43] = 9; }), 42],
    ['non-zero PadN byte (strict)', mutate((b) => { h('11 00 01 04 00 00 00 07').copy(b, 40); }), 47],
    ['UDP length below 8', mutate((b) => { b.writeUInt16BE(7, 52); }), 52],
    ['UDP length beyond the payload', mutate((b) => { b.writeUInt16BE(21, 52); }), 52],
    ['UDP length 0 outside a jumbogram', mutate((b) => { b.writeUInt16BE(0, 52); }), 52],
    ['UDP header truncated', mutate((b) => { b.writeUInt16BE(8 + 7, 4); return b.subarray(0, 40 + 15); }), 48],
    ['payload length 0 with a hop-by-hop header and no jumbo option', mutate((b) => { b.writeUInt16BE(0, 4); }), 4],
    ['hop-by-hop header not first', serializePacket(handBuilt([ext(60, destinationOptions.encode([]))], { protocol: 0, payload: encodeOptions([], { nextHeader: 59 }) })), 48],
    ['ICMPv6 shorter than 4 bytes', mutate((b) => { b[6] = 58; b.writeUInt16BE(3, 4); return b.subarray(0, 43); }), 40],
    ['fragment header truncated', mutate((b) => { b[6] = 44; b.writeUInt16BE(6, 4); return b.subarray(0, 46); }), 40],
    ['AH length lying', mutate((b) => { b[6] = 51; b[41] = 6; }), 40],
  ])('%s -> ERR_PACKET_MALFORMED at the offending offset', (_name, bytes, offset) => {
    const err = thrown(() => parsePacket(bytes));
    expect(err.code).toBe('ERR_PACKET_MALFORMED');
    expect(err.offset).toBe(offset);
    expect(err.message).toContain(`offset ${offset}`);
  });

  test('non-strict parsing of a non-zero PadN byte', () => {
    const b = buildUdpPacket({ source: SRC, destination: DST, sourcePort: 1, destinationPort: 2, hopByHop: [option(0x3e, h('01'))], data: h('00') });
    // Header: 11 00 3e 01 01 | 01 01 00: make the PadN byte non-zero.
    b[47] = 0x55;
    expect(thrown(() => parsePacket(b))).toMatchObject({ code: 'ERR_PACKET_MALFORMED', offset: 47 });
    const p = parsePacket(b, { strict: false });
    expect(p.hopByHop?.problems).toEqual([{ offset: 7, reason: 'padding-not-zero', message: expect.any(String) }]);
    expect(serializePacket(p)).toEqual(b); // raw bytes kept
  });

  test('input type errors', () => {
    expect(thrown(() => parsePacket('60' as unknown as Buffer)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => parsePacket(good, { strict: 1 as unknown as boolean })).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('jumbograms (RFC 2675)', () => {
  test('build, parse and re-serialize a 70,000-byte UDP datagram', () => {
    const data = Buffer.alloc(70000, 0x5a);
    const pkt = handBuilt([], { udp: { sourcePort: 1, destinationPort: 2, length: 0, checksum: 0, data } }, hbhView([jumboPayload(65536)]));
    const bytes = serializePacket(pkt);
    expect(bytes.length).toBe(40 + 8 + 8 + 70000);
    expect(bytes.readUInt16BE(4)).toBe(0); // payload length 0
    const p = parsePacket(bytes);
    expect(p.hopByHop?.options).toEqual([jumboPayload(8 + 8 + 70000)]);
    expect(p.udp).toMatchObject({ length: 0, checksumValid: true });
    expect(p.udp?.data.length).toBe(70000);
    expect(udpChecksumOk(bytes)).toBe(true);
    expect(serializePacket(p).equals(bytes)).toBe(true);
  });

  test('over 65535 bytes without a jumbo option, or a jumbo option on a small packet', () => {
    const big = { sourcePort: 1, destinationPort: 2, length: 0, checksum: 0, data: Buffer.alloc(70000) };
    expect(thrown(() => serializePacket(handBuilt([], { udp: big }))).code).toBe('ERR_OUT_OF_RANGE');
    const small = { ...big, data: Buffer.alloc(10) };
    expect(thrown(() => serializePacket(handBuilt([], { udp: small }, hbhView([jumboPayload(65536)])))).code).toBe('ERR_INVALID_ARG_VALUE');
  });

  test('a jumbo option with a non-zero payload length is malformed', () => {
    const p = serializePacket(handBuilt([], { udp: { sourcePort: 1, destinationPort: 2, length: 0, checksum: 0, data: Buffer.alloc(70000) } }, hbhView([jumboPayload(65536)])));
    p.writeUInt16BE(100, 4);
    expect(thrown(() => parsePacket(p))).toMatchObject({ code: 'ERR_PACKET_MALFORMED', offset: 4 });
  });
});

describe('serializePacket after changes', () => {
  function differingBytes(a: Buffer, b: Buffer): number[] {
    const out: number[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) out.push(i);
    return out;
  }

  test('decrementing the hop limit (forwarding) changes only byte 7', () => {
    const p = parsePacket(KERNEL_UDP_RA);
    p.header.hopLimit -= 1;
    const out = serializePacket(p);
    expect(differingBytes(out, KERNEL_UDP_RA)).toEqual([7]);
    expect(out[7]).toBe(63);
  });

  test('does not modify the packet object', () => {
    const p = parsePacket(KERNEL_UDP_RA);
    p.udp!.data = Buffer.from('changed');
    const before = JSON.stringify(p);
    serializePacket(p);
    expect(JSON.stringify(p)).toBe(before);
  });

  test('changed hop-by-hop options are re-encoded; the UDP checksum does not cover them', () => {
    const p = parsePacket(KERNEL_UDP_RA);
    p.hopByHop!.options[0] = routerAlert(routerAlertValues.RSVP);
    const out = serializePacket(p);
    expect(differingBytes(out, KERNEL_UDP_RA)).toEqual([45]);
    expect(parsePacket(out).hopByHop?.options).toEqual([routerAlert(1)]);
    expect(udpChecksumOk(out)).toBe(true);
  });

  test('adding and removing the hop-by-hop header relinks the chain', () => {
    const echo = parsePacket(KERNEL_ECHO);
    echo.hopByHop = hbhView([routerAlert(7)]);
    const withHbh = parsePacket(serializePacket(echo));
    expect(withHbh.header).toMatchObject({ nextHeader: 0, payloadLength: 12 + 8 });
    expect(withHbh.hopByHop).toMatchObject({ nextHeader: 58, options: [routerAlert(7)] });
    expect(withHbh.icmpv6).toMatchObject({ checksum: 0x333c, checksumValid: true });

    const udp = parsePacket(KERNEL_UDP_RA);
    delete udp.hopByHop;
    const out = serializePacket(udp);
    expect(out.length).toBe(KERNEL_UDP_RA.length - 8);
    expect(parsePacket(out)).toMatchObject({ header: { nextHeader: 17, payloadLength: 20 }, udp: { checksum: 0x8a64, checksumValid: true } });
  });

  test('new UDP data: length and checksum recomputed', () => {
    const p = parsePacket(KERNEL_UDP_RA);
    p.udp!.data = Buffer.from('a longer message than before');
    const out = serializePacket(p);
    const q = parsePacket(out);
    expect(q.udp).toMatchObject({ length: 8 + 28, checksumValid: true, data: Buffer.from('a longer message than before') });
    expect(q.header.payloadLength).toBe(8 + 8 + 28);
    expect(udpChecksumOk(out)).toBe(true);
  });

  test('data changed in place is detected too', () => {
    const bytes = Buffer.from(KERNEL_UDP_RA);
    const p = parsePacket(bytes);
    p.udp!.data[0] = 0x49; // 'I'
    const out = serializePacket(p);
    expect(parsePacket(out).udp).toMatchObject({ checksumValid: true });
    expect(out.readUInt16BE(54)).not.toBe(0x8a64);
  });

  test('changed addresses and ports recompute the checksum', () => {
    for (const change of [
      (p: Ipv6Packet) => { p.header.source = '2001:db8:1::99'; },
      (p: Ipv6Packet) => { p.header.destination = '2001:db8:7::2'; },
      (p: Ipv6Packet) => { p.udp!.destinationPort = 7018; },
    ]) {
      const p = parsePacket(KERNEL_UDP_RA);
      change(p);
      const out = serializePacket(p);
      expect(out.readUInt16BE(54)).not.toBe(0x8a64);
      expect(udpChecksumOk(out)).toBe(true);
    }
  });

  test('a wrong checksum is forwarded as is, repaired by recompute, kept by keep', () => {
    const bad = Buffer.from(KERNEL_UDP_RA);
    bad.writeUInt16BE(0x1234, 54);
    const p = parsePacket(bad);
    expect(p.udp?.checksumValid).toBe(false);
    p.header.hopLimit = 9;
    expect(serializePacket(p).readUInt16BE(54)).toBe(0x1234);
    expect(serializePacket(p, { checksum: 'recompute' }).readUInt16BE(54)).toBe(0x8a64);
    p.udp!.data = Buffer.from('other');
    expect(serializePacket(p, { checksum: 'keep' }).readUInt16BE(54)).toBe(0x1234);
    expect(udpChecksumOk(serializePacket(p))).toBe(true);
  });

  test('a zero UDP checksum (no checksum, RFC 6936 tunnels) is not invented on forwarding', () => {
    const zero = Buffer.from(KERNEL_UDP_RA);
    zero.writeUInt16BE(0, 54);
    const p = parsePacket(zero);
    expect(p.udp?.checksumValid).toBe(false);
    expect(serializePacket(p)).toEqual(zero);
  });

  test('an assigned checksum is written as given', () => {
    const p = parsePacket(KERNEL_ECHO);
    p.icmpv6!.checksum = 0xbeef;
    expect(serializePacket(p).readUInt16BE(42)).toBe(0xbeef);
  });

  test('ICMPv6: new body or type recomputes the checksum', () => {
    const p = parsePacket(KERNEL_ECHO);
    p.icmpv6!.type = 129; // echo reply
    p.header.source = DST;
    p.header.destination = SRC;
    const out = serializePacket(p);
    expect(icmpChecksumOk(out)).toBe(true);
    expect(parsePacket(out).icmpv6).toMatchObject({ type: 129, checksumValid: true, body: h('12340001 70696e67') });
  });

  test('a reassigned payload becomes the datagram, with length and checksum fixed', () => {
    const p = parsePacket(KERNEL_UDP_RA);
    p.payload = h('0035 0035 0000 0000 68656c6c6f'); // ports 53 -> 53, 'hello', stale length/checksum
    const out = serializePacket(p);
    const q = parsePacket(out);
    expect(q.udp).toMatchObject({ sourcePort: 53, destinationPort: 53, length: 13, checksumValid: true, data: Buffer.from('hello') });
    expect(q.hopByHop?.options).toEqual([routerAlert(5)]);
  });

  test('changing both the payload and the UDP view is refused', () => {
    const p = parsePacket(KERNEL_UDP_RA);
    p.payload = h('0035003500000000');
    p.udp!.sourcePort = 1;
    expect(thrown(() => serializePacket(p)).code).toBe('ERR_INVALID_ARG_VALUE');
  });

  test('bytes after the UDP length survive an untouched packet', () => {
    const b = Buffer.from(KERNEL_UDP_RA);
    b.writeUInt16BE(0x0014 - 4, 52); // UDP length 16: 'ip6sock ' is the datagram, 'test' trails
    b.writeUInt16BE(upperLayerChecksum(SRC, DST, 17, Buffer.concat([b.subarray(48, 54), h('0000'), b.subarray(56, 64)])), 54);
    const p = parsePacket(b);
    expect(p.udp).toMatchObject({ length: 16, checksumValid: true, data: Buffer.from('ip6sock ') });
    expect(serializePacket(p)).toEqual(b);
  });

  test('field errors', () => {
    const cases: [string, (p: Ipv6Packet) => void, string][] = [
      ['version', (p) => { p.header.version = 4; }, 'ERR_INVALID_ARG_VALUE'],
      ['hop limit', (p) => { p.header.hopLimit = 256; }, 'ERR_OUT_OF_RANGE'],
      ['source', (p) => { p.header.source = '192.0.2.1'; }, 'ERR_INVALID_ARG_VALUE'],
      ['extension type', (p) => { p.extensions.push(ext(17, h('1100000000000000'))); }, 'ERR_INVALID_ARG_VALUE'],
      ['extension length', (p) => { p.extensions.push(ext(60, h('1101000000000000'))); }, 'ERR_INVALID_ARG_VALUE'],
      ['protocol', (p) => { p.protocol = -1; }, 'ERR_OUT_OF_RANGE'],
      ['options', (p) => { p.hopByHop!.options = 'x' as never; }, 'ERR_INVALID_ARG_TYPE'],
      ['udp port', (p) => { p.udp!.sourcePort = 1.5; }, 'ERR_OUT_OF_RANGE'],
      ['checksum mode', () => undefined, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [name, change, code] of cases) {
      const p = parsePacket(KERNEL_UDP_RA);
      change(p);
      const opts = name === 'checksum mode' ? { checksum: 'maybe' as never } : undefined;
      expect([name, thrown(() => serializePacket(p, opts)).code]).toEqual([name, code]);
    }
    expect(thrown(() => serializePacket(null as never)).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('serializing reads its input once', () => {
  test('a hop-by-hop data getter that answers 200 bytes, then none: a consistent packet, every byte written', () => {
    let reads = 0;
    const opt = {
      type: 0x3e,
      name: 'unknown',
      action: 0,
      mayChange: true,
      get data(): Buffer {
        return reads++ === 0 ? Buffer.alloc(200, 0xab) : Buffer.alloc(0);
      },
    } as HopByHopOption;
    const bytes = buildUdpPacket({ source: '2001:db8::1', destination: '2001:db8::2', sourcePort: 1, destinationPort: 2, hopByHop: [opt], data: Buffer.from('hi') });
    expect(reads).toBe(1);
    const pkt = parsePacket(bytes);
    expect(pkt.hopByHop?.options).toEqual([expect.objectContaining({ type: 0x3e, data: Buffer.alloc(200, 0xab) })]);
    expect(pkt.udp?.checksumValid).toBe(true);
    expect(pkt.udp?.data.toString()).toBe('hi');
    expect(bytes.length).toBe(40 + 208 + 8 + 2);
  });

  test('serializePacket: a Proxy view whose fields change between reads is read once per field', () => {
    const base = parsePacket(buildUdpPacket({ source: '2001:db8::1', destination: '2001:db8::2', sourcePort: 1, destinationPort: 2, hopByHop: [routerAlert(5)], data: Buffer.from('hi') }));
    const reads = new Map<PropertyKey, number>();
    const counted = <T extends object>(target: T, prefix: string, later: Record<string, unknown>): T =>
      new Proxy(target, {
        get(t, key, receiver) {
          const name = `${prefix}${String(key)}`;
          const n = reads.get(name) ?? 0;
          reads.set(name, n + 1);
          if (n > 0 && typeof key === 'string' && key in later) return later[key];
          return Reflect.get(t, key, receiver) as unknown;
        },
      });
    const pkt = {
      ...base,
      header: counted({ ...base.header }, 'header.', { source: 'not an address', hopLimit: 300 }),
      hopByHop: counted({ ...base.hopByHop! }, 'hopByHop.', { options: [{ type: 0x3e, data: Buffer.alloc(200) }] }),
      udp: counted({ ...base.udp! }, 'udp.', { data: Buffer.alloc(0), sourcePort: 70000 }),
    };
    const out = serializePacket(pkt);
    expect(out.toString('hex')).toBe(serializePacket({ ...base }).toString('hex'));
    for (const [key, n] of reads) expect({ key, n }).toEqual({ key, n: 1 });
  });
});
