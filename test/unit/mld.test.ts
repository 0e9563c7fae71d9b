import { decode, encode, MAX_MESSAGE_LENGTH, MAX_QUERY_INTERVAL, MAX_V2_RESPONSE_DELAY, recordTypes, types, type MldMessage, type MldMessageInput, type MldV2Report } from '../../lib/codec/mld';
import { upperLayerChecksum } from '../../lib/codec/packet';
import { thrown } from '../helpers/thrown';

function h(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}

// Reports Linux sent on a veth link, read by a raw ICMPv6 socket (the ICMPv6 message, type first).
/** fe80::d8c3:8fff:fe8b:3951 joined ff12::5000 (any source) and ff32::8000:1 from 2001:db8:1::9. */
const KERNEL_JOIN = h(`
  8f00 cd3c 0000 0002
  05 00 0001 ff320000000000000000000080000001 20010db8000100000000000000000009
  04 00 0000 ff120000000000000000000000005000`);
/** The same host leaving both. */
const KERNEL_LEAVE = h(`
  8f00 cd3c 0000 0002
  03 00 0000 ff120000000000000000000000005000
  06 00 0001 ff320000000000000000000080000001 20010db8000100000000000000000009`);
const KERNEL_SOURCE = 'fe80::d8c3:8fff:fe8b:3951';
const ALL_MLDV2_ROUTERS = 'ff02::16';

/** What `fn` threw, with its code and offset, for the malformed-input tables. */
function malformedAt(fn: () => unknown): { code: unknown; offset: unknown } {
  const e = thrown(fn);
  return { code: e.code, offset: e.offset };
}

describe('decode: what the kernel sends', () => {
  test('an any-source join and a source-specific join: CHANGE_TO_EXCLUDE_MODE and ALLOW_NEW_SOURCES', () => {
    expect(decode(KERNEL_JOIN)).toEqual({
      kind: 'report',
      version: 2,
      type: 143,
      code: 0,
      checksum: 0xcd3c,
      records: [
        { type: 5, typeName: 'ALLOW_NEW_SOURCES', group: 'ff32::8000:1', sources: ['2001:db8:1::9'], auxData: Buffer.alloc(0) },
        { type: 4, typeName: 'CHANGE_TO_EXCLUDE_MODE', group: 'ff12::5000', sources: [], auxData: Buffer.alloc(0) },
      ],
    });
  });

  test('the leave: CHANGE_TO_INCLUDE_MODE with no sources, BLOCK_OLD_SOURCES with the source', () => {
    const m = decode(KERNEL_LEAVE) as MldV2Report;
    expect(m.records.map((r) => [r.typeName, r.group, r.sources])).toEqual([
      ['CHANGE_TO_INCLUDE_MODE', 'ff12::5000', []],
      ['BLOCK_OLD_SOURCES', 'ff32::8000:1', ['2001:db8:1::9']],
    ]);
  });

  test('with the packet addresses the kernel checksum verifies; other addresses do not', () => {
    expect(decode(KERNEL_JOIN, { source: KERNEL_SOURCE, destination: ALL_MLDV2_ROUTERS }).checksumValid).toBe(true);
    expect(decode(KERNEL_JOIN, { source: 'fe80::1', destination: ALL_MLDV2_ROUTERS }).checksumValid).toBe(false);
    const flipped = Buffer.from(KERNEL_JOIN);
    flipped[20] ^= 1;
    expect(decode(flipped, { source: KERNEL_SOURCE, destination: ALL_MLDV2_ROUTERS }).checksumValid).toBe(false);
    expect(decode(KERNEL_JOIN)).not.toHaveProperty('checksumValid');
  });

  test('encode rebuilds the kernel reports byte for byte, checksum included', () => {
    for (const bytes of [KERNEL_JOIN, KERNEL_LEAVE]) {
      const m = decode(bytes);
      expect(encode(m, { source: KERNEL_SOURCE, destination: ALL_MLDV2_ROUTERS }).equals(bytes)).toBe(true);
      // Without the addresses the checksum is left for the kernel.
      const forKernel = encode(m);
      expect(forKernel.readUInt16BE(2)).toBe(0);
      expect(forKernel.subarray(4).equals(bytes.subarray(4))).toBe(true);
    }
  });

  test('a plain Uint8Array and a view at an offset decode the same', () => {
    const shifted = new Uint8Array(KERNEL_JOIN.length + 3);
    shifted.set(KERNEL_JOIN, 3);
    expect(decode(shifted.subarray(3))).toEqual(decode(KERNEL_JOIN));
  });
});

