/**
 * Codec for IGMP messages, versions 1 and 2 (RFC 1112, RFC 2236) and 3 (RFC 3376). The
 * input and output are IGMP messages: what follows the IPv4 header. A raw IPv4 socket
 * (`new RawSocket({ family: 4, protocol: 2 })`) receives the IPv4 header too;
 * {@link stripIpv4Header} skips it.
 *
 * ```
 * 0x11 membership query  byte 1 Max Resp Code, 4-7 group; an 8-byte query is IGMPv1 (code 0)
 *                        or IGMPv2, 12 bytes or more IGMPv3: 8 S|QRV, 9 QQIC, 10-11 number
 *                        of sources, 12.. sources
 * 0x12 IGMPv1 report     byte 4-7 group
 * 0x16 IGMPv2 report     byte 4-7 group
 * 0x17 IGMPv2 leave      byte 4-7 group
 * 0x22 IGMPv3 report     byte 6-7 number of records, 8.. group records: type, aux data
 *                        length (32-bit words), number of sources, group, sources, aux data
 * ```
 *
 * Checksum: the IGMP checksum is the Internet checksum of the IGMP message alone (no
 * pseudo-header), so `encode` computes it and `decode` verifies it. A bad checksum is not
 * an error: `decode` returns the message with `checksumValid: false`, so a monitor can
 * count or show what it would otherwise drop (RFC 2236 and RFC 3376 receivers drop such
 * messages; so should a caller that acts on them).
 * @packageDocumentation
 */

import { invalidArgType, invalidArgValue, outOfRange, stateError, type CodedError } from '../errors';
import { validateAddress, validateList, validateOptionKeys } from '../validate';
import { codeValue, decodeRecords, maxCodeValue, snapshotRecords, valueCode, type AddressFormat, type GroupRecord, type GroupRecordInput } from './grouprecord';
import { internetChecksum } from './packet';
import { checkUint } from './snapshot';

export { recordTypes } from './grouprecord';
export type { GroupRecord, GroupRecordInput, RecordTypeName } from './grouprecord';

/** The IGMP message types. */
export const types = Object.freeze({
  /** Membership Query, every version (told apart by length and Max Resp Code). */
  MEMBERSHIP_QUERY: 0x11,
  /** IGMPv1 Membership Report. */
  V1_MEMBERSHIP_REPORT: 0x12,
  /** IGMPv2 Membership Report. */
  V2_MEMBERSHIP_REPORT: 0x16,
  /** IGMPv2 Leave Group, sent to 224.0.0.2. */
  LEAVE_GROUP: 0x17,
  /** IGMPv3 Membership Report, sent to 224.0.0.22. */
  V3_MEMBERSHIP_REPORT: 0x22,
} as const);

/** The IP protocol number of IGMP. */
export const PROTOCOL = 2;

/** Fields every decoded message has. */
interface IgmpHeader {
  /** The IGMP type. */
  type: number;
  /** The checksum as received. */
  checksum: number;
  /** Whether the checksum is right: the Internet checksum of the whole input is 0. */
  checksumValid: boolean;
}

/** An IGMPv1 query (8 bytes, Max Resp Code 0): always a general query. */
export interface IgmpV1Query extends IgmpHeader {
  kind: 'query';
  version: 1;
  /** The group field (0.0.0.0 when sent by RFC 1112 hosts). */
  group: string;
}

/** An IGMPv2 query (8 bytes, Max Resp Code not 0). */
export interface IgmpV2Query extends IgmpHeader {
  kind: 'query';
  version: 2;
  /** Max Response Time in milliseconds (the field counts tenths of a second). */
  maxResponseDelay: number;
  /** '0.0.0.0' in a general query, else the group asked about. */
  group: string;
}

