import { internetChecksum } from '../../lib/codec/packet';
import {
  decode,
  encode,
  MAX_MESSAGE_LENGTH,
  MAX_QUERY_INTERVAL,
  MAX_V3_RESPONSE_DELAY,
  recordTypes,
  stripIpv4Header,
  types,
  type IgmpMessage,
  type IgmpMessageInput,
  type IgmpV3Report,
} from '../../lib/codec/igmp';
import { thrown } from '../helpers/thrown';

function h(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}

// Packets Linux sent on a veth link, as a raw IPv4 socket for protocol 2 read them: the
// IPv4 header (with its Router Alert option, IHL 6) and then the IGMPv3 report.
/** 192.0.2.1 joined 224.0.1.1 (any source) and 232.1.1.1 from 192.0.2.9. */
const KERNEL_JOIN = h(`
  46c00034 00004000 010241ec c0000201 e0000016 94040000
  2200 48ee 0000 0002
  05 00 0001 e8010101 c0000209
  04 00 0000 e0000101`);
/** The same host leaving both. */
const KERNEL_LEAVE = h(`
  46c00034 00004000 010241ec c0000201 e0000016 94040000
  2200 48ee 0000 0002
  03 00 0000 e0000101
  06 00 0001 e8010101 c0000209`);

function malformedAt(fn: () => unknown): { code: unknown; offset: unknown } {
  const e = thrown(fn);
  return { code: e.code, offset: e.offset };
}

describe('decode: what the kernel sends', () => {
  test('stripIpv4Header skips the header by its IHL, Router Alert option included', () => {
    const igmp = stripIpv4Header(KERNEL_JOIN);
    expect(igmp.length).toBe(KERNEL_JOIN.length - 24);
    expect(igmp[0]).toBe(types.V3_MEMBERSHIP_REPORT);
    // A view, not a copy.
    expect(igmp.buffer).toBe(KERNEL_JOIN.buffer);
  });

  test('an any-source join and a source-specific join: CHANGE_TO_EXCLUDE_MODE and ALLOW_NEW_SOURCES', () => {
    expect(decode(stripIpv4Header(KERNEL_JOIN))).toEqual({
      kind: 'report',
      version: 3,
      type: 0x22,
      checksum: 0x48ee,
      checksumValid: true,
      records: [
        { type: 5, typeName: 'ALLOW_NEW_SOURCES', group: '232.1.1.1', sources: ['192.0.2.9'], auxData: Buffer.alloc(0) },
        { type: 4, typeName: 'CHANGE_TO_EXCLUDE_MODE', group: '224.0.1.1', sources: [], auxData: Buffer.alloc(0) },
      ],
    });
  });

  test('the leave: CHANGE_TO_INCLUDE_MODE with no sources, BLOCK_OLD_SOURCES with the source', () => {
    const m = decode(stripIpv4Header(KERNEL_LEAVE)) as IgmpV3Report;
    expect(m.records.map((r) => [r.typeName, r.group, r.sources])).toEqual([
      ['CHANGE_TO_INCLUDE_MODE', '224.0.1.1', []],
      ['BLOCK_OLD_SOURCES', '232.1.1.1', ['192.0.2.9']],
    ]);
  });

  test('encode rebuilds the kernel reports byte for byte, checksum included', () => {
    for (const packet of [KERNEL_JOIN, KERNEL_LEAVE]) {
      const igmp = stripIpv4Header(packet);
      expect(encode(decode(igmp)).equals(igmp)).toBe(true);
    }
  });

  test('a bad checksum is a flag, not an error', () => {
    const igmp = Buffer.from(stripIpv4Header(KERNEL_JOIN));
    igmp[13] ^= 0x40;
    const m = decode(igmp);
    expect(m.checksumValid).toBe(false);
    expect(m.checksum).toBe(0x48ee);
    // Re-encoding repairs it.
    expect(decode(encode(m)).checksumValid).toBe(true);
    const zero = Buffer.from(stripIpv4Header(KERNEL_JOIN));
    zero.writeUInt16BE(0, 2);
    expect(decode(zero).checksumValid).toBe(false);
  });
});

