/**
 * What MLDv2 (RFC 3810) and IGMPv3 (RFC 3376) share, with only the address size differing:
 * the multicast address record of a version 2/3 report, and the floating-point codes of a
 * query (Max Resp Code, QQIC). Internal to lib/codec/mld and lib/codec/igmp, which export
 * the public names.
 * @packageDocumentation
 */
import { invalidArgType, invalidArgValue, outOfRange } from '../errors';
import { validateList } from '../validate';
import { byteCount, checkUint, snapshotBytes } from './snapshot';

/** Record types of a version 2/3 report (RFC 3810 §5.2.12, RFC 3376 §4.2.12). */
export const recordTypes = Object.freeze({
  MODE_IS_INCLUDE: 1,
  MODE_IS_EXCLUDE: 2,
  CHANGE_TO_INCLUDE_MODE: 3,
  CHANGE_TO_EXCLUDE_MODE: 4,
  ALLOW_NEW_SOURCES: 5,
  BLOCK_OLD_SOURCES: 6,
} as const);

/** The name of a record type (see {@link recordTypes}). */
export type RecordTypeName = keyof typeof recordTypes;

const RECORD_TYPE_NAMES = Object.keys(recordTypes) as RecordTypeName[];

/** One multicast address record of an MLDv2 or IGMPv3 report, as decoded. */
export interface GroupRecord {
  /** The record type as received: 1-6 (see `recordTypes`), or any other byte. */
  type: number;
  /**
   * The name of `type`, or 'unknown' for a value outside 1-6: such a record is decoded
   * (its length is known) but RFC 3810 §5.2.12 and RFC 3376 §4.2.12 tell receivers to
   * ignore it.
   */
  typeName: RecordTypeName | 'unknown';
  /** The multicast address the record is about. */
  group: string;
  /** The source addresses, in wire order. */
  sources: string[];
  /**
   * Auxiliary data (a copy), a multiple of 4 bytes. The RFCs define none: senders send
   * none and receivers ignore it, but its length is part of the record's.
   */
  auxData: Buffer;
}

/** A record to encode: `type` or `typeName` (both only if they agree), a group, sources. */
export interface GroupRecordInput {
  /** Record type byte, 0-255 (values outside 1-6 only for tests of a receiver). */
  type?: number;
  /** The record type by name ('unknown', as decode names a type outside 1-6, only with `type`). */
  typeName?: RecordTypeName | 'unknown';
  /** The multicast address. */
  group: string;
  /** Source addresses (default none). */
  sources?: readonly string[];
  /** Auxiliary data, a multiple of 4 bytes, at most 1020 (default none). */
  auxData?: Uint8Array;
}

/** How one protocol's addresses are read and written. */
export interface AddressFormat {
  /** Bytes per address: 16 for MLD, 4 for IGMP. */
  size: number;
  /** Text of the address at buf[offset]; the caller has checked the bytes are there. */
  format(buf: Uint8Array, offset: number): string;
  /** Writes the address given as text, or throws an argument error naming `name`. */
  write(value: unknown, out: Buffer, offset: number, name: string): void;
}

/** Builds the protocol's malformed-message error for a byte offset. */
export type Malformed = (offset: number, what: string) => Error;

/**
 * Decodes `count` records starting at buf[at], none past `buf.length`. Every length read
 * (source count, aux data length) is checked against what remains before anything is read
 * or allocated for it, and the whole walk is checked before any address is formatted: a
 * message that will be refused costs no more than reading its length fields. Returns the
 * records and the offset after the last one.
 */
export function decodeRecords(buf: Buffer, at: number, count: number, addresses: AddressFormat, malformed: Malformed): { records: GroupRecord[]; end: number } {
  const size = addresses.size;
  const fixed = 4 + size;
  let off = at;
  for (let i = 0; i < count; i++) {
    if (off + fixed > buf.length) {
      throw malformed(off, `record ${i} of ${count} needs ${fixed} bytes but only ${buf.length - off} remain`);
    }
    const sourceCount = buf.readUInt16BE(off + 2);
    const sourcesEnd = off + fixed + sourceCount * size;
    if (sourcesEnd > buf.length) {
      throw malformed(off + 2, `record ${i} says ${sourceCount} sources (${sourceCount * size} bytes) but only ${buf.length - off - fixed} bytes remain`);
    }
    const end = sourcesEnd + buf[off + 1] * 4;
    if (end > buf.length) {
      throw malformed(off + 1, `record ${i} says ${buf[off + 1] * 4} bytes of aux data but only ${buf.length - sourcesEnd} remain`);
    }
    off = end;
  }
  const records: GroupRecord[] = [];
  off = at;
  for (let i = 0; i < count; i++) {
    const type = buf[off];
    const sourceCount = buf.readUInt16BE(off + 2);
    const sourcesEnd = off + fixed + sourceCount * size;
    const end = sourcesEnd + buf[off + 1] * 4;
    const sources: string[] = [];
    for (let s = 0; s < sourceCount; s++) sources.push(addresses.format(buf, off + fixed + s * size));
    records.push({
      type,
      typeName: type >= 1 && type <= 6 ? RECORD_TYPE_NAMES[type - 1] : 'unknown',
      group: addresses.format(buf, off + 4),
      sources,
      auxData: Buffer.from(buf.subarray(sourcesEnd, end)),
    });
    off = end;
  }
  return { records, end: off };
}