/** An IGMPv3 query (12 bytes and more). */
export interface IgmpV3Query extends IgmpHeader {
  kind: 'query';
  version: 3;
  /** Max Response Time in milliseconds, decoded from the Max Resp Code (tenths of a second). */
  maxResponseDelay: number;
  /** '0.0.0.0' in a general query, else the group asked about. */
  group: string;
  /** The S flag: routers that hear this query do not update their timers. */
  suppressRouterProcessing: boolean;
  /** QRV, the querier's robustness variable, 0-7 (0: over 7). */
  robustness: number;
  /** The querier's query interval in seconds, decoded from QQIC. */
  queryInterval: number;
  /** The sources of a group-and-source-specific query. */
  sources: string[];
}

/** An IGMPv1 report (0x12), IGMPv2 report (0x16) or IGMPv2 leave (0x17). */
export interface IgmpGroupMessage extends IgmpHeader {
  kind: 'report' | 'leave';
  /** 1 for 0x12; 2 for 0x16 and 0x17. */
  version: 1 | 2;
  /** The group joined (report) or left (leave). */
  group: string;
}

/** An IGMPv3 report (0x22). */
export interface IgmpV3Report extends IgmpHeader {
  kind: 'report';
  version: 3;
  /** The group records, in wire order. */
  records: GroupRecord[];
}

/** Any decoded IGMP message; `kind` and `version` tell them apart. */
export type IgmpMessage = IgmpV1Query | IgmpV2Query | IgmpV3Query | IgmpGroupMessage | IgmpV3Report;

/**
 * A message to encode. Decoded messages are accepted as they are (`type`, `checksum` and
 * `checksumValid` are ignored; `type`, when given, must agree with `kind` and `version`).
 * Defaults: `version` 3 for a query or report (leave is version 2 only), group '0.0.0.0'
 * for a query, `maxResponseDelay` 10000 ms, `robustness` 2, `queryInterval` 125 s (RFC
 * 3376 §8), no sources, no records.
 */
export interface IgmpMessageInput {
  kind: 'query' | 'report' | 'leave';
  version?: 1 | 2 | 3;
  type?: number;
  checksum?: number;
  checksumValid?: boolean;
  /** Queries, IGMPv1/v2 reports and leave. */
  group?: string;
  /**
   * IGMPv2 and v3 queries: milliseconds, 100-25500 (v2; 0 would make it a v1 query) or
   * 0-3174400 (v3). Rounded down to what the field expresses (tenths of a second, and in
   * v3 over 12.7 s, the code's steps).
   */
  maxResponseDelay?: number;
  /** IGMPv3 queries. */
  suppressRouterProcessing?: boolean;
  /** IGMPv3 queries: 0-7. */
  robustness?: number;
  /** IGMPv3 queries: seconds, 0-31744 (a value without an exact code is rounded down). */
  queryInterval?: number;
  /** IGMPv3 queries. */
  sources?: readonly string[];
  /** IGMPv3 reports. */
  records?: readonly GroupRecordInput[];
}

/** A malformed-message error: code 'ERR_IGMP_MALFORMED', plus the offending byte offset. */
export interface IgmpMalformedError extends CodedError {
  code: 'ERR_IGMP_MALFORMED';
  /** Offset of the offending byte from the start of the input. */
  offset: number;
}

/**
 * The largest message `encode` makes: an IPv4 packet (65,535 bytes) less its header with
 * the Router Alert option IGMPv2 and v3 messages carry (24 bytes).
 */
export const MAX_MESSAGE_LENGTH = 65535 - 24;

/** Largest Max Response Time of an IGMPv3 query, in milliseconds. */
export const MAX_V3_RESPONSE_DELAY = maxCodeValue(8) * 100;

/** Largest Query Interval of an IGMPv3 query, in seconds. */
export const MAX_QUERY_INTERVAL = maxCodeValue(8);

function malformed(offset: number, what: string): IgmpMalformedError {
  const err = stateError('ERR_IGMP_MALFORMED', `Malformed IGMP message at offset ${offset}: ${what}`);
  return Object.assign(err, { code: 'ERR_IGMP_MALFORMED' as const, offset });
}

