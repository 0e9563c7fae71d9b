/**
 * IPv6 address text <-> 16 bytes. Node has no public `inet_pton`/`inet_ntop`, and every
 * packet we parse or build needs both, so these are small hand-written versions of the
 * RFC 4291 §2.2 text forms (parsing) and the RFC 5952 canonical form (formatting).
 */

import { isIPv6 } from 'net';
import { invalidArgType, invalidArgValue, outOfRange } from '../errors';

const COLON = 0x3a;
const DOT = 0x2e;

/** Value of one hex digit, or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * Parses a dotted-quad IPv4 tail s[start..end) into out[o..o+4). Leading zeros are rejected,
 * as Node's isIPv4 does, because some stacks read them as octal.
 */
function parseIpv4Tail(s: string, start: number, end: number, out: Uint8Array, o: number): boolean {
  let i = start;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= end || s.charCodeAt(i) !== DOT) return false;
      i++;
    }
    const first = i;
    let v = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      i++;
    }
    const digits = i - first;
    if (digits === 0 || digits > 3 || v > 255) return false;
    if (digits > 1 && s.charCodeAt(first) === 0x30) return false;
    out[o + part] = v;
  }
  return i === end;
}

/** Parses without throwing; false on any syntax error. Writes 16 bytes at out[o]. */
function parseInto(s: string, out: Uint8Array, o: number): boolean {
  const n = s.length;
  // The longest valid form is 6 four-digit groups plus a full dotted quad: 45 characters.
  if (n < 2 || n > 45) return false;
  let w = 0; // groups written so far
  let gap = -1; // group index where '::' stands, -1 if none
  let i = 0;
  if (s.charCodeAt(0) === COLON) {
    if (s.charCodeAt(1) !== COLON) return false;
    gap = 0;
    i = 2;
    if (n === 2) {
      out.fill(0, o, o + 16);
      return true;
    }
  }
  for (;;) {
    const start = i;
    let v = 0;
    while (i < n) {
      const d = hexValue(s.charCodeAt(i));
      if (d < 0) break;
      v = v * 16 + d;
      i++;
    }
    const len = i - start;
    if (len === 0) return false;
    if (i < n && s.charCodeAt(i) === DOT) {
      // An embedded IPv4 address is always the last 32 bits (RFC 4291 §2.2, form 3).
      if (w > 6) return false;
      if (!parseIpv4Tail(s, start, n, out, o + w * 2)) return false;
      w += 2;
      break;
    }
    if (len > 4 || w === 8) return false;
    out[o + w * 2] = v >> 8;
    out[o + w * 2 + 1] = v & 0xff;
    w++;
    if (i === n) break;
    if (s.charCodeAt(i) !== COLON) return false;
    i++;
    if (i < n && s.charCodeAt(i) === COLON) {
      if (gap >= 0) return false; // '::' may appear only once
      gap = w;
      i++;
      if (i === n) break;
    } else if (i === n) {
      return false; // a single trailing colon
    }
  }
  if (gap < 0) return w === 8;
  // '::' stands for one or more zero groups, so at most 7 groups may be written explicitly.
  if (w > 7) return false;
  const tailBytes = (w - gap) * 2;
  out.copyWithin(o + 16 - tailBytes, o + gap * 2, o + w * 2);
  out.fill(0, o + gap * 2, o + 16 - tailBytes);
  return true;
}

/**
 * True for IPv6 text (without zone) in fe80::/10, the link-local unicast range: its first
 * group has all four digits and begins fe8, fe9, fea or feb ('fe8::1' is 0fe8::1, global).
 */
export function isLinkLocalIpv6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/**
 * True for a multicast address of either family, given as valid text without zone:
 * ff00::/8 (any text form of IPv6 writes the first group first) or 224.0.0.0/4.
 */
export function isMulticast(address: string): boolean {
  if (address.includes(':')) return /^ff[0-9a-f]{2}:/i.test(address);
  const first = Number(address.slice(0, address.indexOf('.')));
  return first >= 224 && first <= 239;
}

/**
 * Writes the 16 bytes of an IPv6 address given as text into `target` at `offset`.
 * Used by the packet builder to avoid an intermediate allocation.
 *
 * @param name argument name used in error messages
 * @throws ERR_INVALID_ARG_TYPE if `address` is not a string;
 *   ERR_INVALID_ARG_VALUE if it is not an IPv6 address or carries a zone (`%eth0`).
 */
export function writeIpv6(address: string, target: Uint8Array, offset: number, name = 'address'): void {
  if (typeof address !== 'string') throw invalidArgType(name, 'of type string', address);
  // Node's own validator is the reference for what counts as an address; our parser must
  // agree with it (the property test checks this), and additionally refuses zone ids, which
  // have no place in a packet header.
  if (address.indexOf('%') !== -1 || !isIPv6(address) || !parseInto(address, target, offset)) {
    throw invalidArgValue(name, address, 'must be an IPv6 address without a zone id');
  }
}

