// The two small address predicates every socket shares: what a zone names (parseZone) and
// whether an address is a multicast group (isMulticast), each written once.
import { isMulticast } from '../../lib/codec/ipv6addr';
import { parseZone, splitZone } from '../../lib/validate';

function codeOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return 'no error';
}

describe('parseZone', () => {
  test.each([
    ['eth0', 'eth0'],
    ['2', 2],
    ['007', 7],
    ['2147483647', 0x7fffffff],
    ['veth-a.10', 'veth-a.10'],
    ['e1', 'e1'],
  ] as const)('%j names %j', (zone, expected) => {
    expect(parseZone(zone, 'address zone')).toBe(expected);
  });

  test('digits are an index, checked as one: 0 and beyond int32 are out of range, named as asked', () => {
    expect(codeOf(() => parseZone('0', 'address zone'))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => parseZone('2147483648', 'address zone'))).toBe('ERR_OUT_OF_RANGE');
    expect(() => parseZone('0', 'options.address zone')).toThrow(/options\.address zone/);
  });

  test('anything else must be an interface name', () => {
    for (const bad of ['', 'a/b', 'a:b', 'a b', 'x'.repeat(16), 'nul\0']) {
      expect(codeOf(() => parseZone(bad, 'address zone'))).toBe('ERR_INVALID_ARG_VALUE');
    }
  });

  test('with splitZone, what an address text names', () => {
    expect(parseZone(splitZone('fe80::1%eth0').zone as string, 'zone')).toBe('eth0');
    expect(parseZone(splitZone('fe80::1%2').zone as string, 'zone')).toBe(2);
  });
});

describe('isMulticast', () => {
  test.each([
    ['ff02::1', true],
    ['FF02::1:3', true],
    ['ff0e::db8:1', true],
    ['ff02:0:0:0:0:0:0:1', true],
    ['fe80::1', false],
    ['::', false],
    ['::1', false],
    // ff::1 is 00ff::1, and ff0::1 is 0ff0::1: neither is in ff00::/8.
    ['ff::1', false],
    ['ff0::1', false],
    ['2001:db8::ff', false],
    ['224.0.0.1', true],
    ['239.255.255.250', true],
    ['223.255.255.255', false],
    ['240.0.0.1', false],
    ['192.0.2.1', false],
    ['0.0.0.0', false],
  ] as const)('%s: %s', (address, expected) => {
    expect(isMulticast(address)).toBe(expected);
  });
});