describe('round trips', () => {
  const cases: Array<[string, IgmpMessageInput, Partial<IgmpMessage>]> = [
    ['IGMPv1 query', { kind: 'query', version: 1 }, { kind: 'query', version: 1, type: 0x11, group: '0.0.0.0' }],
    ['IGMPv2 general query', { kind: 'query', version: 2, maxResponseDelay: 10000 }, { kind: 'query', version: 2, maxResponseDelay: 10000, group: '0.0.0.0' }],
    ['IGMPv2 group query, delay rounded down to tenths', { kind: 'query', version: 2, maxResponseDelay: 1099, group: '224.0.1.1' }, { version: 2, maxResponseDelay: 1000, group: '224.0.1.1' }],
    ['IGMPv1 report', { kind: 'report', version: 1, group: '224.0.1.1' }, { kind: 'report', version: 1, type: 0x12, group: '224.0.1.1' }],
    ['IGMPv2 report', { kind: 'report', version: 2, group: '224.0.1.1' }, { kind: 'report', version: 2, type: 0x16, group: '224.0.1.1' }],
    ['IGMPv2 leave', { kind: 'leave', group: '224.0.1.1' }, { kind: 'leave', version: 2, type: 0x17, group: '224.0.1.1' }],
    [
      'IGMPv3 general query with defaults',
      { kind: 'query' },
      { kind: 'query', version: 3, maxResponseDelay: 10000, group: '0.0.0.0', suppressRouterProcessing: false, robustness: 2, queryInterval: 125, sources: [] },
    ],
    [
      'IGMPv3 group-and-source query, S flag, largest codes',
      { kind: 'query', group: '232.1.1.1', sources: ['192.0.2.9', '192.0.2.10'], suppressRouterProcessing: true, robustness: 5, maxResponseDelay: MAX_V3_RESPONSE_DELAY, queryInterval: MAX_QUERY_INTERVAL },
      { version: 3, group: '232.1.1.1', sources: ['192.0.2.9', '192.0.2.10'], suppressRouterProcessing: true, robustness: 5, maxResponseDelay: 3174400, queryInterval: 31744 },
    ],
  ];
  test.each(cases)('%s', (_name, input, expected) => {
    const bytes = encode(input);
    expect(internetChecksum([bytes])).toBe(0);
    const m = decode(bytes);
    expect(m).toMatchObject({ checksumValid: true, ...expected });
    expect(encode(m).equals(bytes)).toBe(true);
  });

  test('every record type, by name or number, with sources and aux data', () => {
    const records = (Object.keys(recordTypes) as Array<keyof typeof recordTypes>).map((typeName, i) => ({
      typeName,
      group: `239.0.0.${i + 1}`,
      sources: Array.from({ length: i }, (_, s) => `192.0.2.${s + 1}`),
      auxData: Buffer.alloc(i % 2 === 0 ? 0 : 4 * i, i),
    }));
    const bytes = encode({ kind: 'report', records });
    const m = decode(bytes) as IgmpV3Report;
    expect(m.records).toEqual(records.map((r) => ({ ...r, type: recordTypes[r.typeName] })));
    expect(encode({ kind: 'report', records: m.records.map(({ type, group, sources, auxData }) => ({ type, group, sources, auxData })) }).equals(bytes)).toBe(true);
  });

  test('a record type outside 1-6 is decoded as unknown and encoded back by number', () => {
    const bytes = encode({ kind: 'report', records: [{ type: 0, group: '239.1.1.1' }] });
    const m = decode(bytes) as IgmpV3Report;
    expect(m.records[0]).toMatchObject({ type: 0, typeName: 'unknown' });
    expect(encode(m).equals(bytes)).toBe(true);
  });

  test('Max Resp Code: tenths of a second, literal below 12.8 s, exact on every code, rounded down between', () => {
    const codeOf = (ms: number): number => encode({ kind: 'query', maxResponseDelay: ms })[1];
    expect(codeOf(12700)).toBe(127);
    expect(codeOf(12800)).toBe(0x80);
    expect(codeOf(12899)).toBe(0x80);
    for (let code = 0; code <= 0xff; code++) {
      const bytes = encode({ kind: 'query' });
      bytes[1] = code;
      const ms = (decode(bytes) as { maxResponseDelay: number }).maxResponseDelay;
      expect(codeOf(ms)).toBe(code);
    }
    expect(encode({ kind: 'query', queryInterval: 200 })[9]).toBe(0x89);
    expect((decode(encode({ kind: 'query', queryInterval: 200 })) as { queryInterval: number }).queryInterval).toBe(200);
  });

  test('an 8-byte query is v1 with code 0 and v2 otherwise', () => {
    const q = encode({ kind: 'query', version: 2, maxResponseDelay: 100 });
    expect(decode(q)).toMatchObject({ version: 2, maxResponseDelay: 100 });
    q[1] = 0;
    expect(decode(q)).toMatchObject({ version: 1, checksumValid: false });
  });

  test('bytes after the message are ignored but count in the checksum', () => {
    const v2 = encode({ kind: 'report', version: 2, group: '224.0.1.1' });
    const padded = Buffer.concat([v2, Buffer.from([0, 0, 0, 0])]);
    expect(decode(padded)).toEqual(decode(v2));
    padded[9] = 1;
    expect(decode(padded)).toEqual({ ...decode(v2), checksumValid: false });
  });
});