/** A record validated for encoding: each input field read once, addresses already written. */
interface RecordSnapshot {
  /** The record's bytes, complete. */
  bytes: Buffer;
}

/** The record type from `type` and/or `typeName`, which must agree when both are given. */
function recordType(type: unknown, typeName: unknown, name: string): number {
  let byName: number | undefined;
  if (typeName !== undefined) {
    if (typeof typeName !== 'string') throw invalidArgType(`${name}.typeName`, 'of type string', typeName);
    if (!Object.prototype.hasOwnProperty.call(recordTypes, typeName)) {
      // 'unknown' is what decode() names a type outside 1-6; encoding it needs the number.
      if (typeName === 'unknown' && type !== undefined) return checkUint(`${name}.type`, type, 0xff);
      throw invalidArgValue(`${name}.typeName`, typeName, `must be one of ${RECORD_TYPE_NAMES.join(', ')}`);
    }
    byName = recordTypes[typeName as RecordTypeName];
  }
  if (type === undefined) {
    if (byName === undefined) throw invalidArgType(`${name}.type`, 'of type number (or a typeName)', type);
    return byName;
  }
  const t = checkUint(`${name}.type`, type, 0xff);
  if (byName !== undefined && byName !== t) throw invalidArgValue(`${name}.typeName`, typeName, `names type ${byName} but type is ${t}`);
  return t;
}

/**
 * Validates records to encode and lays each one out in bytes of its own. `maxBytes` bounds
 * the total so that a list of huge records is refused before it is all copied.
 */
export function snapshotRecords(value: unknown, name: string, addresses: AddressFormat, maxBytes: number): Buffer[] {
  const count = validateList(value, name, 0xffff, 'an array of records');
  const list = value as readonly unknown[];
  const out: Buffer[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const rec = snapshotRecord(list[i], `${name}[${i}]`, addresses);
    total += rec.bytes.length;
    if (total > maxBytes) throw outOfRange(name, `records that fit in ${maxBytes} bytes`, `${total} bytes after record ${i}`);
    out.push(rec.bytes);
  }
  return out;
}

function snapshotRecord(value: unknown, name: string, addresses: AddressFormat): RecordSnapshot {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidArgType(name, 'of type object', value);
  const r = value as Partial<Record<keyof GroupRecordInput, unknown>>;
  const { type: givenType, typeName, group, sources, auxData } = r;
  const type = recordType(givenType, typeName, name);
  const sourceList = sources === undefined ? [] : sources;
  const sourceCount = validateList(sourceList, `${name}.sources`, 0xffff, 'an array of addresses');
  let aux: Buffer = Buffer.alloc(0);
  if (auxData !== undefined) {
    if (!(auxData instanceof Uint8Array)) throw invalidArgType(`${name}.auxData`, 'an instance of Buffer or Uint8Array', auxData);
    const length = byteCount(auxData);
    if (length % 4 !== 0 || length > 255 * 4) throw outOfRange(`${name}.auxData.length`, 'a multiple of 4, at most 1020', length);
    aux = snapshotBytes(auxData);
  }
  const size = addresses.size;
  const sourcesAt = 4 + size;
  const bytes = Buffer.alloc(sourcesAt + sourceCount * size + aux.length);
  bytes[0] = type;
  bytes[1] = aux.length / 4;
  bytes.writeUInt16BE(sourceCount, 2);
  addresses.write(group, bytes, 4, `${name}.group`);
  for (let s = 0; s < sourceCount; s++) {
    addresses.write((sourceList as readonly unknown[])[s], bytes, sourcesAt + s * size, `${name}.sources[${s}]`);
  }
  bytes.set(aux, sourcesAt + sourceCount * size);
  return { bytes };
}

/**
 * The value of a floating-point code (RFC 3810 §5.1.3, §5.1.9; RFC 3376 §4.1.1, §4.1.7):
 * below 2^(bits-1) the code is the value itself; from there on it is 1 | exp (3 bits) |
 * mant (bits - 4), worth (mant | 2^(bits-4)) << (exp + 3).
 */
export function codeValue(code: number, bits: 8 | 16): number {
  if (code < 1 << (bits - 1)) return code;
  const mantBits = bits - 4;
  const mant = code & ((1 << mantBits) - 1);
  const exp = (code >> mantBits) & 7;
  return (mant | (1 << mantBits)) * 2 ** (exp + 3);
}

/** The largest value a code of `bits` bits expresses. */
export function maxCodeValue(bits: 8 | 16): number {
  return codeValue((1 << bits) - 1, bits);
}

/**
 * The code for `value`: exact when the value has a code (every value a decoder returns
 * has one), else the code of the largest smaller value that has one, so a delay or an
 * interval is never made longer than asked. The caller has checked 0 <= value <= maxCodeValue.
 */
export function valueCode(value: number, bits: 8 | 16): number {
  const limit = 1 << (bits - 1);
  if (value < limit) return value;
  const mantBits = bits - 4;
  for (let exp = 7; exp >= 0; exp--) {
    const step = 2 ** (exp + 3);
    const mantissa = Math.floor(value / step);
    if (mantissa >= 1 << mantBits) return limit | (exp << mantBits) | (Math.min(mantissa, (1 << (mantBits + 1)) - 1) - (1 << mantBits));
  }
  return limit; // not reached: value >= limit has a mantissa of at least 2^mantBits at exp 0
}
