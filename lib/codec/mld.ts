/**
 * Codec for Multicast Listener Discovery messages, version 1 (RFC 2710) and 2 (RFC 3810).
 * The input and output are ICMPv6 messages starting at the type byte, as a raw ICMPv6
 * socket (`new RawSocket({ protocol: 58 })`) receives and sends them:
 *
 * ```
 * 130 query           byte 4-5 Max Resp Code, 8-23 multicast address; a 24-byte message is
 *                     MLDv1, 28 bytes or more MLDv2: 24 S|QRV, 25 QQIC, 26-27 number of
 *                     sources, 28.. sources
 * 131 MLDv1 report    byte 8-23 multicast address
 * 132 MLDv1 done      byte 8-23 multicast address
 * 143 MLDv2 report    byte 6-7 number of records, 8.. records: type, aux data length (32-bit
 *                     words), number of sources, multicast address, sources, aux data
 * ```
 *
 * Checksum: the ICMPv6 checksum covers a pseudo-header with the packet's source and
 * destination addresses, which the message alone does not carry. On a raw ICMPv6 socket
 * the kernel verifies it on receive (a message with a bad checksum never arrives) and
 * computes it on send (ICMPv6 raw sockets always checksum at offset 2), so `encode` leaves
 * it 0 by default. Give `source` and `destination` to have it computed here (a packet sent
 * with its header included) or, on `decode`, verified (`checksumValid`).
 * @packageDocumentation
 */

import { invalidArgType, invalidArgValue, outOfRange, stateError, type CodedError } from '../errors';
import { validateList, validateOptionKeys } from '../validate';
import { codeValue, decodeRecords, maxCodeValue, snapshotRecords, valueCode, type AddressFormat, type GroupRecord, type GroupRecordInput } from './grouprecord';
import { formatIpv6, writeIpv6 } from './ipv6addr';
import { upperLayerChecksum } from './packet';
import { checkUint } from './snapshot';

export { recordTypes } from './grouprecord';
export type { GroupRecord, GroupRecordInput, RecordTypeName } from './grouprecord';

/** The ICMPv6 types of MLD messages. */
export const types = Object.freeze({
  /** Multicast Listener Query, MLDv1 and MLDv2 (told apart by length). */
  QUERY: 130,
  /** MLDv1 Multicast Listener Report. */
  REPORT: 131,
  /** MLDv1 Multicast Listener Done. */
  DONE: 132,
  /** MLDv2 Multicast Listener Report, sent to ff02::16. */
  V2_REPORT: 143,
} as const);

/** Fields every decoded message has. */
interface MldHeader {
  /** The ICMPv6 type. */
  type: number;
  /** The ICMPv6 code: 0 when sent, ignored on receipt. */
  code: number;
  /** The checksum as received (see the module comment for who checks it). */
  checksum: number;
  /**
   * Whether the checksum is right for the `source` and `destination` given to `decode`;
   * absent when they were not given.
   */
  checksumValid?: boolean;
}

/** An MLDv1 query (24 bytes). */
export interface MldV1Query extends MldHeader {
  kind: 'query';
  version: 1;
  /** Maximum Response Delay, in milliseconds. */
  maxResponseDelay: number;
  /** '::' in a general query, else the group asked about. */
  group: string;
}

