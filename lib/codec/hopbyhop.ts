/**
 * Codec for the IPv6 Hop-by-Hop Options header (next header 0) and the Destination Options
 * header (next header 60). Both share one format (RFC 8200 §4.2, §4.3, §4.6):
 *
 * ```
 * byte 0      next header
 * byte 1      hdr-ext-len: header length in 8-byte units, not counting the first 8
 * byte 2..    TLV options: type, length, `length` bytes of data; padded with Pad1 (a
 *             single 0 byte) and PadN (type 1, then `length` zero bytes) so that each
 *             option meets its alignment and the header is a multiple of 8 bytes
 * ```
 *
 * Known options: Router Alert (type 5, RFC 2711) and Jumbo Payload (type 0xC2, RFC 2675).
 * Every other option is kept as raw bytes with its action bits decoded.
 *
 * `encode`/`decode` handle the hop-by-hop header; `destinationOptions.encode`/`.decode` are
 * the same codec with messages that name the destination options header. Router Alert and
 * Jumbo Payload are only meaningful hop-by-hop; in a destination options header a receiver
 * (Linux included) treats them as unrecognised options.
 */

import { invalidArgType, invalidArgValue, outOfRange, stateError, type CodedError } from '../errors';
import { byteCount, checkUint, snapshotBytes, snapshotOptions, unknownOption } from './snapshot';
import { nextOption } from './extensions';
import { optionKeys, validateOptionKeys } from '../validate';

export * from './options';
import type { HopByHopOption, JumboPayloadOption, RouterAlertOption } from './options';

/** A problem tolerated by `decode(buf, { strict: false })` (strict decoding throws instead). */
export interface OptionsProblem {
  /** Byte offset of the offending option or padding, from the start of the header. */
  offset: number;
  /**
   * - 'padding-not-zero': a PadN option with non-zero data (Linux drops such packets)
   * - 'padding-too-long': more than 7 consecutive padding bytes (Linux drops such packets)
   * - 'bad-router-alert': router alert whose length is not 2 (Linux drops the packet); the
   *   option is returned as 'unknown'
   * - 'bad-jumbo-payload': jumbo option with length other than 4, not 4n+2 aligned, or a
   *   value not over 65,535 (RFC 2675 §3); the option is returned as 'unknown'
   */
  reason: 'padding-not-zero' | 'padding-too-long' | 'bad-router-alert' | 'bad-jumbo-payload';
  /** Human-readable description. */
  message: string;
}

/** The decoded header. */
export interface DecodedOptionsHeader {
  /** Next header field (the protocol of what follows this header). */
  nextHeader: number;
  /** Length of the whole header in bytes: (hdr-ext-len + 1) * 8. */
  length: number;
  /** Options in wire order, padding excluded. */
  options: HopByHopOption[];
  /** Problems tolerated in non-strict mode; always empty in strict mode. */
  problems: OptionsProblem[];
}

/** Options for {@link decode}. */
export interface DecodeOptions {
  /**
   * true (default): any padding or known-option violation throws ERR_HOPOPTS_MALFORMED, as
   * the Linux receive path would drop the packet. false: such violations are reported in
   * `problems` and decoding continues. Structural errors (a length running past the end)
   * throw in both modes.
   */
  strict?: boolean;
}

/** Options for {@link encode}. */
export interface EncodeOptions {
  /** Next header byte (default 0; the kernel fills it in when the header is sent as IPV6_HOPOPTS). */
  nextHeader?: number;
}

/** A malformed-header error: code 'ERR_HOPOPTS_MALFORMED', plus the offending byte offset. */
export interface OptionsMalformedError extends CodedError {
  code: 'ERR_HOPOPTS_MALFORMED';
  /** Offset of the offending byte from the start of the header. */
  offset: number;
}

/** Largest header the format can express: hdr-ext-len 255 -> 256 * 8 bytes. */
export const MAX_HEADER_LENGTH = 2048;

const HOP_BY_HOP = 'hop-by-hop options header';
const DESTINATION = 'destination options header';