describe('malformed input: ERR_IGMP_MALFORMED at the offending byte', () => {
  const report = stripIpv4Header(KERNEL_JOIN);
  const edited = (edit: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(report);
    edit(b);
    return b;
  };
  const query3 = encode({ kind: 'query', sources: ['192.0.2.1'] });
  const cases: Array<[string, Buffer, number]> = [
    ['empty', Buffer.alloc(0), 0],
    ['7 bytes', h('16000000e00001'), 0],
    ['not IGMP this decodes: DVMRP (0x13)', h('1300000000000000'), 0],
    ['not IGMP this decodes: type 0', h('0000000000000000'), 0],
    ['query of 9 bytes (no version)', Buffer.concat([encode({ kind: 'query', version: 2 }), Buffer.alloc(1)]), 8],
    ['query of 11 bytes (no version)', query3.subarray(0, 11), 8],
    ['IGMPv3 query: source count larger than the data', query3.subarray(0, 15), 10],
    ['IGMPv3 report: one record more than the data', edited((b) => b.writeUInt16BE(3, 6)), report.length],
    ['IGMPv3 report: record header truncated', report.subarray(0, 8 + 7), 8],
    ['IGMPv3 report: source count larger than the data', edited((b) => b.writeUInt16BE(5, 10)), 10],
    ['IGMPv3 report: source count 65535', edited((b) => b.writeUInt16BE(0xffff, 10)), 10],
    ['IGMPv3 report: aux data length past the end', edited((b) => (b[21] = 1)), 21],
    ['IGMPv3 report: aux data length 255', edited((b) => (b[9] = 255)), 9],
  ];
  test.each(cases)('%s', (_name, bytes, offset) => {
    expect(malformedAt(() => decode(bytes))).toEqual({ code: 'ERR_IGMP_MALFORMED', offset });
  });

  const packets: Array<[string, Buffer, number]> = [
    ['19 bytes', KERNEL_JOIN.subarray(0, 19), 0],
    ['IPv6', h('6000000000000000000000000000000000000000'), 0],
    ['IHL 4', (() => { const b = Buffer.from(KERNEL_JOIN); b[0] = 0x44; return b; })(), 0],
    ['IHL 15 past the end', (() => { const b = Buffer.from(KERNEL_JOIN.subarray(0, 40)); b[0] = 0x4f; b.writeUInt16BE(40, 2); return b; })(), 2],
    ['total length past the input', KERNEL_JOIN.subarray(0, KERNEL_JOIN.length - 1), 2],
    ['total length shorter than the header', (() => { const b = Buffer.from(KERNEL_JOIN); b.writeUInt16BE(20, 2); return b; })(), 2],
    ['a fragment', (() => { const b = Buffer.from(KERNEL_JOIN); b.writeUInt16BE(0x2000, 6); return b; })(), 6],
    ['UDP, not IGMP', (() => { const b = Buffer.from(KERNEL_JOIN); b[9] = 17; return b; })(), 9],
  ];
  test.each(packets)('stripIpv4Header: %s', (_name, bytes, offset) => {
    expect(malformedAt(() => stripIpv4Header(bytes))).toEqual({ code: 'ERR_IGMP_MALFORMED', offset });
  });

  test('stripIpv4Header ends at the total length, not at the end of the input', () => {
    const padded = Buffer.concat([KERNEL_JOIN, Buffer.alloc(6, 0xee)]);
    expect(stripIpv4Header(padded).equals(stripIpv4Header(KERNEL_JOIN))).toBe(true);
  });

  test('the message names what is wrong', () => {
    expect(thrown(() => decode(edited((b) => b.writeUInt16BE(5, 10)))).message).toBe('Malformed IGMP message at offset 10: record 0 says 5 sources (20 bytes) but only 12 bytes remain');
  });
});