function formatIpv4(buf: Uint8Array, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

const IPV4: AddressFormat = {
  size: 4,
  format: formatIpv4,
  write(value, out, offset, name) {
    const { address } = validateAddress(value, name, 4, false);
    address.split('.').forEach((part, i) => {
      out[offset + i] = Number(part);
    });
  },
};

function asBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * The IGMP message inside an IPv4 packet, as a raw IPv4 socket for protocol 2 receives it:
 * the bytes after the header (its length from IHL, options such as the Router Alert
 * included) up to the packet's Total Length. A view into `packet`, for {@link decode}.
 *
 * @throws ERR_INVALID_ARG_TYPE for a non-byte input; ERR_IGMP_MALFORMED for a packet that
 *   is not IPv4, whose IHL or Total Length runs past the input, that is a fragment, or
 *   whose protocol is not IGMP (2).
 */
export function stripIpv4Header(packet: Uint8Array): Buffer {
  if (!(packet instanceof Uint8Array)) throw invalidArgType('packet', 'an instance of Buffer or Uint8Array', packet);
  const b = asBuffer(packet);
  if (b.length < 20) throw malformed(0, `only ${b.length} bytes; an IPv4 header is at least 20`);
  if (b[0] >> 4 !== 4) throw malformed(0, `IP version ${b[0] >> 4}, expected 4`);
  const headerLength = (b[0] & 0x0f) * 4;
  if (headerLength < 20) throw malformed(0, `IHL ${b[0] & 0x0f} is under the minimum of 5`);
  const total = b.readUInt16BE(2);
  if (total < headerLength || total > b.length) throw malformed(2, `total length ${total} with a ${headerLength}-byte header and ${b.length} bytes of input`);
  // More-fragments flag or an offset: IGMP messages are never fragmented, a piece is not one.
  if ((b.readUInt16BE(6) & 0x3fff) !== 0) throw malformed(6, 'a fragment, not a whole IGMP message');
  if (b[9] !== PROTOCOL) throw malformed(9, `protocol ${b[9]} is not IGMP (2)`);
  return b.subarray(headerLength, total);
}

/**
 * Decodes one IGMP message (what follows the IPv4 header). Never reads past `buf`: every
 * count and length is checked against what remains first. Bytes after the message's own
 * end are ignored (but count in the checksum, which covers the whole input), as are
 * reserved fields. A bad checksum gives `checksumValid: false`, not an error.
 *
 * @throws ERR_INVALID_ARG_TYPE for a non-byte input; ERR_IGMP_MALFORMED (with `offset`)
 *   for a message that is truncated, of a type this codec does not decode (DVMRP, mtrace,
 *   ...), a query of a length no version has (9-11 bytes), or whose source count, record
 *   count or aux data length runs past the end.
 */
export function decode(buf: Uint8Array): IgmpMessage {
  if (!(buf instanceof Uint8Array)) throw invalidArgType('buf', 'an instance of Buffer or Uint8Array', buf);
  const b = asBuffer(buf);
  const message = decodeMessage(b);
  // Verified once the message is known to be whole: a refused input costs no checksum.
  message.checksumValid = internetChecksum([b]) === 0;
  return message;
}

function decodeMessage(b: Buffer): IgmpMessage {
  if (b.length < 8) throw malformed(0, `only ${b.length} bytes; IGMP messages are at least 8`);
  const type = b[0];
  const header: IgmpHeader = { type, checksum: b.readUInt16BE(2), checksumValid: false };
  switch (type) {
    case types.V1_MEMBERSHIP_REPORT:
      return { kind: 'report', version: 1, ...header, group: formatIpv4(b, 4) };
    case types.V2_MEMBERSHIP_REPORT:
    case types.LEAVE_GROUP:
      return { kind: type === types.LEAVE_GROUP ? 'leave' : 'report', version: 2, ...header, group: formatIpv4(b, 4) };
    case types.V3_MEMBERSHIP_REPORT: {
      const { records } = decodeRecords(b, 8, b.readUInt16BE(6), IPV4, malformed);
      return { kind: 'report', version: 3, ...header, records };
    }
    case types.MEMBERSHIP_QUERY:
      break;
    default:
      throw malformed(0, `type 0x${type.toString(16)} is not an IGMP message this decodes (0x11, 0x12, 0x16, 0x17, 0x22)`);
  }
  const group = formatIpv4(b, 4);
  // RFC 3376 §7.1: 8 bytes is v1 (code 0) or v2, 12 or more is v3; anything between is neither.
  if (b.length === 8) return b[1] === 0 ? { kind: 'query', version: 1, ...header, group } : { kind: 'query', version: 2, ...header, maxResponseDelay: b[1] * 100, group };
  if (b.length < 12) throw malformed(8, `query of ${b.length} bytes: IGMPv1/v2 queries are 8, IGMPv3 queries at least 12`);
  const count = b.readUInt16BE(10);
  if (12 + count * 4 > b.length) throw malformed(10, `query says ${count} sources (${count * 4} bytes) but only ${b.length - 12} bytes remain`);
  const sources: string[] = [];
  for (let i = 0; i < count; i++) sources.push(formatIpv4(b, 12 + i * 4));
  return {
    kind: 'query',
    version: 3,
    ...header,
    maxResponseDelay: codeValue(b[1], 8) * 100,
    group,
    suppressRouterProcessing: (b[8] & 0x08) !== 0,
    robustness: b[8] & 0x07,
    queryInterval: codeValue(b[9], 8),
    sources,
  };
}

const MESSAGE_KEYS = ['kind', 'version', 'type', 'checksum', 'checksumValid', 'group', 'maxResponseDelay', 'suppressRouterProcessing', 'robustness', 'queryInterval', 'sources', 'records'];

/** A message field that only some kinds have must be absent from the others. */
function refuseField(value: unknown, name: string, what: string): void {
  if (value !== undefined) throw invalidArgValue(`message.${name}`, value, `is not a field of ${what}`);
}

/** The type byte of a kind and version, or undefined for a combination IGMP does not have. */
function typeOf(kind: string, version: number): number | undefined {
  if (kind === 'query') return types.MEMBERSHIP_QUERY;
  if (kind === 'leave') return version === 2 ? types.LEAVE_GROUP : undefined;
  return version === 1 ? types.V1_MEMBERSHIP_REPORT : version === 2 ? types.V2_MEMBERSHIP_REPORT : types.V3_MEMBERSHIP_REPORT;
}

/**
 * Encodes an IGMP message, checksum included, ready to follow an IPv4 header (a raw IPv4
 * socket for protocol 2 adds the header; IGMPv2/v3 messages want TTL 1 and, for v3, a
 * Router Alert option, which such a socket does not add). Reserved fields are written 0.
 * Addresses are not checked to be multicast: a test can send what a broken host would.
 *
 * @throws ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE / ERR_OUT_OF_RANGE for a bad field,
 *   an unknown field, a field the message's kind and version do not have, or a message
 *   over {@link MAX_MESSAGE_LENGTH} bytes.
 */
export function encode(message: IgmpMessageInput): Buffer {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) throw invalidArgType('message', 'of type object', message);
  validateOptionKeys(message, MESSAGE_KEYS, 'message');
  // Each field read once: a getter cannot pass validation with one value and be written with another.
  const { kind, version: givenVersion, type: givenType, group, maxResponseDelay, suppressRouterProcessing, robustness, queryInterval, sources, records } = message;
  if (kind !== 'query' && kind !== 'report' && kind !== 'leave') throw invalidArgValue('message.kind', kind, "must be 'query', 'report' or 'leave'");
  const version = givenVersion === undefined ? (kind === 'leave' ? 2 : 3) : givenVersion;
  if (version !== 1 && version !== 2 && version !== 3) throw invalidArgValue('message.version', givenVersion, 'must be 1, 2 or 3');
  const type = typeOf(kind, version);
  if (type === undefined) throw invalidArgValue('message.version', givenVersion, 'must be 2 for leave (only IGMPv2 has a leave message)');
  if (givenType !== undefined && givenType !== type) throw invalidArgValue('message.type', givenType, `must be 0x${type.toString(16)} for an IGMPv${version} ${kind} (or left out)`);
  const what = `an IGMPv${version} ${kind}`;
  let out: Buffer;
  if (kind === 'report' && version === 3) {
    for (const [name, value] of [['group', group], ['maxResponseDelay', maxResponseDelay], ['suppressRouterProcessing', suppressRouterProcessing], ['robustness', robustness], ['queryInterval', queryInterval], ['sources', sources]] as const) refuseField(value, name, what);
    const parts = snapshotRecords(records === undefined ? [] : records, 'message.records', IPV4, MAX_MESSAGE_LENGTH - 8);
    out = Buffer.concat([Buffer.alloc(8), ...parts]);
    out.writeUInt16BE(parts.length, 6);
  } else if (kind === 'query' && version === 3) {
    refuseField(records, 'records', what);
    const delay = maxResponseDelay === undefined ? 10000 : checkUint('message.maxResponseDelay', maxResponseDelay, MAX_V3_RESPONSE_DELAY);
    const qrv = robustness === undefined ? 2 : checkUint('message.robustness', robustness, 7);
    const interval = queryInterval === undefined ? 125 : checkUint('message.queryInterval', queryInterval, MAX_QUERY_INTERVAL);
    if (suppressRouterProcessing !== undefined && typeof suppressRouterProcessing !== 'boolean') {
      throw invalidArgType('message.suppressRouterProcessing', 'of type boolean', suppressRouterProcessing);
    }
    const sourceList = sources === undefined ? [] : sources;
    const count = validateList(sourceList, 'message.sources', Math.floor((MAX_MESSAGE_LENGTH - 12) / 4), 'an array of IPv4 addresses');
    out = Buffer.alloc(12 + count * 4);
    out[1] = valueCode(Math.floor(delay / 100), 8);
    IPV4.write(group === undefined ? '0.0.0.0' : group, out, 4, 'message.group');
    out[8] = (suppressRouterProcessing === true ? 0x08 : 0) | qrv;
    out[9] = valueCode(interval, 8);
    out.writeUInt16BE(count, 10);
    for (let i = 0; i < count; i++) IPV4.write((sourceList as readonly unknown[])[i], out, 12 + i * 4, `message.sources[${i}]`);
  } else {
    for (const [name, value] of [['suppressRouterProcessing', suppressRouterProcessing], ['robustness', robustness], ['queryInterval', queryInterval], ['sources', sources], ['records', records]] as const) refuseField(value, name, what);
    out = Buffer.alloc(8);
    if (kind === 'query' && version === 2) {
      out[1] = Math.floor((maxResponseDelay === undefined ? 10000 : checkUint('message.maxResponseDelay', maxResponseDelay, 25500)) / 100);
      // A zero code is what makes an 8-byte query IGMPv1 (RFC 2236 §4).
      if (out[1] === 0) throw outOfRange('message.maxResponseDelay', 'from 100 to 25500 in an IGMPv2 query (under 100 is a code of 0, an IGMPv1 query)', maxResponseDelay);
    } else {
      refuseField(maxResponseDelay, 'maxResponseDelay', what);
    }
    if (group === undefined && kind !== 'query') throw invalidArgType('message.group', 'of type string', group);
    IPV4.write(group === undefined ? '0.0.0.0' : group, out, 4, 'message.group');
  }
  out[0] = type;
  if (out.length > MAX_MESSAGE_LENGTH) throw outOfRange('message', `a message of at most ${MAX_MESSAGE_LENGTH} bytes`, `${out.length} bytes`);
  out.writeUInt16BE(internetChecksum([out]), 2);
  return out;
}
