import { AddressCache, formatIpv6, isLinkLocalIpv6, parseIpv6, writeIpv6 } from '../../lib/codec/ipv6addr';

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function codeOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return 'no error';
}

describe('parseIpv6', () => {
  test.each([
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['1::', '00010000000000000000000000000000'],
    ['2001:db8::1', '20010db8000000000000000000000001'],
    ['2001:DB8::A:b', '20010db80000000000000000000a000b'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '20010db8000000000000000000000001'],
    ['2001:db8:1:2:3:4:5:6', '20010db8000100020003000400050006'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000'],
    ['::2:3:4:5:6:7:8', '00000002000300040005000600070008'],
    ['2001:db8::5:0:0:1', '20010db8000000000005000000000001'],
    ['ff02::1:ff00:1', 'ff0200000000000000000001ff000001'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['::192.0.2.1', '000000000000000000000000c0000201'],
    ['2001:db8:1:2:3:4:192.0.2.255', '20010db80001000200030004c00002ff'],
    ['64:ff9b::198.51.100.7', '0064ff9b0000000000000000c6336407'],
  ])('%s', (text, bytes) => {
    expect(hex(parseIpv6(text))).toBe(bytes);
  });

  test('returns a fresh 16-byte Buffer each time', () => {
    const a = parseIpv6('2001:db8::1');
    const b = parseIpv6('2001:db8::1');
    expect(Buffer.isBuffer(a)).toBe(true);
    expect(a.length).toBe(16);
    expect(a).not.toBe(b);
  });

  test.each([
    '', ':', ':::', '::1::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1::2:3:4:5:6:7:8', '12345::1', 'g::1',
    '1:2:3:4:5:6:7', ':1::', '1::2:', '2001:db8::1 ', ' 2001:db8::1', 'fe80::1%eth0', 'fe80::1%1',
    '::1.2.3.04', '::256.1.1.1', '::1.2.3', '::1.2.3.4.5', '1:2:3:4:5:6:7:1.2.3.4', '1.2.3.4', '::ffff:1.2.3.4:1',
    '[2001:db8::1]', '2001:db8::١', 'x'.repeat(46),
  ])('rejects %j with ERR_INVALID_ARG_VALUE', (text) => {
    expect(codeOf(() => parseIpv6(text))).toBe('ERR_INVALID_ARG_VALUE');
  });

  test('rejects a non-string with ERR_INVALID_ARG_TYPE', () => {
    expect(codeOf(() => parseIpv6(1 as unknown as string))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => parseIpv6(undefined as unknown as string))).toBe('ERR_INVALID_ARG_TYPE');
  });

  test('the error message names the argument and the input', () => {
    expect(() => parseIpv6('2001:db8::g')).toThrow(/address.*2001:db8::g/);
  });

  test('writeIpv6 writes in place and names its argument', () => {
    const b = Buffer.alloc(20, 0xaa);
    writeIpv6('2001:db8::2', b, 2);
    expect(hex(b)).toBe('aaaa20010db8000000000000000000000002aaaa');
    expect(() => writeIpv6('nope', b, 0, 'header.source')).toThrow(/header\.source/);
  });
});

describe('formatIpv6 (RFC 5952)', () => {
  test.each([
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs (§4.2.3)
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // longest run wins (§4.2.3)
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not compressed (§4.2.2)
    ['2001:DB8:AAAA:0000:0000:0000:0000:0001', '2001:db8:aaaa::1'], // lowercase, no leading zeros
    ['2001:db8::', '2001:db8::'],
    ['ff02::16', 'ff02::16'],
    ['fe80::408d:a5ff:fe55:e4c0', 'fe80::408d:a5ff:fe55:e4c0'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], // mapped: mixed notation (§5)
    ['::ffff:c000:201', '::ffff:192.0.2.1'],
    ['::ffff:0.0.0.0', '::ffff:0.0.0.0'],
    ['::192.0.2.1', '::c000:201'], // deprecated IPv4-compatible form stays hex
    ['1:0:0:0:0:0:0:0', '1::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
    ['0:1:0:0:1:0:0:0', '0:1:0:0:1::'],
    ['2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'],
  ])('%s -> %s', (text, canonical) => {
    expect(formatIpv6(parseIpv6(text))).toBe(canonical);
  });

  test('reads at an offset, from a Buffer or a plain Uint8Array', () => {
    const pkt = Buffer.alloc(40);
    parseIpv6('2001:db8::1').copy(pkt, 8);
    parseIpv6('2001:db8:2::99').copy(pkt, 24);
    expect(formatIpv6(pkt, 8)).toBe('2001:db8::1');
    expect(formatIpv6(pkt, 24)).toBe('2001:db8:2::99');
    expect(formatIpv6(new Uint8Array(pkt.buffer, pkt.byteOffset, pkt.length), 24)).toBe('2001:db8:2::99');
  });

  test('never reads past the input', () => {
    expect(codeOf(() => formatIpv6(Buffer.alloc(15)))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => formatIpv6(Buffer.alloc(40), 25))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => formatIpv6(Buffer.alloc(40), -1))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => formatIpv6(Buffer.alloc(40), 1.5))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => formatIpv6('::1' as unknown as Uint8Array))).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('AddressCache', () => {
  test('formats an address once while it repeats, and anew when it changes', () => {
    const cache = new AddressCache();
    const meta = Buffer.alloc(48);
    parseIpv6('2001:db8::1').forEach((b, i) => (meta[16 + i] = b));
    const words = new Int32Array(meta.buffer, meta.byteOffset, 12);
    const first = cache.format(meta, words, 4, 6);
    expect(first).toBe('2001:db8::1');
    expect(cache.format(meta, words, 4, 6)).toBe(first);
    expect(cache.current).toBe(first);
    meta[31] = 2;
    expect(cache.format(meta, words, 4, 6)).toBe('2001:db8::2');
    // The same first word read as IPv4 is another address.
    meta.set([192, 0, 2, 7], 16);
    expect(cache.format(meta, words, 4, 4)).toBe('192.0.2.7');
    expect(cache.format(meta, words, 4, 6)).toBe('c000:207::2');
  });

  test('formatAt reads an IPv6 address at any offset', () => {
    const cache = new AddressCache();
    const bytes = Buffer.alloc(40);
    parseIpv6('fe80::1:2').forEach((b, i) => (bytes[3 + i] = b));
    expect(cache.formatAt(bytes, 3)).toBe('fe80::1:2');
    bytes[18] = 3;
    expect(cache.formatAt(bytes, 3)).toBe('fe80::1:3');
  });
});

describe('isLinkLocalIpv6 (fe80::/10)', () => {
  test.each([
    ['fe80::1', true],
    ['FE80::1', true],
    ['febf:ffff::1', true],
    ['fe80::', true],
    ['fe8::1', false], // 0fe8::1
    ['fec0::1', false],
    ['ff02::1', false],
    ['::', false],
    ['2001:db8::1', false],
  ])('%s: %s', (address, expected) => {
    expect(isLinkLocalIpv6(address)).toBe(expected);
    // Agrees with the address's bytes: the first 10 bits are 1111111010.
    const b = parseIpv6(address);
    expect(b[0] === 0xfe && (b[1] & 0xc0) === 0x80).toBe(expected);
  });
});