describe('bad arguments', () => {
  test('decode and stripIpv4Header refuse what is not bytes', () => {
    for (const bad of [undefined, null, 'x', 42, [0x22], new DataView(new ArrayBuffer(8)), {}]) {
      expect(thrown(() => decode(bad as Uint8Array)).code).toBe('ERR_INVALID_ARG_TYPE');
      expect(thrown(() => stripIpv4Header(bad as Uint8Array)).code).toBe('ERR_INVALID_ARG_TYPE');
    }
  });

  const bad: Array<[string, unknown, string, string]> = [
    ['not an object', 'report', 'ERR_INVALID_ARG_TYPE', ''],
    ['unknown kind', { kind: 'done' }, 'ERR_INVALID_ARG_VALUE', 'message.kind'],
    ['misspelt field', { kind: 'query', robustnes: 2 }, 'ERR_INVALID_ARG_VALUE', "nearest known one is 'robustness'"],
    ['a field only MLD has', { kind: 'query', code: 0 }, 'ERR_INVALID_ARG_VALUE', 'message.code'],
    ['version 4', { kind: 'query', version: 4 }, 'ERR_INVALID_ARG_VALUE', 'message.version'],
    ['leave of version 3', { kind: 'leave', version: 3, group: '224.0.1.1' }, 'ERR_INVALID_ARG_VALUE', 'must be 2 for leave'],
    ['leave of version 1', { kind: 'leave', version: 1, group: '224.0.1.1' }, 'ERR_INVALID_ARG_VALUE', 'must be 2 for leave'],
    ['type that disagrees', { kind: 'report', version: 2, type: 0x12, group: '224.0.1.1' }, 'ERR_INVALID_ARG_VALUE', 'message.type'],
    ['group missing', { kind: 'leave' }, 'ERR_INVALID_ARG_TYPE', 'message.group'],
    ['group not an address', { kind: 'report', version: 2, group: '224.0.1' }, 'ERR_INVALID_ARG_VALUE', 'message.group'],
    ['IPv6 group', { kind: 'report', version: 2, group: 'ff02::1' }, 'ERR_INVALID_ARG_VALUE', 'message.group'],
    ['leading zeros', { kind: 'report', version: 2, group: '224.000.1.1' }, 'ERR_INVALID_ARG_VALUE', 'message.group'],
    ['v2 delay 0 (a v1 query)', { kind: 'query', version: 2, maxResponseDelay: 99 }, 'ERR_OUT_OF_RANGE', 'IGMPv1'],
    ['v2 delay over 25.5 s', { kind: 'query', version: 2, maxResponseDelay: 25600 }, 'ERR_OUT_OF_RANGE', ''],
    ['v3 delay over the largest code', { kind: 'query', maxResponseDelay: MAX_V3_RESPONSE_DELAY + 1 }, 'ERR_OUT_OF_RANGE', ''],
    ['delay on a v1 query', { kind: 'query', version: 1, maxResponseDelay: 1000 }, 'ERR_INVALID_ARG_VALUE', 'message.maxResponseDelay'],
    ['NaN interval', { kind: 'query', queryInterval: NaN }, 'ERR_OUT_OF_RANGE', ''],
    ['robustness -1', { kind: 'query', robustness: -1 }, 'ERR_OUT_OF_RANGE', ''],
    ['S flag a string', { kind: 'query', suppressRouterProcessing: 'yes' }, 'ERR_INVALID_ARG_TYPE', ''],
    ['a bad source', { kind: 'query', sources: ['192.0.2.1', '192.0.2.300'] }, 'ERR_INVALID_ARG_VALUE', 'message.sources[1]'],
    ['a sparse source list', { kind: 'query', sources: [, '192.0.2.1'] }, 'ERR_INVALID_ARG_VALUE', 'message.sources[0]'], // eslint-disable-line no-sparse-arrays
    ['sources on a v2 query', { kind: 'query', version: 2, sources: [] }, 'ERR_INVALID_ARG_VALUE', 'message.sources'],
    ['records on a v2 report', { kind: 'report', version: 2, group: '224.0.1.1', records: [] }, 'ERR_INVALID_ARG_VALUE', 'message.records'],
    ['group on a v3 report', { kind: 'report', group: '224.0.1.1' }, 'ERR_INVALID_ARG_VALUE', 'message.group'],
    ['a record without a group', { kind: 'report', records: [{ type: 1 }] }, 'ERR_INVALID_ARG_TYPE', 'message.records[0].group'],
    ['a record with an IPv6 source', { kind: 'report', records: [{ type: 1, group: '232.1.1.1', sources: ['2001:db8::1'] }] }, 'ERR_INVALID_ARG_VALUE', 'message.records[0].sources[0]'],
    ['aux data of 2 bytes', { kind: 'report', records: [{ type: 1, group: '232.1.1.1', auxData: new Uint8Array(2) }] }, 'ERR_OUT_OF_RANGE', 'auxData.length'],
    ['records over the message size', { kind: 'report', records: Array.from({ length: 70 }, () => ({ type: 1, group: '232.1.1.1', sources: Array.from({ length: 240 }, () => '192.0.2.1') })) }, 'ERR_OUT_OF_RANGE', 'message.records'],
  ];
  test.each(bad)('encode refuses %s', (_name, message, code, mention) => {
    const e = thrown(() => encode(message as IgmpMessageInput));
    expect(e.code).toBe(code);
    expect(e.message).toContain(mention);
  });

  test('the largest query that fits is made', () => {
    const count = Math.floor((MAX_MESSAGE_LENGTH - 12) / 4);
    expect(encode({ kind: 'query', sources: Array.from({ length: count }, () => '192.0.2.1') }).length).toBe(12 + count * 4);
    expect(thrown(() => encode({ kind: 'query', sources: Array.from({ length: count + 1 }, () => '192.0.2.1') })).code).toBe('ERR_OUT_OF_RANGE');
    expect(types).toEqual({ MEMBERSHIP_QUERY: 0x11, V1_MEMBERSHIP_REPORT: 0x12, V2_MEMBERSHIP_REPORT: 0x16, LEAVE_GROUP: 0x17, V3_MEMBERSHIP_REPORT: 0x22 });
  });
});