/**
 * Parses an IPv6 address in any RFC 4291 text form (full, `::`-compressed, with an embedded
 * IPv4 tail such as `::ffff:192.0.2.1`) into a new 16-byte Buffer in network order.
 * Zone ids (`fe80::1%eth0`) are rejected: a zone is an interface, not part of the address.
 *
 * @throws ERR_INVALID_ARG_TYPE if `address` is not a string; ERR_INVALID_ARG_VALUE if it
 *   is not a valid IPv6 address.
 */
export function parseIpv6(address: string): Buffer {
  const out = Buffer.allocUnsafe(16);
  writeIpv6(address, out, 0);
  return out;
}

/**
 * Formats 16 bytes at `bytes[offset]` as the RFC 5952 canonical text: lowercase hex, no
 * leading zeros, the longest run (first if tied) of two or more zero groups replaced by
 * `::`, and IPv4-mapped addresses (::ffff:0:0/96) in mixed notation (`::ffff:192.0.2.1`,
 * RFC 5952 §5). The deprecated IPv4-compatible form (::/96) is printed in plain hex so
 * that `::1` stays `::1`.
 *
 * @throws ERR_INVALID_ARG_TYPE if `bytes` is not a Uint8Array; ERR_OUT_OF_RANGE if fewer
 *   than 16 bytes follow `offset`.
 */
export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  if (!(bytes instanceof Uint8Array)) throw invalidArgType('bytes', 'an instance of Buffer or Uint8Array', bytes);
  if (!Number.isInteger(offset) || offset < 0 || offset + 16 > bytes.length) {
    throw outOfRange('offset', `an integer >= 0 with offset + 16 <= ${bytes.length} (the input's length)`, offset);
  }
  const o = offset;
  if (
    bytes[o + 10] === 0xff && bytes[o + 11] === 0xff &&
    bytes[o] === 0 && bytes[o + 1] === 0 && bytes[o + 2] === 0 && bytes[o + 3] === 0 && bytes[o + 4] === 0 &&
    bytes[o + 5] === 0 && bytes[o + 6] === 0 && bytes[o + 7] === 0 && bytes[o + 8] === 0 && bytes[o + 9] === 0
  ) {
    return `::ffff:${bytes[o + 12]}.${bytes[o + 13]}.${bytes[o + 14]}.${bytes[o + 15]}`;
  }
  // Longest run of zero groups; a strict '>' keeps the first of equal runs (RFC 5952 §4.2.3).
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let g = 0; g < 8; g++) {
    if (bytes[o + g * 2] === 0 && bytes[o + g * 2 + 1] === 0) {
      if (runStart < 0) runStart = g;
      const runLen = g - runStart + 1;
      if (runLen > bestLen) {
        bestLen = runLen;
        bestStart = runStart;
      }
    } else {
      runStart = -1;
    }
  }
  // A single zero group is never compressed (RFC 5952 §4.2.2).
  if (bestLen < 2) bestStart = -1;
  let s = '';
  let needColon = false;
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      s += '::';
      g += bestLen - 1;
      needColon = false;
      continue;
    }
    if (needColon) s += ':';
    s += ((bytes[o + g * 2] << 8) | bytes[o + g * 2 + 1]).toString(16);
    needColon = true;
  }
  return s;
}

/**
 * Formats received addresses, recognising the one formatted last (the common case in a
 * stream): then the same string comes back, without formatting or allocating, and
 * `current` is it.
 */
export class AddressCache {
  private a = -1;
  private b = -1;
  private c = -1;
  private d = -1;
  private family = 0;
  /** The address formatted last (without zone). */
  current = '';

  /** The address of a received record: at word `w` of `words`, the Int32 view of `meta`. */
  format(meta: Uint8Array, words: Int32Array, w: number, family: number): string {
    if (family === 4) {
      if (this.changed(words[w], 0, 0, 0, 4)) {
        const at = w * 4;
        this.current = `${meta[at]}.${meta[at + 1]}.${meta[at + 2]}.${meta[at + 3]}`;
      }
      return this.current;
    }
    if (this.changed(words[w], words[w + 1], words[w + 2], words[w + 3], 6)) this.current = formatIpv6(meta, w * 4);
    return this.current;
  }

  /** The IPv6 address at bytes[at..at+16), at any alignment. */
  formatAt(bytes: Uint8Array, at: number): string {
    const word = (i: number): number => bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    if (this.changed(word(at), word(at + 4), word(at + 8), word(at + 12), 6)) this.current = formatIpv6(bytes, at);
    return this.current;
  }

  /** Stores the address's words; true if they differ from the last ones. */
  private changed(a: number, b: number, c: number, d: number, family: number): boolean {
    if (a === this.a && b === this.b && c === this.c && d === this.d && family === this.family) return false;
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    this.family = family;
    return true;
  }
}