/** An MLDv2 query (28 bytes and more). */
export interface MldV2Query extends MldHeader {
  kind: 'query';
  version: 2;
  /** Maximum Response Delay in milliseconds, decoded from the Max Resp Code. */
  maxResponseDelay: number;
  /** '::' in a general query, else the group asked about. */
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

/** An MLDv1 report (131) or done (132). */
export interface MldV1Message extends MldHeader {
  kind: 'report' | 'done';
  version: 1;
  /** The group joined (report) or left (done). */
  group: string;
}

/** An MLDv2 report (143). */
export interface MldV2Report extends MldHeader {
  kind: 'report';
  version: 2;
  /** The multicast address records, in wire order. */
  records: GroupRecord[];
}

/** Any decoded MLD message; `kind` and `version` tell them apart. */
export type MldMessage = MldV1Query | MldV2Query | MldV1Message | MldV2Report;

/**
 * A message to encode. Decoded messages are accepted as they are (`type`, `checksum` and
 * `checksumValid` are ignored; `type`, when given, must agree with `kind` and `version`).
 * Defaults: `version` 2 for a query or report (done is version 1 only), group '::',
 * `maxResponseDelay` 10000 ms, `robustness` 2, `queryInterval` 125 s (RFC 3810 §9), no
 * sources, no records, code 0.
 */
export interface MldMessageInput {
  kind: 'query' | 'report' | 'done';
  version?: 1 | 2;
  type?: number;
  code?: number;
  checksum?: number;
  checksumValid?: boolean;
  /** Queries, MLDv1 reports and done. */
  group?: string;
  /** Queries: milliseconds, 0-65535 (MLDv1) or 0-8387584 (MLDv2; a value without an exact code is rounded down). */
  maxResponseDelay?: number;
  /** MLDv2 queries. */
  suppressRouterProcessing?: boolean;
  /** MLDv2 queries: 0-7. */
  robustness?: number;
  /** MLDv2 queries: seconds, 0-31744 (a value without an exact code is rounded down). */
  queryInterval?: number;
  /** MLDv2 queries. */
  sources?: readonly string[];
  /** MLDv2 reports. */
  records?: readonly GroupRecordInput[];
}

/** Options for {@link encode} and {@link decode}: both addresses, or neither. */
export interface ChecksumOptions {
  /** The IPv6 source address of the packet that carries the message. */
  source?: string;
  /** The IPv6 destination address of that packet. */
  destination?: string;
}

/** A malformed-message error: code 'ERR_MLD_MALFORMED', plus the offending byte offset. */
export interface MldMalformedError extends CodedError {
  code: 'ERR_MLD_MALFORMED';
  /** Offset of the offending byte from the start of the message. */
  offset: number;
}

/**
 * The largest message `encode` makes: the payload of an IPv6 packet (65,535 bytes) less
 * the 8-byte hop-by-hop header with the Router Alert every MLD message carries.
 */
export const MAX_MESSAGE_LENGTH = 65535 - 8;

/** Largest Maximum Response Delay of an MLDv2 query, in milliseconds. */
export const MAX_V2_RESPONSE_DELAY = maxCodeValue(16);

/** Largest Query Interval of an MLDv2 query, in seconds. */
export const MAX_QUERY_INTERVAL = maxCodeValue(8);

const ICMPV6 = 58;

function malformed(offset: number, what: string): MldMalformedError {
  const err = stateError('ERR_MLD_MALFORMED', `Malformed MLD message at offset ${offset}: ${what}`);
  return Object.assign(err, { code: 'ERR_MLD_MALFORMED' as const, offset });
}

const IPV6: AddressFormat = {
  size: 16,
  format: formatIpv6,
  write(value, out, offset, name) {
    writeIpv6(value as string, out, offset, name);
  },
};

/** The source and destination of ChecksumOptions, both or neither, each read once. */
function checksumAddresses(opts: unknown): { source: string; destination: string } | undefined {
  if (opts === undefined) return undefined;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw invalidArgType('opts', 'an object', opts);
  validateOptionKeys(opts, ['source', 'destination'], 'opts');
  const { source, destination } = opts as ChecksumOptions;
  if (source === undefined && destination === undefined) return undefined;
  if (source === undefined || destination === undefined) {
    throw invalidArgValue('opts', opts, 'must give both source and destination (the checksum covers both) or neither');
  }
  // Validated here, so a bad address is named as the caller named it.
  writeIpv6(source, Buffer.alloc(16), 0, 'opts.source');
  writeIpv6(destination, Buffer.alloc(16), 0, 'opts.destination');
  return { source, destination };
}

/**
 * Decodes one MLD message: an ICMPv6 message of type 130, 131, 132 or 143, starting at
 * the type byte. Never reads past `buf`: every count and length is checked against what
 * remains first. Bytes after the message's own end (after the last source or record)
 * are ignored, as are reserved fields.
 *
 * @param opts `source` and `destination` of the packet, to verify the checksum
 *   (`checksumValid`); without them the checksum is not looked at (the kernel checked it).
 * @throws ERR_INVALID_ARG_TYPE for a non-byte input or bad options; ERR_MLD_MALFORMED
 *   (with `offset`) for a message that is truncated, is not MLD (another ICMPv6 type), is
 *   a query of a length neither version has (25-27 bytes), or whose source count, record
 *   count or aux data length runs past the end.
 */
export function decode(buf: Uint8Array, opts?: ChecksumOptions): MldMessage {
  if (!(buf instanceof Uint8Array)) throw invalidArgType('buf', 'an instance of Buffer or Uint8Array', buf);
  const addresses = checksumAddresses(opts);
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const message = decodeMessage(b);
  // Verified once the message is known to be whole: a refused input costs no checksum.
  if (addresses !== undefined) message.checksumValid = upperLayerChecksum(addresses.source, addresses.destination, ICMPV6, b) === 0;
  return message;
}

function decodeMessage(b: Buffer): MldMessage {
  if (b.length < 4) throw malformed(0, `only ${b.length} bytes; an ICMPv6 header is 4`);
  const type = b[0];
  if (type !== types.QUERY && type !== types.REPORT && type !== types.DONE && type !== types.V2_REPORT) {
    throw malformed(0, `ICMPv6 type ${type} is not an MLD message (130, 131, 132, 143)`);
  }
  const header: MldHeader = { type, code: b[1], checksum: b.readUInt16BE(2) };
  if (type === types.V2_REPORT) {
    if (b.length < 8) throw malformed(0, `MLDv2 report of ${b.length} bytes; its header is 8`);
    const { records } = decodeRecords(b, 8, b.readUInt16BE(6), IPV6, malformed);
    return { kind: 'report', version: 2, ...header, records };
  }
  if (b.length < 24) throw malformed(0, `type ${type} message of ${b.length} bytes; MLD messages are at least 24`);
  const group = formatIpv6(b, 8);
  if (type === types.REPORT || type === types.DONE) return { kind: type === types.REPORT ? 'report' : 'done', version: 1, ...header, group };
  if (b.length === 24) return { kind: 'query', version: 1, ...header, maxResponseDelay: b.readUInt16BE(4), group };
  // RFC 3810 §8.1: 24 bytes is MLDv1, 28 or more is MLDv2; anything between is neither.
  if (b.length < 28) throw malformed(24, `query of ${b.length} bytes: MLDv1 queries are 24, MLDv2 queries at least 28`);
  const count = b.readUInt16BE(26);
  if (28 + count * 16 > b.length) throw malformed(26, `query says ${count} sources (${count * 16} bytes) but only ${b.length - 28} bytes remain`);
  const sources: string[] = [];
  for (let i = 0; i < count; i++) sources.push(formatIpv6(b, 28 + i * 16));
  return {
    kind: 'query',
    version: 2,
    ...header,
    maxResponseDelay: codeValue(b.readUInt16BE(4), 16),
    group,
    suppressRouterProcessing: (b[24] & 0x08) !== 0,
    robustness: b[24] & 0x07,
    queryInterval: codeValue(b[25], 8),
    sources,
  };
}

const MESSAGE_KEYS = ['kind', 'version', 'type', 'code', 'checksum', 'checksumValid', 'group', 'maxResponseDelay', 'suppressRouterProcessing', 'robustness', 'queryInterval', 'sources', 'records'];

/** A message field that only some kinds have must be absent from the others. */
function refuseField(value: unknown, name: string, what: string): void {
  if (value !== undefined) throw invalidArgValue(`message.${name}`, value, `is not a field of ${what}`);
}

/**
 * Encodes an MLD message as an ICMPv6 message (type first), ready for `RawSocket.send` on
 * a raw ICMPv6 socket. Reserved fields are written as 0. The checksum is left 0 for the
 * kernel (raw ICMPv6 sockets compute it, IPV6_CHECKSUM offset 2) unless `opts` gives the
 * packet's `source` and `destination`, for a packet sent with its header included.
 *
 * Addresses are not checked to be multicast: a test can send what a broken host would.
 * Note that MLD messages must be sent with hop limit 1 from a link-local source and with a
 * Router Alert option (`hopByHop: [hopByHop.routerAlert(0)]`), or receivers drop them.
 *
 * @throws ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE / ERR_OUT_OF_RANGE for a bad field,
 *   an unknown field, a field the message's kind does not have, or a message over
 *   {@link MAX_MESSAGE_LENGTH} bytes.
 */
export function encode(message: MldMessageInput, opts?: ChecksumOptions): Buffer {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) throw invalidArgType('message', 'of type object', message);
  validateOptionKeys(message, MESSAGE_KEYS, 'message');
  // Each field read once: a getter cannot pass validation with one value and be written with another.
  const { kind, version: givenVersion, type: givenType, code: givenCode, group, maxResponseDelay, suppressRouterProcessing, robustness, queryInterval, sources, records } = message;
  const addresses = checksumAddresses(opts);
  if (kind !== 'query' && kind !== 'report' && kind !== 'done') throw invalidArgValue('message.kind', kind, "must be 'query', 'report' or 'done'");
  const version = givenVersion === undefined ? (kind === 'done' ? 1 : 2) : givenVersion;
  if (version !== 1 && version !== 2) throw invalidArgValue('message.version', givenVersion, 'must be 1 or 2');
  if (kind === 'done' && version !== 1) throw invalidArgValue('message.version', givenVersion, 'must be 1 for done (MLDv2 has no done message)');
  const type = kind === 'query' ? types.QUERY : kind === 'done' ? types.DONE : version === 1 ? types.REPORT : types.V2_REPORT;
  if (givenType !== undefined && givenType !== type) throw invalidArgValue('message.type', givenType, `must be ${type} for an MLDv${version} ${kind} (or left out)`);
  const code = givenCode === undefined ? 0 : checkUint('message.code', givenCode, 0xff);
  const what = `an MLDv${version} ${kind}`;
  let out: Buffer;
  if (kind === 'report' && version === 2) {
    for (const [name, value] of [['group', group], ['maxResponseDelay', maxResponseDelay], ['suppressRouterProcessing', suppressRouterProcessing], ['robustness', robustness], ['queryInterval', queryInterval], ['sources', sources]] as const) refuseField(value, name, what);
    const parts = snapshotRecords(records === undefined ? [] : records, 'message.records', IPV6, MAX_MESSAGE_LENGTH - 8);
    out = Buffer.concat([Buffer.alloc(8), ...parts]);
    out.writeUInt16BE(parts.length, 6);
  } else if (kind === 'query' && version === 2) {
    refuseField(records, 'records', what);
    const delay = maxResponseDelay === undefined ? 10000 : checkUint('message.maxResponseDelay', maxResponseDelay, MAX_V2_RESPONSE_DELAY);
    const qrv = robustness === undefined ? 2 : checkUint('message.robustness', robustness, 7);
    const interval = queryInterval === undefined ? 125 : checkUint('message.queryInterval', queryInterval, MAX_QUERY_INTERVAL);
    if (suppressRouterProcessing !== undefined && typeof suppressRouterProcessing !== 'boolean') {
      throw invalidArgType('message.suppressRouterProcessing', 'of type boolean', suppressRouterProcessing);
    }
    const sourceList = sources === undefined ? [] : sources;
    const count = validateList(sourceList, 'message.sources', Math.floor((MAX_MESSAGE_LENGTH - 28) / 16), 'an array of IPv6 addresses');
    out = Buffer.alloc(28 + count * 16);
    out.writeUInt16BE(valueCode(delay, 16), 4);
    writeIpv6((group === undefined ? '::' : group) as string, out, 8, 'message.group');
    out[24] = (suppressRouterProcessing === true ? 0x08 : 0) | qrv;
    out[25] = valueCode(interval, 8);
    out.writeUInt16BE(count, 26);
    for (let i = 0; i < count; i++) writeIpv6((sourceList as readonly unknown[])[i] as string, out, 28 + i * 16, `message.sources[${i}]`);
  } else {
    for (const [name, value] of [['suppressRouterProcessing', suppressRouterProcessing], ['robustness', robustness], ['queryInterval', queryInterval], ['sources', sources], ['records', records]] as const) refuseField(value, name, what);
    if (kind !== 'query') refuseField(maxResponseDelay, 'maxResponseDelay', what);
    out = Buffer.alloc(24);
    if (kind === 'query') out.writeUInt16BE(maxResponseDelay === undefined ? 10000 : checkUint('message.maxResponseDelay', maxResponseDelay, 0xffff), 4);
    if (group === undefined && kind !== 'query') throw invalidArgType('message.group', 'of type string', group);
    writeIpv6((group === undefined ? '::' : group) as string, out, 8, 'message.group');
  }
  out[0] = type;
  out[1] = code;
  if (addresses !== undefined) out.writeUInt16BE(upperLayerChecksum(addresses.source, addresses.destination, ICMPV6, out), 2);
  if (out.length > MAX_MESSAGE_LENGTH) throw outOfRange('message', `a message of at most ${MAX_MESSAGE_LENGTH} bytes`, `${out.length} bytes`);
  return out;
}