describe('round trips', () => {
  const cases: Array<[string, MldMessageInput, Partial<MldMessage>]> = [
    ['MLDv1 general query', { kind: 'query', version: 1, maxResponseDelay: 10000 }, { kind: 'query', version: 1, type: 130, maxResponseDelay: 10000, group: '::' }],
    ['MLDv1 group query', { kind: 'query', version: 1, maxResponseDelay: 1000, group: 'ff05::1:3' }, { version: 1, maxResponseDelay: 1000, group: 'ff05::1:3' }],
    ['MLDv1 report', { kind: 'report', version: 1, group: 'ff05::1:3' }, { kind: 'report', version: 1, type: 131, group: 'ff05::1:3' }],
    ['MLDv1 done', { kind: 'done', group: 'ff05::1:3' }, { kind: 'done', version: 1, type: 132, group: 'ff05::1:3' }],
    [
      'MLDv2 general query with defaults',
      { kind: 'query' },
      { kind: 'query', version: 2, type: 130, maxResponseDelay: 10000, group: '::', suppressRouterProcessing: false, robustness: 2, queryInterval: 125, sources: [] },
    ],
    [
      'MLDv2 group-and-source query, S flag, exponential codes',
      { kind: 'query', group: 'ff3e::8000:1', sources: ['2001:db8::1', '2001:db8::2'], suppressRouterProcessing: true, robustness: 7, maxResponseDelay: 8191 << 10, queryInterval: 31 << 10 },
      { version: 2, group: 'ff3e::8000:1', sources: ['2001:db8::1', '2001:db8::2'], suppressRouterProcessing: true, robustness: 7, maxResponseDelay: MAX_V2_RESPONSE_DELAY, queryInterval: MAX_QUERY_INTERVAL },
    ],
  ];
  test.each(cases)('%s', (_name, input, expected) => {
    const bytes = encode(input);
    const m = decode(bytes);
    expect(m).toMatchObject({ code: 0, checksum: 0, ...expected });
    expect(encode(m).equals(bytes)).toBe(true);
  });

  test('every record type, by name or number, with sources and aux data', () => {
    const records = (Object.keys(recordTypes) as Array<keyof typeof recordTypes>).map((typeName, i) => ({
      typeName,
      group: `ff0e::${i + 1}`,
      sources: Array.from({ length: i }, (_, s) => `2001:db8::${s + 1}`),
      auxData: Buffer.alloc(i % 2 === 0 ? 0 : 4 * i, i),
    }));
    const bytes = encode({ kind: 'report', records });
    const m = decode(bytes) as MldV2Report;
    expect(m.records).toEqual(records.map((r) => ({ ...r, type: recordTypes[r.typeName] })));
    expect(encode({ kind: 'report', records: m.records.map(({ type, group, sources, auxData }) => ({ type, group, sources, auxData })) }).equals(bytes)).toBe(true);
    expect(bytes.readUInt16BE(6)).toBe(6);
  });

  test('a record type outside 1-6 is decoded as unknown and encoded back by number', () => {
    const bytes = encode({ kind: 'report', records: [{ type: 9, group: 'ff0e::1' }] });
    const m = decode(bytes) as MldV2Report;
    expect(m.records[0]).toMatchObject({ type: 9, typeName: 'unknown' });
    expect(encode(m).equals(bytes)).toBe(true);
  });

  test('Max Resp Code and QQIC: literal below the exponent range, exact on every code, rounded down between', () => {
    const delayOf = (ms: number): number => (decode(encode({ kind: 'query', maxResponseDelay: ms })) as { maxResponseDelay: number }).maxResponseDelay;
    const codeOf = (ms: number): number => encode({ kind: 'query', maxResponseDelay: ms }).readUInt16BE(4);
    expect(codeOf(32767)).toBe(32767);
    expect(codeOf(32768)).toBe(0x8000);
    expect(delayOf(32768 + 7)).toBe(32768);
    expect(delayOf(32768 + 8)).toBe(32776);
    for (let code = 0x8000; code <= 0xffff; code += 0x0123) {
      const bytes = encode({ kind: 'query' });
      bytes.writeUInt16BE(code, 4);
      const ms = (decode(bytes) as { maxResponseDelay: number }).maxResponseDelay;
      expect(codeOf(ms)).toBe(code);
    }
    const intervalCode = (s: number): number => encode({ kind: 'query', queryInterval: s })[25];
    expect(intervalCode(127)).toBe(127);
    expect(intervalCode(128)).toBe(0x80);
    expect(intervalCode(31744)).toBe(0xff);
    expect((decode(encode({ kind: 'query', queryInterval: 1000 })) as { queryInterval: number }).queryInterval).toBe(992);
  });

  test('a checksum computed here is the one the pseudo-header gives', () => {
    const bytes = encode({ kind: 'report', version: 1, group: 'ff05::2' }, { source: 'fe80::1', destination: 'ff05::2' });
    expect(upperLayerChecksum('fe80::1', 'ff05::2', 58, bytes)).toBe(0);
    expect(decode(bytes, { source: 'fe80::1', destination: 'ff05::2' }).checksumValid).toBe(true);
  });

  test('bytes after the message are ignored, reserved fields too', () => {
    const v1 = encode({ kind: 'report', version: 1, group: 'ff05::2' });
    const padded = Buffer.concat([v1, Buffer.from([1, 2, 3, 4])]);
    padded[6] = 0xff; // reserved
    expect(decode(padded)).toEqual(decode(v1));
    const v2 = Buffer.concat([KERNEL_JOIN, Buffer.alloc(5, 0xee)]);
    expect(decode(v2)).toEqual(decode(KERNEL_JOIN));
  });
});