function malformed(label: string, offset: number, what: string): OptionsMalformedError {
  const err = stateError('ERR_HOPOPTS_MALFORMED', `Malformed ${label} at offset ${offset}: ${what}`);
  return Object.assign(err, { code: 'ERR_HOPOPTS_MALFORMED' as const, offset });
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Builds a Router Alert option (RFC 2711).
 *
 * @param value 16-bit value, e.g. `routerAlertValues.RSVP`
 * @throws ERR_INVALID_ARG_TYPE if not a number; ERR_OUT_OF_RANGE if not an integer 0..65535
 */
export function routerAlert(value: number): RouterAlertOption {
  return { type: 5, name: 'routerAlert', routerAlert: checkUint('value', value, 0xffff) };
}

/**
 * Builds a Jumbo Payload option (RFC 2675). Only for packets whose payload exceeds 65,535
 * bytes; `serializePacket` fills in the real length.
 *
 * @param length payload length after the IPv6 header, 65,536..4,294,967,295
 * @throws ERR_INVALID_ARG_TYPE if not a number; ERR_OUT_OF_RANGE otherwise out of range
 */
export function jumboPayload(length: number): JumboPayloadOption {
  if (typeof length !== 'number') throw invalidArgType('length', 'of type number', length);
  if (!Number.isInteger(length) || length < 0x10000 || length > 0xffffffff) {
    throw outOfRange('length', 'an integer from 65536 to 4294967295', length);
  }
  return { type: 0xc2, name: 'jumboPayload', jumboPayloadLength: length };
}

/**
 * Builds an option from a raw type and data, as `decode` would return it: a well-formed
 * Router Alert or Jumbo Payload comes back as the named option, anything else as 'unknown'.
 * Raw options are not checked for meaning, so tests can send deliberately malformed ones.
 *
 * @param type option type 2..255 (0 and 1 are padding, which `encode` adds itself)
 * @param data option data, at most 255 bytes (copied)
 * @throws ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE (padding type), ERR_OUT_OF_RANGE
 */
export function option(type: number, data: Uint8Array = Buffer.alloc(0)): HopByHopOption {
  checkUint('type', type, 0xff);
  if (type === 0 || type === 1) throw invalidArgValue('type', type, 'must not be Pad1 (0) or PadN (1); encode() adds padding');
  if (!(data instanceof Uint8Array)) throw invalidArgType('data', 'an instance of Buffer or Uint8Array', data);
  const length = byteCount(data);
  if (length > 255) throw outOfRange('data.length', 'at most 255', length);
  const copy = snapshotBytes(data);
  return classify(type, copy, copy, 0, 2) ?? unknownOption(type, copy);
}

/**
 * Returns the named option when `type`/`data` form a valid Router Alert or Jumbo Payload at
 * header offset `at`, or undefined. `buf[pos..pos+len)` holds the data.
 */
function classify(type: number, data: Buffer, buf: Uint8Array, pos: number, at: number): HopByHopOption | undefined {
  if (type === 5 && data.length === 2) {
    return { type: 5, name: 'routerAlert', routerAlert: (buf[pos] << 8) | buf[pos + 1] };
  }
  if (type === 0xc2 && data.length === 4 && (at & 3) === 2) {
    const v = buf[pos] * 0x1000000 + ((buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]);
    if (v > 0xffff) return { type: 0xc2, name: 'jumboPayload', jumboPayloadLength: v };
  }
  return undefined;
}

/** Alignment requirement xn+y of an option type (RFC 8200 §4.2 and the option's RFC). */
function alignment(type: number): [number, number] {
  if (type === 5) return [2, 0]; // RFC 2711 §2.1
  if (type === 0xc2) return [4, 2]; // RFC 2675 §2
  return [1, 0];
}

/** Writes `n` bytes of padding at out[off]: Pad1 for one byte, else a zero-filled PadN. */
function writePadding(out: Buffer, off: number, n: number): void {
  if (n === 0) return;
  if (n === 1) {
    out[off] = 0;
    return;
  }
  out[off] = 1;
  out[off + 1] = n - 2;
  out.fill(0, off + 2, off + n);
}

const ENCODE_KEYS = optionKeys<EncodeOptions>({ nextHeader: true });
const DECODE_KEYS = optionKeys<DecodeOptions>({ strict: true });

function encodeHeader(options: readonly HopByHopOption[], opts: EncodeOptions | undefined, label: string): Buffer {
  const list = snapshotOptions(options);
  if (opts !== undefined && (typeof opts !== 'object' || opts === null || Array.isArray(opts))) throw invalidArgType('opts', 'an object', opts);
  if (opts !== undefined) validateOptionKeys(opts, ENCODE_KEYS, 'opts');
  const given = opts?.nextHeader;
  const nextHeader = given === undefined ? 0 : checkUint('opts.nextHeader', given, 0xff);
  // Lay out first, so the buffer is allocated once at its final size. From here on only the
  // snapshot is read: no code of the caller's runs between the layout and the writing.
  const pads: number[] = [];
  let off = 2;
  for (const o of list) {
    const [x, y] = alignment(o.type);
    const pad = (((y - off) % x) + x) % x;
    pads.push(pad);
    off += pad + 2 + optionDataLength(o);
  }
  const total = (off + 7) & ~7;
  if (total > MAX_HEADER_LENGTH) {
    throw outOfRange('options', `options that fit in a ${label} of at most ${MAX_HEADER_LENGTH} bytes`, `${total} bytes`);
  }
  // Zero-filled, so no byte of it can ever be memory that was not written.
  const out = Buffer.alloc(total);
  out[0] = nextHeader;
  out[1] = total / 8 - 1;
  off = 2;
  list.forEach((o, i) => {
    writePadding(out, off, pads[i]);
    off += pads[i];
    const len = optionDataLength(o);
    out[off] = o.type;
    out[off + 1] = len;
    if (o.name === 'unknown') out.set(o.data, off + 2);
    else if (o.name === 'routerAlert') out.writeUInt16BE(o.routerAlert, off + 2);
    else out.writeUInt32BE(o.jumboPayloadLength, off + 2);
    off += 2 + len;
  });
  // Trailing padding is at most 7 bytes, so it never forms an over-long padding run.
  writePadding(out, off, total - off);
  return out;
}

/** Bytes of data of a snapshot option. */
function optionDataLength(o: HopByHopOption): number {
  return o.name === 'unknown' ? o.data.length : o.name === 'routerAlert' ? 2 : 4;
}

function decodeHeader(buf: Uint8Array, opts: DecodeOptions | undefined, label: string): DecodedOptionsHeader {
  if (!(buf instanceof Uint8Array)) throw invalidArgType('buf', 'an instance of Buffer or Uint8Array', buf);
  if (opts !== undefined && (typeof opts !== 'object' || opts === null || Array.isArray(opts))) throw invalidArgType('opts', 'an object', opts);
  if (opts !== undefined) validateOptionKeys(opts, DECODE_KEYS, 'opts');
  // Only a missing value means the default: `strict: null` is a mistake, not "strict".
  const strict = opts?.strict === undefined ? true : opts.strict;
  if (typeof strict !== 'boolean') throw invalidArgType('opts.strict', 'of type boolean', strict);
  if (buf.length < 8) throw malformed(label, 0, `only ${buf.length} bytes; the header is at least 8`);
  const length = (buf[1] + 1) * 8;
  if (length > buf.length) {
    throw malformed(label, 1, `hdr-ext-len ${buf[1]} means ${length} bytes but only ${buf.length} are available`);
  }
  const whole = asBuffer(buf);
  const options: HopByHopOption[] = [];
  const problems: OptionsProblem[] = [];
  const problem = (offset: number, reason: OptionsProblem['reason'], what: string): void => {
    if (strict) throw malformed(label, offset, what);
    problems.push({ offset, reason, message: `${label} at offset ${offset}: ${what}` });
  };
  let padRun = 0; // consecutive padding bytes, Pad1 and PadN together, as Linux counts them
  let padRunReported = false;
  let off = 2;
  while (off < length) {
    const type = buf[off];
    // The same walk as packet parsing and the router-alert tap take (extensions.ts).
    const next = nextOption(buf, off, length);
    if (next < 0) {
      if (off + 1 >= length) throw malformed(label, off, `option type ${type} has no length byte before the end of the header`);
      throw malformed(label, off, `option type ${type} with length ${buf[off + 1]} runs past the end of the ${length}-byte header`);
    }
    if (type === 0) {
      padRun++;
      if (padRun > 7 && !padRunReported) {
        padRunReported = true;
        problem(off, 'padding-too-long', `padding run of more than 7 bytes (RFC 8200 allows at most 7)`);
      }
      off = next;
      continue;
    }
    const len = buf[off + 1];
    if (type === 1) {
      padRun += 2 + len;
      if (padRun > 7 && !padRunReported) {
        padRunReported = true;
        problem(off, 'padding-too-long', `padding run of more than 7 bytes (RFC 8200 allows at most 7)`);
      }
      for (let i = off + 2; i < off + 2 + len; i++) {
        if (buf[i] !== 0) {
          problem(i, 'padding-not-zero', `PadN at offset ${off} has non-zero byte 0x${buf[i].toString(16)}`);
          break;
        }
      }
      off = next;
      continue;
    }
    padRun = 0;
    padRunReported = false;
    const data = whole.subarray(off + 2, off + 2 + len);
    let opt = classify(type, data, buf, off + 2, off);
    if (opt === undefined) {
      if (type === 5) {
        problem(off, 'bad-router-alert', `router alert option with length ${len}; it must be 2 (RFC 2711)`);
      } else if (type === 0xc2) {
        const what = len !== 4 ? `length ${len}; it must be 4` : (off & 3) !== 2 ? 'offset not 4n+2 aligned' : 'a value not over 65535';
        problem(off, 'bad-jumbo-payload', `jumbo payload option with ${what} (RFC 2675)`);
      }
      opt = unknownOption(type, data);
    }
    options.push(opt);
    off = next;
  }
  return { nextHeader: buf[0], length, options, problems };
}

/**
 * Encodes options as a complete hop-by-hop options header: next header, hdr-ext-len, the
 * options in the given order, each preceded by the padding its alignment needs (router
 * alert 2n+0, jumbo payload 4n+2), then padding to a multiple of 8 bytes. Padding is Pad1
 * for a single byte and zero-filled PadN otherwise, never a run over 7 bytes, so Linux
 * accepts it. `encode([routerAlert(5)])` is `00 00 05 02 00 05 01 00`, exactly what glibc's
 * inet6_opt_* functions produce, and what IPV6_HOPOPTS (setsockopt or sendmsg) expects.
 *
 * Raw 'unknown' options are written as given, including deliberately malformed ones.
 *
 * @throws ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE for a bad option; ERR_OUT_OF_RANGE
 *   for an out-of-range field or a header over 2048 bytes. (Linux's IPV6_HOPOPTS accepts
 *   at most 2040 bytes.)
 */
export function encode(options: readonly HopByHopOption[], opts?: EncodeOptions): Buffer {
  return encodeHeader(options, opts, HOP_BY_HOP);
}

/**
 * Decodes a hop-by-hop options header from the start of `buf` (a Buffer or Uint8Array;
 * bytes after the header's own length are ignored, and `length` in the result says how
 * many were used). Never reads past `buf` or past the header: every length byte is checked
 * against what remains. Pad1/PadN are validated and dropped.
 *
 * @throws ERR_INVALID_ARG_TYPE for a non-byte input; ERR_HOPOPTS_MALFORMED (with `offset`)
 *   for a header that is truncated, whose hdr-ext-len exceeds the input, whose option runs
 *   past its end, or (strict mode) that breaks a padding or known-option rule.
 */
export function decode(buf: Uint8Array, opts?: DecodeOptions): DecodedOptionsHeader {
  return decodeHeader(buf, opts, HOP_BY_HOP);
}

/**
 * The same codec for the Destination Options header (next header 60), whose format is
 * identical. Errors name the destination options header and use the same code,
 * 'ERR_HOPOPTS_MALFORMED'.
 */
export const destinationOptions = Object.freeze({
  /** Encodes a destination options header; see {@link encode}. */
  encode(options: readonly HopByHopOption[], opts?: EncodeOptions): Buffer {
    return encodeHeader(options, opts, DESTINATION);
  },
  /** Decodes a destination options header; see {@link decode}. */
  decode(buf: Uint8Array, opts?: DecodeOptions): DecodedOptionsHeader {
    return decodeHeader(buf, opts, DESTINATION);
  },
});

/**
 * The value of the first Router Alert option, or undefined if there is none.
 *
 * @param optionsOrDecoded an options array, or a decoded header (anything with `options`)
 * @throws ERR_INVALID_ARG_TYPE if given neither
 */
export function findRouterAlert(optionsOrDecoded: readonly HopByHopOption[] | { options: readonly HopByHopOption[] }): number | undefined {
  const list = Array.isArray(optionsOrDecoded)
    ? optionsOrDecoded
    : typeof optionsOrDecoded === 'object' && optionsOrDecoded !== null && Array.isArray((optionsOrDecoded as { options?: unknown }).options)
      ? (optionsOrDecoded as { options: readonly HopByHopOption[] }).options
      : undefined;
  if (list === undefined) throw invalidArgType('optionsOrDecoded', 'an array of options or an object with an options array', optionsOrDecoded);
  for (const o of list) {
    if (o && o.name === 'routerAlert') return o.routerAlert;
  }
  return undefined;
}