describe('malformed input: ERR_MLD_MALFORMED at the offending byte', () => {
  const query2 = encode({ kind: 'query', sources: ['2001:db8::1'] });
  const withSourceCount = (n: number): Buffer => {
    const b = Buffer.from(KERNEL_JOIN);
    b.writeUInt16BE(n, 10);
    return b;
  };
  const withAuxWords = (n: number): Buffer => {
    const b = Buffer.from(KERNEL_JOIN);
    b[45] = n; // the second record's aux data length
    return b;
  };
  const cases: Array<[string, Buffer, number]> = [
    ['empty', Buffer.alloc(0), 0],
    ['3 bytes', h('8f0000'), 0],
    ['not MLD: an echo request', h('8000 0000 0001 0001'), 0],
    ['not MLD: a neighbor solicitation', Buffer.concat([h('8700 0000 00000000'), Buffer.alloc(16)]), 0],
    ['MLDv2 report header truncated', h('8f00 0000 0000'), 0],
    ['MLDv1 report truncated', encode({ kind: 'report', version: 1, group: 'ff05::2' }).subarray(0, 23), 0],
    ['done truncated', encode({ kind: 'done', group: 'ff05::2' }).subarray(0, 8), 0],
    ['query of 25 bytes (neither version)', Buffer.concat([encode({ kind: 'query', version: 1 }), Buffer.alloc(1)]), 24],
    ['query of 27 bytes (neither version)', query2.subarray(0, 27), 24],
    ['MLDv2 query: source count larger than the data', query2.subarray(0, 28 + 15), 26],
    ['MLDv2 report: one record more than the data', (() => { const b = Buffer.from(KERNEL_JOIN); b.writeUInt16BE(3, 6); return b; })(), KERNEL_JOIN.length],
    ['MLDv2 report: record header truncated', KERNEL_JOIN.subarray(0, 8 + 19), 8],
    ['MLDv2 report: source count larger than the data', withSourceCount(4), 10],
    ['MLDv2 report: source count 65535', withSourceCount(0xffff), 10],
    ['MLDv2 report: aux data length past the end', withAuxWords(1), 45],
    ['MLDv2 report: aux data length 255', withAuxWords(255), 45],
    ['MLDv2 report: last source cut short', KERNEL_JOIN.subarray(0, 8 + 20 + 5), 10],
    ['MLDv2 report: second record cut short', KERNEL_JOIN.subarray(0, 8 + 36 + 5), 8 + 36],
  ];
  test.each(cases)('%s', (_name, bytes, offset) => {
    expect(malformedAt(() => decode(bytes))).toEqual({ code: 'ERR_MLD_MALFORMED', offset });
  });

  test('the message names what is wrong', () => {
    expect(thrown(() => decode(withSourceCount(4))).message).toBe('Malformed MLD message at offset 10: record 0 says 4 sources (64 bytes) but only 36 bytes remain');
    expect(thrown(() => decode(h('8000 0000 0001 0001'))).message).toContain('ICMPv6 type 128 is not an MLD message');
  });

  test('never reads past a view into a larger buffer', () => {
    const whole = Buffer.concat([KERNEL_JOIN, Buffer.alloc(64)]);
    const view = whole.subarray(0, KERNEL_JOIN.length - 1);
    expect(malformedAt(() => decode(view)).code).toBe('ERR_MLD_MALFORMED');
  });
});

describe('bad arguments', () => {
  test('decode refuses what is not bytes, and half a pair of addresses', () => {
    for (const bad of [undefined, null, 'x', 42, [143], new DataView(new ArrayBuffer(8)), {}]) {
      expect(thrown(() => decode(bad as Uint8Array)).code).toBe('ERR_INVALID_ARG_TYPE');
    }
    expect(thrown(() => decode(KERNEL_JOIN, { source: 'fe80::1' })).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => decode(KERNEL_JOIN, { source: 'fe80::1', destination: 'ff02::16%eth0' })).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => decode(KERNEL_JOIN, { source: 'fe80::1', destination: 'x' })).message).toContain('opts.destination');
    expect(thrown(() => decode(KERNEL_JOIN, { src: 'fe80::1' } as never)).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => decode(KERNEL_JOIN, 'fe80::1' as never)).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  const bad: Array<[string, unknown, string, string]> = [
    ['not an object', 'report', 'ERR_INVALID_ARG_TYPE', ''],
    ['null', null, 'ERR_INVALID_ARG_TYPE', ''],
    ['unknown kind', { kind: 'leave' }, 'ERR_INVALID_ARG_VALUE', 'message.kind'],
    ['misspelt field', { kind: 'query', maxResponseDelai: 5 }, 'ERR_INVALID_ARG_VALUE', "nearest known one is 'maxResponseDelay'"],
    ['version 3', { kind: 'query', version: 3 }, 'ERR_INVALID_ARG_VALUE', 'message.version'],
    ['done of version 2', { kind: 'done', version: 2, group: 'ff05::1' }, 'ERR_INVALID_ARG_VALUE', 'message.version'],
    ['type that disagrees with kind', { kind: 'report', type: 131, records: [] }, 'ERR_INVALID_ARG_VALUE', 'message.type'],
    ['code 256', { kind: 'query', code: 256 }, 'ERR_OUT_OF_RANGE', 'message.code'],
    ['group of a v1 report missing', { kind: 'report', version: 1 }, 'ERR_INVALID_ARG_TYPE', 'message.group'],
    ['group not an address', { kind: 'done', group: 'ff05::1::2' }, 'ERR_INVALID_ARG_VALUE', 'message.group'],
    ['group with a zone', { kind: 'report', version: 1, group: 'ff02::1%eth0' }, 'ERR_INVALID_ARG_VALUE', 'message.group'],
    ['IPv4 group', { kind: 'report', version: 1, group: '224.0.0.1' }, 'ERR_INVALID_ARG_VALUE', 'message.group'],
    ['v1 delay over 16 bits', { kind: 'query', version: 1, maxResponseDelay: 65536 }, 'ERR_OUT_OF_RANGE', ''],
    ['v2 delay over the largest code', { kind: 'query', maxResponseDelay: MAX_V2_RESPONSE_DELAY + 1 }, 'ERR_OUT_OF_RANGE', ''],
    ['negative delay', { kind: 'query', maxResponseDelay: -1 }, 'ERR_OUT_OF_RANGE', ''],
    ['fractional interval', { kind: 'query', queryInterval: 1.5 }, 'ERR_OUT_OF_RANGE', ''],
    ['robustness 8', { kind: 'query', robustness: 8 }, 'ERR_OUT_OF_RANGE', ''],
    ['S flag not boolean', { kind: 'query', suppressRouterProcessing: 1 }, 'ERR_INVALID_ARG_TYPE', ''],
    ['sources not an array', { kind: 'query', sources: '2001:db8::1' }, 'ERR_INVALID_ARG_TYPE', ''],
    ['a bad source', { kind: 'query', sources: ['2001:db8::1', 'nope'] }, 'ERR_INVALID_ARG_VALUE', 'message.sources[1]'],
    ['sources on a v1 query', { kind: 'query', version: 1, sources: [] }, 'ERR_INVALID_ARG_VALUE', 'message.sources'],
    ['records on a query', { kind: 'query', records: [] }, 'ERR_INVALID_ARG_VALUE', 'message.records'],
    ['group on a v2 report', { kind: 'report', group: 'ff05::1' }, 'ERR_INVALID_ARG_VALUE', 'message.group'],
    ['delay on a done', { kind: 'done', group: 'ff05::1', maxResponseDelay: 0 }, 'ERR_INVALID_ARG_VALUE', 'message.maxResponseDelay'],
    ['records not an array', { kind: 'report', records: {} }, 'ERR_INVALID_ARG_TYPE', ''],
    ['a record that is not an object', { kind: 'report', records: [5] }, 'ERR_INVALID_ARG_TYPE', 'message.records[0]'],
    ['a record without a type', { kind: 'report', records: [{ group: 'ff05::1' }] }, 'ERR_INVALID_ARG_TYPE', 'message.records[0].type'],
    ['an unknown record type name', { kind: 'report', records: [{ typeName: 'JOIN', group: 'ff05::1' }] }, 'ERR_INVALID_ARG_VALUE', 'MODE_IS_INCLUDE'],
    ['type and name that disagree', { kind: 'report', records: [{ type: 1, typeName: 'ALLOW_NEW_SOURCES', group: 'ff05::1' }] }, 'ERR_INVALID_ARG_VALUE', ''],
    ['record type 256', { kind: 'report', records: [{ type: 256, group: 'ff05::1' }] }, 'ERR_OUT_OF_RANGE', ''],
    ['a record group that is not an address', { kind: 'report', records: [{ type: 1, group: 7 }] }, 'ERR_INVALID_ARG_TYPE', 'message.records[0].group'],
    ['a record source that is not an address', { kind: 'report', records: [{ type: 1, group: 'ff05::1', sources: ['::1', '192.0.2.1'] }] }, 'ERR_INVALID_ARG_VALUE', 'message.records[0].sources[1]'],
    ['aux data not a multiple of 4', { kind: 'report', records: [{ type: 1, group: 'ff05::1', auxData: Buffer.alloc(3) }] }, 'ERR_OUT_OF_RANGE', ''],
    ['aux data over 1020 bytes', { kind: 'report', records: [{ type: 1, group: 'ff05::1', auxData: Buffer.alloc(1024) }] }, 'ERR_OUT_OF_RANGE', ''],
    ['aux data not bytes', { kind: 'report', records: [{ type: 1, group: 'ff05::1', auxData: 'abcd' }] }, 'ERR_INVALID_ARG_TYPE', ''],
    ['records over the message size', { kind: 'report', records: [{ type: 1, group: 'ff05::1', sources: Array.from({ length: 4096 }, () => '::1') }] }, 'ERR_OUT_OF_RANGE', 'message.records'],
    ['sources over the message size', { kind: 'query', sources: Array.from({ length: 4096 }, () => '::1') }, 'ERR_OUT_OF_RANGE', 'message.sources.length'],
  ];
  test.each(bad)('encode refuses %s', (_name, message, code, mention) => {
    const e = thrown(() => encode(message as MldMessageInput));
    expect(e.code).toBe(code);
    expect(e.message).toContain(mention);
  });

  test('the largest message that fits is made; the sizes agree with MAX_MESSAGE_LENGTH', () => {
    const count = Math.floor((MAX_MESSAGE_LENGTH - 28) / 16);
    expect(encode({ kind: 'query', sources: Array.from({ length: count }, () => '2001:db8::1') }).length).toBe(28 + count * 16);
    expect(types).toEqual({ QUERY: 130, REPORT: 131, DONE: 132, V2_REPORT: 143 });
  });

  test('a getter is read once: what is validated is what is written', () => {
    let reads = 0;
    const message = {
      kind: 'report' as const,
      version: 1 as const,
      get group(): string {
        reads++;
        return reads === 1 ? 'ff05::1' : 'not an address';
      },
    };
    expect(decode(encode(message))).toMatchObject({ group: 'ff05::1' });
    expect(reads).toBe(1);
  });
});
