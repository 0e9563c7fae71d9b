/**
 * Fuzz targets: every parser ip6sock applies to bytes or text it did not make itself, fed
 * with random and mutated inputs from a seeded PRNG. What a parser may do with an input:
 *
 * - return a result that passes the target's invariants (re-serializes to the same bytes,
 *   round-trips through the encoder, agrees with Node's own address validator, ...), or
 * - throw an Error whose `code` is one of the target's accepted codes.
 *
 * Anything else (a RangeError from a Buffer read past the end, a TypeError from a missing
 * field, a result that breaks an invariant, a non-Error thrown) is an unexpected outcome and
 * fails the run. Used by test/stress/fuzz.test.ts (a seeded slice on every `npm test`) and by
 * test/stress/fuzz/run.ts (`npm run fuzz`, a million inputs per target).
 * @packageDocumentation
 */
import { isIPv6 } from 'node:net';
import { encode as encodeCbor } from 'cbor-x';
import { decodeGrasp, encodeDiscovery, encodeFlood, encodeResponse, formatValue, type Objective } from '../../../examples/grasp';
import {
  decode as decodeHopByHop,
  destinationOptions,
  encode as encodeHopByHop,
  jumboPayload,
  option,
  routerAlert,
  type HopByHopOption,
} from '../../../lib/codec/hopbyhop';
import * as igmp from '../../../lib/codec/igmp';
import { formatIpv6, parseIpv6 } from '../../../lib/codec/ipv6addr';
import * as mld from '../../../lib/codec/mld';
import { constants } from '../../../lib/core/native';
import { parseMessages, type NetlinkMessage } from '../../../lib/links/rtnetlink';
import { buildIcmpv6Packet, buildUdpPacket, internetChecksum, parsePacket, serializePacket, type Ipv6Packet } from '../../../lib/codec/packet';
import { parseAddressTable } from '../../../lib/links/procnet';
import { parseIpv4 } from '../../../lib/codec/ipv4';

// ---------------------------------------------------------------------------------------
// Seeded randomness

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator): 128 bits of state, passes
 * PractRand, and every run is reproducible from one 32-bit seed.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = seed >>> 0;
    // Mix the seed in before the first output is used.
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** Next 32-bit unsigned value. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 0x100000000) * n);
  }

  /** True with probability p. */
  bool(p = 0.5): boolean {
    return this.u32() / 0x100000000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

// ---------------------------------------------------------------------------------------
// Mutation engine

/** Byte values that sit on the edges parsers branch on: lengths, versions, types. */
const INTERESTING_BYTES = [0, 1, 2, 4, 5, 7, 8, 0x0f, 0x10, 0x11, 0x2b, 0x2c, 0x3a, 0x3b, 0x3c, 0x40, 0x45, 0x60, 0x7f, 0x80, 0x8f, 0x94, 0xc2, 0xfe, 0xff];

/** 16-bit values for length words: empty, tiny, header sizes, signed and unsigned edges. */
const INTERESTING_WORDS = [0, 1, 4, 7, 8, 16, 20, 39, 40, 41, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff];

/**
 * One mutated copy of `input`: 1 to 4 stacked edits (bit flips, byte and word overwrites
 * with edge values, inserts, deletes, truncation, extension, chunk duplication, splicing
 * with another corpus entry). `hot` lists offsets of length fields, which some edits
 * prefer, so "lying length" inputs are common rather than one in thousands.
 */
export function mutateBytes(r: Rng, input: Buffer, corpus: readonly Buffer[], hot: readonly number[] = []): Buffer {
  let b = Buffer.from(input);
  for (let edits = 1 + r.int(4); edits > 0; edits--) {
    const at = (): number => r.int(b.length);
    switch (r.int(12)) {
      case 0:
        if (b.length > 0) b[at()] ^= 1 << r.int(8);
        break;
      case 1:
        if (b.length > 0) b[at()] = r.u32() & 0xff;
        break;
      case 2:
        if (b.length > 0) b[at()] = r.pick(INTERESTING_BYTES);
        break;
      case 3: {
        if (b.length < 2) break;
        const i = r.int(b.length - 1);
        const w = r.bool(0.3) ? (b.length + r.pick([-41, -40, -8, -1, 0, 1, 8])) & 0xffff : r.pick(INTERESTING_WORDS);
        b.writeUInt16BE(w, i);
        break;
      }
      case 4:
      case 5: {
        // Lie in a length field: small deltas and edge values.
        const fields = hot.filter((f) => f < b.length);
        if (fields.length === 0) break;
        const f = r.pick(fields);
        b[f] = r.bool() ? (b[f] + r.pick([1, -1, 2, -2, 8, -8, 0x80])) & 0xff : r.pick(INTERESTING_BYTES);
        break;
      }
      case 6: {
        const i = r.int(b.length + 1);
        b = Buffer.concat([b.subarray(0, i), r.bytes(1 + r.int(16)), b.subarray(i)]);
        break;
      }
      case 7: {
        if (b.length === 0) break;
        const i = at();
        b = Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + 1 + r.int(16)))]);
        break;
      }
      case 8:
        b = b.subarray(0, r.int(b.length + 1));
        break;
      case 9:
        b = Buffer.concat([b, r.bool() ? Buffer.alloc(1 + r.int(64)) : r.bytes(1 + r.int(64))]);
        break;
      case 10: {
        if (b.length === 0) break;
        const from = at();
        const chunk = Buffer.from(b.subarray(from, from + 1 + r.int(32)));
        const to = r.int(b.length + 1);
        b = Buffer.concat([b.subarray(0, to), chunk, b.subarray(to)]);
        break;
      }
      default: {
        const other = r.pick(corpus);
        const cut = r.int(b.length + 1);
        b = Buffer.concat([b.subarray(0, cut), other.subarray(r.int(other.length + 1))]);
        break;
      }
    }
  }
  return b;
}

/** Characters address and /proc text parsers branch on. */
const TEXT_ALPHABET = '0123456789abcdefABCDEFgxyz:::...%%/ \t\n-_';

/** Char-level edits of text inputs: replace, insert, delete, duplicate, truncate, splice. */
export function mutateText(r: Rng, input: string, corpus: readonly string[]): string {
  let s = input;
  for (let edits = 1 + r.int(4); edits > 0; edits--) {
    const i = r.int(s.length + 1);
    switch (r.int(7)) {
      case 0:
        s = s.slice(0, i) + r.pick([...TEXT_ALPHABET]) + s.slice(i + 1);
        break;
      case 1:
        s = s.slice(0, i) + r.pick([...TEXT_ALPHABET]) + s.slice(i);
        break;
      case 2:
        s = s.slice(0, i) + s.slice(i + 1 + r.int(4));
        break;
      case 3:
        s = s.slice(0, i) + s.slice(i, i + 1 + r.int(8)) + s.slice(i);
        break;
      case 4:
        s = s.slice(0, i);
        break;
      case 5:
        // Rare but nasty: non-ASCII, NUL, a long run.
        s = s.slice(0, i) + r.pick(['\0', '\u00e9', '\u{1F600}', '\uFEFF', '0'.repeat(1 + r.int(40)), 'f'.repeat(1 + r.int(40))]) + s.slice(i);
        break;
      default: {
        const other = r.pick(corpus);
        s = s.slice(0, i) + other.slice(r.int(other.length + 1));
        break;
      }
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// Targets

/** What one input did: a parsed result, or a clean (coded) rejection. */
export type Outcome = 'accepted' | 'rejected';

/** A result that a parser returned but should not have: an invariant of the target broke. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

/** One parser under fuzz. `I` is its input type (bytes, text, or bytes and an offset). */
export interface FuzzTarget<I> {
  /** Short name, as the report prints it. */
  readonly name: string;
  /** What is fed to what, for the report. */
  readonly description: string;
  /** Error codes that count as a clean rejection. */
  readonly accepts: readonly string[];
  /** Valid inputs made with the library's own encoders (or the kernel's format), to mutate. */
  corpus(r: Rng): I[];
  /** One input: mostly a mutation of a corpus entry, sometimes fresh noise. */
  generate(r: Rng, corpus: readonly I[]): I;
  /** Runs the parser and checks its result; throws InvariantError when a check fails. */
  run(input: I): Outcome;
  /** The input as text for a failure report (hex for bytes). */
  show(input: I): string;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new InvariantError(what);
}

const hex = (b: Buffer): string => b.toString('hex');

/** A random IPv6 address, with zero runs and IPv4-mapped forms common. */
export function randomAddress(r: Rng): string {
  const b = r.bytes(16);
  // Zero groups make the '::' forms (and their edge cases) common.
  for (let g = 0; g < 8; g++) if (r.bool(0.4)) b.writeUInt16BE(0, g * 2);
  if (r.bool(0.1)) {
    b.fill(0, 0, 10);
    b.writeUInt16BE(0xffff, 10);
  }
  return formatIpv6(b);
}

/** A random hop-by-hop option (router alert, jumbo, or an unknown TLV). */
export function randomOption(r: Rng, allowJumbo: boolean): HopByHopOption {
  const k = r.int(allowJumbo ? 5 : 4);
  if (k === 0) return routerAlert(r.bool() ? r.int(3) : r.int(0x10000));
  if (k === 4) return jumboPayload(0x10000 + r.int(0x7fffffff));
  let type: number;
  do type = r.int(256);
  while (type === 0 || type === 1 || type === 5 || type === 0xc2);
  return option(type, r.bytes(r.bool(0.03) ? r.int(256) : r.int(12)));
}

/** Zero to five random options. */
export function randomOptions(r: Rng, allowJumbo: boolean): HopByHopOption[] {
  const out: HopByHopOption[] = [];
  for (let n = r.int(6); n > 0; n--) out.push(randomOption(r, allowJumbo));
  return out;
}

/** Non-strict decoding returns misaligned named options as 'unknown'; compare through option(). */
function normalize(options: readonly HopByHopOption[]): HopByHopOption[] {
  return options.map((o) => (o.name === 'unknown' ? option(o.type, o.data) : o));
}

function sameOptions(a: readonly HopByHopOption[], b: readonly HopByHopOption[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    if (x.name !== y.name || x.type !== y.type) return false;
    if (x.name === 'routerAlert') return x.routerAlert === (y as typeof x).routerAlert;
    if (x.name === 'jumboPayload') return x.jumboPayloadLength === (y as typeof x).jumboPayloadLength;
    return x.data.equals((y as typeof x).data);
  });
}

/** Offsets of the length bytes of an options header's TLVs, found by a tolerant walk. */
function optionLengthOffsets(b: Buffer): number[] {
  const hot = [1];
  let off = 2;
  const end = Math.min(b.length, (b[1] + 1) * 8);
  while (off + 1 < end) {
    if (b[off] === 0) {
      off++;
      continue;
    }
    hot.push(off + 1);
    off += 2 + b[off + 1];
  }
  return hot;
}

/** A bytes input with its mode bit: strict or lenient decoding. */
export interface ModedBytes {
  bytes: Buffer;
  strict: boolean;
}

function optionsTarget(name: string, dest: boolean): FuzzTarget<ModedBytes> {
  const codec = dest ? destinationOptions : { encode: encodeHopByHop, decode: decodeHopByHop };
  return {
    name,
    description: `${dest ? 'destination' : 'hop-by-hop'} options header (RFC 8200 §4.3): decode strict and lenient; whatever decodes must re-encode and decode to the same options`,
    accepts: ['ERR_HOPOPTS_MALFORMED'],
    corpus(r) {
      const out: ModedBytes[] = [];
      for (let i = 0; i < 256; i++) out.push({ bytes: codec.encode(randomOptions(r, !dest), { nextHeader: r.pick([17, 58, 59, 60, 43, r.int(256)]) }), strict: true });
      return out;
    },
    generate(r, corpus) {
      const strict = r.bool(0.6);
      if (r.bool(0.08)) {
        const b = r.bytes(r.int(72));
        if (b.length > 1 && r.bool(0.7)) b[1] = r.int(Math.max(1, b.length >> 3));
        return { bytes: b, strict };
      }
      const base = r.pick(corpus).bytes;
      return { bytes: mutateBytes(r, base, corpus.map((c) => c.bytes), optionLengthOffsets(base)), strict };
    },
    run({ bytes, strict }) {
      const d = codec.decode(bytes, { strict });
      check(d.length % 8 === 0 && d.length >= 8 && d.length <= bytes.length, `length ${d.length} for ${bytes.length} input bytes`);
      check(d.nextHeader === bytes[0], 'nextHeader is not byte 0');
      check(!strict || d.problems.length === 0, 'strict decode reported problems instead of throwing');
      for (const p of d.problems) check(Number.isInteger(p.offset) && p.offset >= 0 && p.offset < d.length, `problem offset ${p.offset} outside the header`);
      let again: Buffer;
      try {
        again = codec.encode(d.options, { nextHeader: d.nextHeader });
      } catch (err) {
        // Re-aligning misaligned options (lenient mode) adds padding, which can push a full
        // 2048-byte header over the limit; that is the only refusal allowed.
        if ((err as { code?: unknown }).code === 'ERR_OUT_OF_RANGE') return 'accepted';
        throw err;
      }
      const redecoded = codec.decode(again, { strict: false });
      check(redecoded.problems.length === 0 || !strict, 're-encoded header has problems');
      check(sameOptions(normalize(redecoded.options), normalize(d.options)), 'options changed through encode/decode');
      return 'accepted';
    },
    show: ({ bytes, strict }) => `${hex(bytes)} strict=${strict}`,
  };
}

/**
 * A random well-formed extension header: destination options, routing (types 0/2/3/4),
 * fragment, AH or mobility. `fragments: 'atomic'` makes only atomic fragment headers
 * (offset 0, M 0), which leave the packet whole.
 */
export function randomExtension(r: Rng, fragments: 'atomic' | 'any'): { type: number; raw: Buffer } {
  const k = r.int(5);
  if (k === 0) return { type: 60, raw: destinationOptions.encode(randomOptions(r, false)) };
  if (k === 1) {
    const rtype = r.pick([0, 2, 3, 4]);
    const count = rtype === 2 ? 1 : rtype === 3 ? 0 : 1 + r.int(3);
    const raw = Buffer.concat([Buffer.alloc(8), r.bytes(count * 16 + (rtype === 3 ? 8 * r.int(3) : 0))]);
    raw[1] = raw.length / 8 - 1;
    raw[2] = rtype;
    raw[3] = r.int(count + 1);
    if (rtype === 4) raw[4] = count - 1;
    return { type: 43, raw };
  }
  if (k === 2) {
    const raw = r.bytes(8);
    raw[1] = 0;
    if (fragments === 'any' && r.bool(0.3)) raw[3] |= 1; // M = 1
    else if (fragments === 'any' && r.bool(0.2)) raw[2] |= 1; // a non-zero offset
    else {
      raw[2] = 0;
      raw[3] = 0;
    }
    return { type: 44, raw };
  }
  if (k === 3) {
    const len = r.pick([1, 2, 4, 6]);
    const raw = r.bytes((len + 2) * 4);
    raw[1] = len;
    return { type: 51, raw };
  }
  const raw = r.bytes(8 * (1 + r.int(3)));
  raw[1] = raw.length / 8 - 1;
  return { type: 135, raw };
}

/** A random valid packet: fixed header, extension chain, UDP / ICMPv6 / other upper layer. */
function randomPacket(r: Rng): Buffer {
  const kind = r.int(6);
  const hopByHop = r.bool(0.5) ? randomOptions(r, false) : undefined;
  const common = { source: randomAddress(r), destination: randomAddress(r), hopLimit: r.int(256), trafficClass: r.int(256), flowLabel: r.int(0x100000), ...(hopByHop ? { hopByHop } : {}) };
  if (kind === 0) return buildUdpPacket({ ...common, sourcePort: r.int(0x10000), destinationPort: r.int(0x10000), data: r.bytes(r.int(64)) });
  if (kind === 1) return buildIcmpv6Packet({ ...common, type: r.pick([1, 2, 3, 4, 128, 129, 130, 131, 143, r.int(256)]), code: r.int(4), body: r.bytes(r.int(64)) });
  // Hand-made chains of every extension header type.
  const extensions: Ipv6Packet['extensions'] = [];
  for (let n = 1 + r.int(4); n > 0; n--) {
    const { type, raw } = randomExtension(r, 'any');
    extensions.push({ type, offset: 0, length: raw.length, raw });
  }
  const protocol = r.pick([17, 58, 6, 59, 50]);
  const pkt: Ipv6Packet = {
    header: { version: 6, trafficClass: common.trafficClass, flowLabel: common.flowLabel, payloadLength: 0, nextHeader: 0, hopLimit: common.hopLimit, source: common.source, destination: common.destination },
    extensions,
    protocol,
    payload: r.bytes(protocol === 17 ? 8 + r.int(40) : protocol === 58 ? 4 + r.int(40) : r.int(40)),
  };
  if (hopByHop) pkt.hopByHop = { nextHeader: 0, length: 0, offset: 40, options: hopByHop, problems: [], raw: Buffer.alloc(0) };
  if (kind === 2 && protocol === 17) pkt.payload.writeUInt16BE(pkt.payload.length, 4);
  return serializePacket(pkt);
}

/** Offsets of the length fields of a packet: payload length, each extension's length, UDP length. */
function packetLengthOffsets(b: Buffer): number[] {
  const hot = [4, 5];
  let nh = b.length > 6 ? b[6] : 59;
  let off = 40;
  while (off + 2 <= b.length && [0, 43, 44, 51, 60, 135].includes(nh)) {
    hot.push(off + 1);
    const len = nh === 44 ? 8 : nh === 51 ? (b[off + 1] + 2) * 4 : (b[off + 1] + 1) * 8;
    nh = b[off];
    off += len;
  }
  if (nh === 17) hot.push(off + 4, off + 5);
  return hot;
}

function packetTarget(): FuzzTarget<ModedBytes> {
  return {
    name: 'packet.parsePacket',
    description: 'whole IPv6 packets (header, extension chain, UDP/ICMPv6, jumbograms): parse strict and lenient; whatever parses must serialize back to the same bytes',
    accepts: ['ERR_PACKET_MALFORMED'],
    corpus(r) {
      const out: ModedBytes[] = [];
      for (let i = 0; i < 256; i++) out.push({ bytes: randomPacket(r), strict: true });
      return out;
    },
    generate(r, corpus) {
      const strict = r.bool(0.6);
      if (r.bool(0.08)) {
        const b = r.bytes(r.int(160));
        if (b.length > 0 && r.bool(0.9)) b[0] = 0x60 | (b[0] & 0x0f);
        if (b.length > 6) b[6] = r.pick([0, 17, 43, 44, 50, 51, 58, 59, 60, 135, b[6]]);
        if (b.length > 5 && r.bool(0.7)) b.writeUInt16BE(Math.max(0, b.length - 40 - r.int(3)), 4);
        return { bytes: b, strict };
      }
      const base = r.pick(corpus).bytes;
      return { bytes: mutateBytes(r, base, corpus.map((c) => c.bytes), packetLengthOffsets(base)), strict };
    },
    run({ bytes, strict }) {
      const p = parsePacket(bytes, { strict });
      const jumbo = p.hopByHop?.options.find((o) => o.name === 'jumboPayload');
      const end = 40 + (jumbo !== undefined && jumbo.name === 'jumboPayload' ? jumbo.jumboPayloadLength : p.header.payloadLength);
      check(end <= bytes.length, `packet end ${end} past the ${bytes.length} input bytes`);
      check(isIPv6(p.header.source) && isIPv6(p.header.destination), 'addresses do not format as IPv6');
      for (const e of p.extensions) check(e.offset >= 40 && e.offset + e.length <= end && e.raw.length === e.length, `extension ${e.type} at ${e.offset} outside the packet`);
      // Anything parsePacket accepts, serializePacket must rebuild byte for byte.
      check(serializePacket(p).equals(bytes.subarray(0, end)), 'serializePacket(parsePacket(x)) differs from x');
      return 'accepted';
    },
    show: ({ bytes, strict }) => `${hex(bytes)} strict=${strict}`,
  };
}

/** Address text in every RFC 4291 form, to mutate. */
function addressForms(r: Rng): string[] {
  const fixed = ['::', '::1', '1::', '2001:db8::1', 'fe80::1', 'ff02::13', '::ffff:192.0.2.1', '64:ff9b::192.0.2.33', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:1.2.3.4', '2001:DB8:0:0:8:800:200C:417A', '0:0:0:0:0:0:0:0', 'fe80::1%eth0', '::ffff:0:0'];
  const out = [...fixed];
  for (let i = 0; i < 200; i++) {
    const bytes = parseIpv6(randomAddress(r));
    // Uncompressed, with leading zeros, upper case: forms formatIpv6 never produces.
    const groups = Array.from({ length: 8 }, (_, g) => bytes.readUInt16BE(g * 2).toString(16).padStart(r.bool() ? 4 : 1, '0'));
    const text = r.bool() ? groups.join(':') : formatIpv6(bytes);
    out.push(r.bool(0.2) ? text.toUpperCase() : text);
  }
  return out;
}

function parseIpv6Target(): FuzzTarget<string> {
  return {
    name: 'parseIpv6',
    description: "IPv6 address text: parseIpv6 must accept exactly what node:net's isIPv6 accepts (zones refused), and formatIpv6 of the result must parse back to the same bytes",
    accepts: ['ERR_INVALID_ARG_VALUE'],
    corpus: addressForms,
    generate(r, corpus) {
      if (r.bool(0.05)) return Array.from({ length: r.int(48) }, () => r.pick([...TEXT_ALPHABET])).join('');
      return mutateText(r, r.pick(corpus), corpus);
    },
    run(text) {
      const valid = isIPv6(text) && !text.includes('%');
      let bytes: Buffer;
      try {
        bytes = parseIpv6(text);
      } catch (err) {
        check(!valid, `refused an address node:net accepts (${(err as Error).message})`);
        throw err;
      }
      check(valid, 'accepted text node:net refuses');
      check(bytes.length === 16, `${bytes.length} bytes`);
      const canonical = formatIpv6(bytes);
      check(parseIpv6(canonical).equals(bytes), `formatIpv6 gave ${canonical}, which parses to other bytes`);
      return 'accepted';
    },
    show: (text) => JSON.stringify(text),
  };
}

/** Bytes and a (possibly bad) offset for formatIpv6. */
export interface BytesAt {
  bytes: Buffer;
  offset: number;
}

function formatIpv6Target(): FuzzTarget<BytesAt> {
  return {
    name: 'formatIpv6',
    description: 'any 16 bytes at any offset (bad offsets included): the RFC 5952 text must parse back to the same bytes and be its own canonical form',
    accepts: ['ERR_OUT_OF_RANGE'],
    corpus(r) {
      return Array.from({ length: 64 }, () => ({ bytes: parseIpv6(randomAddress(r)), offset: 0 }));
    },
    generate(r, corpus) {
      const base = r.pick(corpus).bytes;
      const bytes = r.bool(0.7) ? mutateBytes(r, Buffer.concat([r.bytes(r.int(4)), base, r.bytes(r.int(4))]), corpus.map((c) => c.bytes)) : r.bytes(r.int(40));
      const offset = r.bool(0.9) ? r.int(Math.max(1, bytes.length - 15)) : r.pick([-1, -0, 0.5, NaN, Infinity, bytes.length - 15, bytes.length, 2 ** 32]);
      return { bytes, offset };
    },
    run({ bytes, offset }) {
      const text = formatIpv6(bytes, offset);
      check(isIPv6(text), `${text} is not an IPv6 address`);
      check(parseIpv6(text).equals(bytes.subarray(offset, offset + 16)), `${text} parses to other bytes`);
      check(formatIpv6(parseIpv6(text)) === text, `${text} is not canonical`);
      return 'accepted';
    },
    show: ({ bytes, offset }) => `${hex(bytes)} offset=${offset}`,
  };
}

function randomObjective(r: Rng): Objective {
  const value = r.pick<unknown>([null, r.int(1000), `v${r.int(1000)}`, [1, 2, 3], { k: 'v' }, true, r.bytes(r.int(8))]);
  return { name: r.pick(['EX1', 'SRV.est', 'AN_ACP', `obj${r.int(100)}`, '']), flags: r.int(16), loopCount: r.int(256), value };
}

function graspTarget(): FuzzTarget<Buffer> {
  return {
    name: 'examples/grasp decodeGrasp',
    description: 'GRASP messages (RFC 8990) as CBOR: M_FLOOD, M_DISCOVERY, M_RESPONSE and arbitrary CBOR, through cbor-x and the message checks; every value printable',
    accepts: ['ERR_GRASP_MALFORMED'],
    corpus(r) {
      const out: Buffer[] = [];
      for (let i = 0; i < 200; i++) {
        const initiator = randomAddress(r);
        const k = r.int(4);
        if (k === 0) out.push(encodeFlood(r.u32(), initiator, r.u32(), Array.from({ length: 1 + r.int(3) }, () => randomObjective(r))));
        else if (k === 1) out.push(encodeDiscovery(r.u32(), initiator, randomObjective(r)));
        else if (k === 2) out.push(encodeResponse(r.u32(), initiator, r.u32(), { address: randomAddress(r), protocol: r.pick([6, 17]), port: r.int(0x10000) }, randomObjective(r)));
        else out.push(encodeCbor([r.int(12), r.u32(), r.bytes(r.pick([0, 4, 16, 17])), r.int(100), []]));
      }
      return out;
    },
    generate(r, corpus) {
      if (r.bool(0.05)) return r.bytes(r.int(64));
      return mutateBytes(r, r.pick(corpus), corpus, [0, 1, 2]);
    },
    run(bytes) {
      const m = decodeGrasp(bytes);
      check(['noop', 'discovery', 'response', 'flood', 'other'].includes(m.type), `unknown type ${m.type}`);
      if (m.type === 'discovery' || m.type === 'response' || m.type === 'flood') {
        check(isIPv6(m.initiator), `initiator ${m.initiator}`);
        check(Number.isInteger(m.sessionId) && m.sessionId >= 0 && m.sessionId <= 0xffffffff, 'session id not u32');
      }
      if (m.type === 'flood') check(m.objectives.length > 0, 'flood without objectives');
      // The daemon logs every value it accepts: that must never throw (big integers, cycles).
      const values = m.type === 'flood' ? m.objectives.map((o) => o.objective.value) : m.type === 'discovery' || m.type === 'response' ? [m.objective?.value] : [];
      for (const v of values) check(typeof formatValue(v) === 'string', 'value not printable');
      return 'accepted';
    },
    show: hex,
  };
}

// ---------------------------------------------------------------------------------------
// MLD (lib/codec/mld.ts) and IGMP (lib/codec/igmp.ts): queries, reports, group records

/** Records of every type (some unknown), with a few sources and sometimes aux data. */
function randomRecords(r: Rng, address: () => string, groups: readonly string[]): mld.GroupRecordInput[] {
  return Array.from({ length: r.int(4) }, () => ({
    type: r.bool(0.9) ? 1 + r.int(6) : r.int(256),
    group: r.bool(0.8) ? r.pick(groups) : address(),
    sources: Array.from({ length: r.int(3) }, address),
    auxData: r.bool(0.1) ? r.bytes(4 * (1 + r.int(2))) : undefined,
  }));
}

/** Query fields both protocols share, within the ranges their codes express. */
function randomQueryFields(r: Rng, maxDelay: number, address: () => string): Record<string, unknown> {
  return {
    maxResponseDelay: r.bool() ? r.int(maxDelay + 1) : r.pick([0, 1000, 10000, maxDelay]),
    suppressRouterProcessing: r.bool(),
    robustness: r.int(8),
    queryInterval: r.int(mld.MAX_QUERY_INTERVAL + 1),
    sources: Array.from({ length: r.int(3) }, address),
  };
}

/** Every kind of MLD message, made by the encoder. */
function randomMldMessage(r: Rng): Buffer {
  const address = (): string => randomAddress(r);
  const groups = ['ff02::13', 'ff05::1:3', 'ff3e::8000:1', 'ff12::5000'];
  switch (r.int(5)) {
    case 0:
      return mld.encode({ kind: 'report', records: randomRecords(r, address, groups) });
    case 1:
      return mld.encode({ kind: 'query', group: r.bool() ? '::' : r.pick(groups), ...randomQueryFields(r, mld.MAX_V2_RESPONSE_DELAY, address) });
    case 2:
      return mld.encode({ kind: 'query', version: 1, maxResponseDelay: r.int(0x10000), group: r.pick(['::', ...groups]) });
    default:
      return mld.encode({ kind: r.bool() ? 'report' : 'done', version: 1, group: r.pick(groups) });
  }
}

/** Offsets of the count and length fields of an encoded MLD or IGMP message. */
function groupMessageLengthOffsets(b: Buffer, reportType: number, addressSize: number): number[] {
  if (b[0] !== reportType) return [1, 2 * addressSize - 6, 2 * addressSize - 5];
  const hot = [6, 7];
  for (let at = 8; at + 4 <= b.length; ) {
    hot.push(at + 1, at + 2, at + 3);
    at += 4 + addressSize + b.readUInt16BE(at + 2) * addressSize + b[at + 1] * 4;
  }
  return hot;
}

/** The same input at the start of a larger buffer of junk: the decoder must not see the junk. */
function inJunk(bytes: Buffer): Buffer {
  return Buffer.concat([bytes, Buffer.alloc(64, 0xa5)]).subarray(0, bytes.length);
}

function mldTarget(): FuzzTarget<Buffer> {
  return {
    name: 'mld.decode',
    description: 'MLDv1/v2 queries and reports (RFC 2710, RFC 3810): record counts, source counts, aux lengths and query lengths that lie',
    accepts: ['ERR_MLD_MALFORMED'],
    corpus(r) {
      return Array.from({ length: 128 }, () => randomMldMessage(r));
    },
    generate(r, corpus) {
      if (r.bool(0.05)) return Buffer.concat([Buffer.from([r.pick([130, 131, 132, 143])]), r.bytes(r.int(96))]);
      const base = r.pick(corpus);
      return mutateBytes(r, base, corpus, groupMessageLengthOffsets(base, mld.types.V2_REPORT, 16));
    },
    run(bytes) {
      const m = mld.decode(bytes);
      check(m.type === bytes[0] && m.code === bytes[1] && m.checksum === bytes.readUInt16BE(2), 'header fields differ from the bytes');
      const addresses = m.kind === 'report' && m.version === 2 ? m.records.flatMap((rec) => [rec.group, ...rec.sources]) : [m.group, ...(m.kind === 'query' && m.version === 2 ? m.sources : [])];
      check(addresses.every((a) => isIPv6(a)), 'a group or source is not an IPv6 address');
      if (m.kind === 'report' && m.version === 2) check(m.records.length === bytes.readUInt16BE(6), `${m.records.length} records, header says ${bytes.readUInt16BE(6)}`);
      if (m.kind === 'query') check(m.version === (bytes.length === 24 ? 1 : 2), `a query of ${bytes.length} bytes decoded as version ${m.version}`);
      // Re-encoded and decoded again, the message is the same (the checksum is left to the kernel).
      check(JSON.stringify(mld.decode(mld.encode(m))) === JSON.stringify({ ...m, checksum: 0 }), 'does not survive encode and decode');
      check(JSON.stringify(mld.decode(inJunk(bytes))) === JSON.stringify(m), 'decodes differently with other bytes after the input');
      return 'accepted';
    },
    show: hex,
  };
}

/** Every kind of IGMP message, made by the encoder. */
function randomIgmpMessage(r: Rng): Buffer {
  const address = (): string => [r.int(256), r.int(256), r.int(256), r.int(256)].join('.');
  const groups = ['224.0.1.1', '232.1.1.1', '239.255.255.250', '224.0.0.251'];
  switch (r.int(6)) {
    case 0:
    case 1:
      return igmp.encode({ kind: 'report', records: randomRecords(r, address, groups) });
    case 2:
      return igmp.encode({ kind: 'query', group: r.bool() ? '0.0.0.0' : r.pick(groups), ...randomQueryFields(r, igmp.MAX_V3_RESPONSE_DELAY, address) });
    case 3:
      return r.bool() ? igmp.encode({ kind: 'query', version: 1 }) : igmp.encode({ kind: 'query', version: 2, maxResponseDelay: 100 * (1 + r.int(255)), group: r.pick(['0.0.0.0', ...groups]) });
    default:
      return r.bool() ? igmp.encode({ kind: 'leave', group: r.pick(groups) }) : igmp.encode({ kind: 'report', version: r.bool() ? 1 : 2, group: r.pick(groups) });
  }
}

/** The IGMP message after an IPv4 header with Router Alert, as a raw IPv4 socket receives it. */
function inIpv4Packet(r: Rng, message: Buffer): Buffer {
  const options = r.bool(0.8) ? Buffer.from([0x94, 4, 0, 0]) : Buffer.alloc(0);
  const head = Buffer.alloc(20);
  head[0] = 0x40 | ((20 + options.length) / 4);
  head[1] = 0xc0;
  head.writeUInt16BE(20 + options.length + message.length, 2);
  head.writeUInt16BE(0x4000, 6);
  head[8] = 1;
  head[9] = 2;
  Buffer.from([192, 0, 2, 1 + r.int(254), 224, 0, 0, 22]).copy(head, 12);
  return Buffer.concat([head, options, message]);
}

function igmpTarget(): FuzzTarget<Buffer> {
  return {
    name: 'igmp.stripIpv4Header + igmp.decode',
    description: 'IPv4 packets carrying IGMPv1/v2/v3 (RFC 2236, RFC 3376): header lengths, record counts, source counts, aux lengths and checksums that lie',
    accepts: ['ERR_IGMP_MALFORMED'],
    corpus(r) {
      return Array.from({ length: 128 }, () => inIpv4Packet(r, randomIgmpMessage(r)));
    },
    generate(r, corpus) {
      if (r.bool(0.05)) return inIpv4Packet(r, r.bytes(r.int(64)));
      const base = r.pick(corpus);
      const start = (base[0] & 0x0f) * 4;
      const hot = [0, 2, 3, 9, ...groupMessageLengthOffsets(base.subarray(start), igmp.types.V3_MEMBERSHIP_REPORT, 4).map((o) => start + o)];
      return mutateBytes(r, base, corpus, hot);
    },
    run(packet) {
      const bytes = igmp.stripIpv4Header(packet);
      check(bytes.length === packet.readUInt16BE(2) - (packet[0] & 0x0f) * 4, 'the message is not what the header says');
      const m = igmp.decode(bytes);
      check(m.type === bytes[0] && m.checksum === bytes.readUInt16BE(2), 'header fields differ from the bytes');
      check(m.checksumValid === (internetChecksum([bytes]) === 0), 'checksumValid disagrees with the checksum');
      const addresses = m.kind === 'report' && m.version === 3 ? m.records.flatMap((rec) => [rec.group, ...rec.sources]) : [m.group, ...(m.kind === 'query' && m.version === 3 ? m.sources : [])];
      check(addresses.every((a) => /^(\d{1,3})(\.\d{1,3}){3}$/.test(a) && a.split('.').every((p) => Number(p) <= 255)), 'a group or source is not an IPv4 address');
      if (m.kind === 'report' && m.version === 3) check(m.records.length === bytes.readUInt16BE(6), `${m.records.length} records, header says ${bytes.readUInt16BE(6)}`);
      // Re-encoded and decoded again, the message is the same, with a checksum that verifies.
      const again = igmp.decode(igmp.encode(m));
      check(JSON.stringify({ ...again, checksum: m.checksum, checksumValid: m.checksumValid }) === JSON.stringify(m) && again.checksumValid, 'does not survive encode and decode');
      check(JSON.stringify(igmp.decode(inJunk(bytes))) === JSON.stringify(m), 'decodes differently with other bytes after the input');
      return 'accepted';
    },
    show: hex,
  };
}

/** /proc/net/anycast6 and /proc/net/igmp6 text in the kernel's format. */
function procTable(r: Rng): string {
  const lines: string[] = [];
  for (let n = r.int(6); n > 0; n--) {
    const index = r.pick([1, 2, 3, 10, 11, r.int(100000)]);
    const name = r.pick(['lo', 'eth0', 'a0', 'veth-x.1', 'br0']);
    const address = hex(parseIpv6(randomAddress(r)));
    const users = r.int(10);
    lines.push(r.bool() ? `${String(index).padEnd(4)} ${name.padEnd(15)} ${address} ${String(users).padStart(5)}` : `${index}    ${name}  ${address}     ${users} ${r.u32().toString(16).padStart(8, '0').toUpperCase()} ${r.int(2)}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

function procTarget(): FuzzTarget<string> {
  return {
    name: 'procnet parseAddressTable',
    description: '/proc/net/anycast6 and /proc/net/igmp6 text: lines that do not parse are skipped; every entry returned must be well-formed',
    accepts: [],
    corpus(r) {
      return Array.from({ length: 128 }, () => procTable(r));
    },
    generate(r, corpus) {
      if (r.bool(0.05)) return Array.from({ length: r.int(120) }, () => r.pick([...TEXT_ALPHABET])).join('');
      return mutateText(r, r.pick(corpus), corpus);
    },
    run(text) {
      const entries = parseAddressTable(text);
      check(entries.length <= text.split('\n').length, 'more entries than lines');
      for (const e of entries) {
        check(Number.isSafeInteger(e.interface.index) && e.interface.index >= 1 && e.interface.index <= 0x7fffffff, `interface index ${e.interface.index}`);
        check(e.interface.name.length > 0 && !/\s/.test(e.interface.name), `interface name ${JSON.stringify(e.interface.name)}`);
        check(isIPv6(e.address), `address ${e.address}`);
        check(Number.isSafeInteger(e.users) && e.users >= 0, `users ${e.users}`);
      }
      return entries.length > 0 ? 'accepted' : 'rejected';
    },
    show: (text) => JSON.stringify(text),
  };
}

function randomIpv4Packet(r: Rng): Buffer {
  const options: Buffer[] = [];
  if (r.bool(0.7)) options.push(Buffer.from([148, 4, r.int(256), r.int(256)]));
  for (let n = r.int(3); n > 0; n--) options.push(r.bool() ? Buffer.from([1]) : Buffer.concat([Buffer.from([r.pick([7, 68, 130, 131, 137]), 0]), r.bytes(r.int(6))]));
  for (const o of options) if (o.length > 1) o[1] = o.length;
  let opt = Buffer.concat(options);
  opt = Buffer.concat([opt, Buffer.alloc((4 - (opt.length % 4)) % 4)]).subarray(0, 40);
  const payload = r.bytes(r.int(48));
  const head = Buffer.alloc(20);
  head[0] = 0x40 | ((20 + opt.length) / 4);
  head[1] = r.int(256);
  head.writeUInt16BE(20 + opt.length + payload.length, 2);
  head.writeUInt16BE(r.int(0x10000), 4);
  head.writeUInt16BE(r.int(0x10000) & 0x7fff, 6);
  head[8] = r.int(256);
  head[9] = r.pick([1, 2, 17, 46, r.int(256)]);
  r.bytes(8).copy(head, 12);
  return Buffer.concat([head, opt, payload]);
}

function ipv4Target(): FuzzTarget<Buffer> {
  return {
    name: 'routeralert parseIpv4',
    description: 'IPv4 headers and options as an IPv4 RouterAlertSocket receives them (RFC 791, RFC 2113 router alert)',
    accepts: ['ERR_PACKET_MALFORMED'],
    corpus(r) {
      return Array.from({ length: 128 }, () => randomIpv4Packet(r));
    },
    generate(r, corpus) {
      if (r.bool(0.05)) return r.bytes(r.int(80));
      return mutateBytes(r, r.pick(corpus), corpus, [0, 2, 3, 21, 23, 25]);
    },
    run(bytes) {
      const p = parseIpv4(bytes);
      const h = p.header;
      check(h.headerLength >= 20 && h.headerLength <= 60 && h.headerLength <= h.totalLength && h.totalLength <= bytes.length, 'header or total length out of bounds');
      check(h.options.length === h.headerLength - 20 && p.payload.length === h.totalLength - h.headerLength, 'options or payload length wrong');
      check(p.routerAlert === undefined || (Number.isInteger(p.routerAlert) && p.routerAlert >= 0 && p.routerAlert <= 0xffff), `router alert ${p.routerAlert}`);
      return 'accepted';
    },
    show: hex,
  };
}

// ---------------------------------------------------------------------------------------
// rtnetlink datagrams (lib/links/rtnetlink.ts parseMessages, what the interface watcher reads)

/** One rtattr: length word, type word (nested / byte-order bits sometimes set), payload, padding to 4. */
function rtattr(r: Rng, type: number, payload: Buffer): Buffer {
  const c = constants();
  const head = Buffer.alloc(c['sizeof(rtattr)']);
  head.writeUInt16LE(head.length + payload.length, c['rtattr.rta_len']);
  head.writeUInt16LE(type | (r.bool(0.1) ? 0x8000 : 0) | (r.bool(0.1) ? 0x4000 : 0), c['rtattr.rta_type']);
  return Buffer.concat([head, payload, Buffer.alloc((4 - (payload.length % 4)) % 4)]);
}

/** One nlmsghdr-framed message of `type` with `body`; `pad` adds the alignment padding after it. */
function nlmsg(r: Rng, type: number, body: Buffer, pad = true): Buffer {
  const c = constants();
  const head = Buffer.alloc(c.NLMSG_HDRLEN);
  head.writeUInt32LE(head.length + body.length, c['nlmsghdr.nlmsg_len']);
  head.writeUInt16LE(type, c['nlmsghdr.nlmsg_type']);
  head.writeUInt16LE(r.pick([0, c.NLM_F_MULTI, c.NLM_F_MULTI | c.NLM_F_DUMP_INTR, r.int(0x10000)]), c['nlmsghdr.nlmsg_flags']);
  head.writeUInt32LE(r.u32(), c['nlmsghdr.nlmsg_seq']);
  head.writeUInt32LE(r.u32(), c['nlmsghdr.nlmsg_pid']);
  return Buffer.concat([head, body, pad ? Buffer.alloc((4 - (body.length % 4)) % 4) : Buffer.alloc(0)]);
}

/** A random message as the kernel sends them (links, addresses, done, error), or of a type the parser skips. */
function randomNetlinkMessage(r: Rng): Buffer {
  const c = constants();
  const attrs = (list: Buffer[]): Buffer => Buffer.concat(list);
  const junkAttrs = (): Buffer[] => Array.from({ length: r.int(4) }, () => rtattr(r, r.int(60), r.bytes(r.pick([0, 1, 4, 8, 16, r.int(64)]))));
  switch (r.int(6)) {
    case 0:
    case 1: {
      const info = Buffer.alloc(c['sizeof(ifinfomsg)']);
      info[c['ifinfomsg.ifi_family']] = r.bool(0.85) ? c.AF_UNSPEC : r.pick([c.AF_INET6, 7, r.int(256)]);
      info.writeInt32LE(r.pick([1, 2, 10, 0x7fffffff, -1, r.int(100000)]), c['ifinfomsg.ifi_index']);
      info.writeUInt32LE(r.u32(), c['ifinfomsg.ifi_flags']);
      const name = Buffer.from(`${r.pick(['eth', 'veth', 'br', 'wg', 'é'])}${r.int(100)}${r.bool(0.9) ? '\0' : ''}`);
      const list = [...junkAttrs(), rtattr(r, c.IFLA_IFNAME, name), ...junkAttrs()];
      return nlmsg(r, r.pick([c.RTM_NEWLINK, c.RTM_DELLINK]), Buffer.concat([info, attrs(r.bool(0.1) ? [] : list)]));
    }
    case 2:
    case 3: {
      const family = r.bool(0.9) ? r.pick([c.AF_INET6, c.AF_INET]) : r.int(256);
      const msg = Buffer.alloc(c['sizeof(ifaddrmsg)']);
      msg[c['ifaddrmsg.ifa_family']] = family;
      msg[c['ifaddrmsg.ifa_prefixlen']] = r.pick([64, 128, 24, 32, r.int(256)]);
      msg.writeUInt32LE(r.pick([1, 2, 10, r.u32()]), c['ifaddrmsg.ifa_index']);
      const size = family === c.AF_INET ? 4 : 16;
      const addr = (): Buffer => r.bytes(r.bool(0.9) ? size : r.pick([0, 4, 15, 16, 17]));
      const list = [...junkAttrs(), ...(r.bool(0.8) ? [rtattr(r, c.IFA_ADDRESS, addr())] : []), ...(r.bool(0.4) ? [rtattr(r, c.IFA_LOCAL, addr())] : []), ...junkAttrs()];
      return nlmsg(r, r.pick([c.RTM_NEWADDR, c.RTM_DELADDR]), Buffer.concat([msg, attrs(list)]));
    }
    case 4: {
      if (r.bool()) return nlmsg(r, c.NLMSG_DONE, r.bytes(r.pick([0, 4])));
      const err = Buffer.alloc(c['sizeof(nlmsgerr)'] + (r.bool(0.3) ? c.NLMSG_HDRLEN : 0));
      err.writeInt32LE(r.pick([0, -1, -22, -105, -0x80000000, r.u32() | 0]), c['nlmsgerr.error']);
      return nlmsg(r, c.NLMSG_ERROR, r.bool(0.9) ? err : err.subarray(0, r.int(err.length)));
    }
    default:
      return nlmsg(r, r.pick([c.NLMSG_NOOP, c.NLMSG_OVERRUN, c.RTM_GETLINK, 24, 25, 28, 0xffff, r.int(0x10000)]), r.bytes(r.int(48)));
  }
}

/** One datagram: 1 to 6 messages back to back, as one recv() gives them. */
function randomNetlinkDatagram(r: Rng): Buffer {
  return Buffer.concat(Array.from({ length: 1 + r.int(6) }, () => randomNetlinkMessage(r)));
}

/**
 * What parseMessages must make of `buf`, worked out independently (a DataView walk, no code
 * shared with lib/links/rtnetlink.ts): the messages as short strings, or 'malformed'.
 */
function netlinkOracle(buf: Buffer): string[] | 'malformed' {
  const c = constants();
  const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const out: string[] = [];
  const up4 = (n: number): number => Math.ceil(n / 4) * 4;
  const attrsOf = (start: number, end: number): Map<number, [number, number]> | undefined => {
    const m = new Map<number, [number, number]>();
    for (let at = start; at + 4 <= end; ) {
      const len = v.getUint16(at, true);
      if (len < 4 || at + len > end) return undefined;
      m.set(v.getUint16(at + 2, true) & 0x3fff, [at + 4, at + len]);
      at += up4(len);
    }
    return m;
  };
  for (let at = 0; at + 16 <= buf.length; ) {
    const len = v.getUint32(at, true);
    if (len < 16 || at + len > buf.length) return 'malformed';
    const type = v.getUint16(at + 4, true);
    const body = at + 16;
    const end = at + len;
    if (type === c.NLMSG_DONE) out.push(`done ${v.getUint32(at + 8, true)}`);
    else if (type === c.NLMSG_ERROR) {
      if (body + 4 > end) return 'malformed';
      out.push(`error ${-v.getInt32(body, true)}`);
    } else if (type === c.RTM_NEWLINK || type === c.RTM_DELLINK) {
      if (body + 16 > end) return 'malformed';
      if (buf[body] === 0) {
        const attrs = attrsOf(body + 16, end);
        if (attrs === undefined) return 'malformed';
        const n = attrs.get(c.IFLA_IFNAME);
        let name = n === undefined ? '' : buf.toString('utf8', n[0], n[1]);
        if (name.includes('\0')) name = name.slice(0, name.indexOf('\0'));
        out.push(`link ${type === c.RTM_DELLINK} ${v.getInt32(body + 4, true)} ${JSON.stringify(name)} ${v.getUint32(body + 8, true)}`);
      }
    } else if (type === c.RTM_NEWADDR || type === c.RTM_DELADDR) {
      if (body + 8 > end) return 'malformed';
      const family = buf[body] === c.AF_INET6 ? 6 : buf[body] === c.AF_INET ? 4 : 0;
      if (family !== 0) {
        const attrs = attrsOf(body + 8, end);
        if (attrs === undefined) return 'malformed';
        const a = attrs.get(c.IFA_LOCAL) ?? attrs.get(c.IFA_ADDRESS);
        if (a !== undefined && a[1] - a[0] === (family === 6 ? 16 : 4)) {
          const bytes = buf.subarray(a[0], a[1]);
          const text = family === 6 ? formatIpv6(Buffer.from(bytes)) : [...bytes].join('.');
          out.push(`address ${type === c.RTM_DELADDR} ${v.getUint32(body + 4, true)} ${family} ${text}/${buf[body + 1]}`);
        }
      }
    }
    at += up4(len);
  }
  return out;
}

function netlinkShort(m: NetlinkMessage): string {
  switch (m.kind) {
    case 'done':
      return `done ${m.seq}`;
    case 'error':
      return `error ${m.errno}`;
    case 'link':
      return `link ${m.deleted} ${m.index} ${JSON.stringify(m.name)} ${m.flags}`;
    case 'address':
      return `address ${m.deleted} ${m.index} ${m.family} ${m.address}/${m.prefixLength}`;
  }
}

function netlinkTarget(): FuzzTarget<Buffer> {
  return {
    name: 'netlink parseMessages',
    description:
      'rtnetlink datagrams as the interface watcher reads them: nlmsghdr-framed RTM_NEWLINK/DELLINK, RTM_NEWADDR/DELADDR, NLMSG_DONE/ERROR and skipped types, with rtattrs; mutated lengths, types and truncations; checked against an independent walk',
    accepts: ['ERR_NETLINK_MALFORMED'],
    corpus(r) {
      return Array.from({ length: 256 }, () => randomNetlinkDatagram(r));
    },
    generate(r, corpus) {
      const c = constants();
      const roll = r.int(20);
      if (roll === 0) return r.bytes(r.int(96));
      const base = r.pick(corpus);
      // Truncated anywhere, as a short read would leave it.
      if (roll === 1) return base.subarray(0, r.int(base.length + 1));
      // A random length word in one message's header or one attribute's, edges preferred.
      if (roll <= 4) {
        const b = Buffer.from(base);
        const at = r.int(Math.max(1, b.length - 3));
        const word = r.pick([0, 1, 3, 4, 15, 16, 17, 19, 20, 0xffff, b.length - at, b.length - at + 1, b.length - at - 1, r.int(0x10000)]) >>> 0;
        if (r.bool()) b.writeUInt32LE(r.bool(0.1) ? 0xffffffff : word, Math.min(at, b.length - 4));
        else b.writeUInt16LE(word & 0xffff, Math.min(at, b.length - 2));
        return b;
      }
      if (roll === 5) return Buffer.concat([base, nlmsg(r, c.RTM_NEWLINK, r.bytes(r.int(40)), r.bool())]);
      // Length fields of the first message and its first attributes are the hot spots.
      return mutateBytes(r, base, corpus, [0, 1, 2, 3, 4, 5, c.NLMSG_HDRLEN + 16, c.NLMSG_HDRLEN + 17, c.NLMSG_HDRLEN + 8, c.NLMSG_HDRLEN + 9]);
    },
    run(bytes) {
      const expected = netlinkOracle(bytes);
      let got: NetlinkMessage[];
      try {
        got = parseMessages(bytes);
      } catch (err) {
        check(expected === 'malformed', `rejected (${(err as Error).message}) what the independent walk decodes as ${JSON.stringify(expected)}`);
        throw err;
      }
      check(expected !== 'malformed', 'accepted what the independent walk finds malformed');
      // Bounded output: every message takes at least a header.
      check(got.length <= Math.floor(bytes.length / constants().NLMSG_HDRLEN), `${got.length} messages from ${bytes.length} bytes`);
      check(JSON.stringify(got.map(netlinkShort)) === JSON.stringify(expected), `decoded ${JSON.stringify(got.map(netlinkShort))}, expected ${JSON.stringify(expected)}`);
      for (const m of got) {
        if (m.kind === 'address') check(m.family === 6 ? isIPv6(m.address) : /^\d{1,3}(\.\d{1,3}){3}$/.test(m.address), `address ${m.address}`);
        if (m.kind === 'link') check(!m.name.includes('\0') && Number.isInteger(m.index), `link ${m.index} ${JSON.stringify(m.name)}`);
      }
      return 'accepted';
    },
    show: hex,
  };
}

/** A target of any input type, as the runner holds them. */
export type AnyTarget = FuzzTarget<ModedBytes> | FuzzTarget<string> | FuzzTarget<BytesAt> | FuzzTarget<Buffer>;

/** Every target, in report order. */
export function allTargets(): AnyTarget[] {
  return [
    optionsTarget('hopByHop.decode', false),
    optionsTarget('hopByHop.destinationOptions.decode', true),
    packetTarget(),
    parseIpv6Target(),
    formatIpv6Target(),
    procTarget(),
    ipv4Target(),
    graspTarget(),
    mldTarget(),
    igmpTarget(),
    netlinkTarget(),
  ];
}

// ---------------------------------------------------------------------------------------
// Running

/** One unexpected outcome, with what is needed to reproduce it. */
export interface FuzzFailure {
  target: string;
  /** Index of the input in the run (with the seed, reproduces it). */
  iteration: number;
  input: string;
  /** What went wrong: the thrown value or the broken invariant. */
  detail: string;
}

/** The counts of one target's run. */
export interface TargetResult {
  target: string;
  description: string;
  accepts: readonly string[];
  inputs: number;
  accepted: number;
  rejected: number;
  /** Rejections by error code. */
  codes: Record<string, number>;
  unexpected: number;
  /** The first few unexpected outcomes (all are counted). */
  failures: FuzzFailure[];
  milliseconds: number;
}

function describeThrown(err: unknown): string {
  if (typeof err === 'object' && err !== null && typeof (err as Error).message === 'string') {
    const e = err as Error & { code?: unknown };
    return `${e.name}${typeof e.code === 'string' ? ` [${e.code}]` : ''}: ${e.message}`;
  }
  return `non-Error thrown: ${String(err)}`;
}

/**
 * Feeds `iterations` inputs to one target. The seed and the target's name fix the inputs,
 * so a run (and any failure in it) reproduces exactly.
 */
export function runTarget<I>(target: FuzzTarget<I>, iterations: number, seed: number, keepFailures = 5): TargetResult {
  let nameHash = 0;
  for (const ch of target.name) nameHash = (Math.imul(nameHash, 31) + ch.charCodeAt(0)) | 0;
  const r = new Rng(seed ^ nameHash);
  const corpus = target.corpus(r);
  const result: TargetResult = {
    target: target.name,
    description: target.description,
    accepts: target.accepts,
    inputs: 0,
    accepted: 0,
    rejected: 0,
    codes: {},
    unexpected: 0,
    failures: [],
    milliseconds: 0,
  };
  const started = performance.now();
  const fail = (iteration: number, input: I, detail: string): void => {
    result.unexpected++;
    if (result.failures.length < keepFailures) result.failures.push({ target: target.name, iteration, input: target.show(input), detail });
  };
  for (let i = 0; i < iterations; i++) {
    const input = target.generate(r, corpus);
    result.inputs++;
    try {
      result[target.run(input)]++;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // Duck-typed: under jest, errors made by Node's own code belong to another realm.
      const errorLike = typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string';
      if (!(err instanceof InvariantError) && errorLike && typeof code === 'string' && target.accepts.includes(code)) {
        result.rejected++;
        result.codes[code] = (result.codes[code] ?? 0) + 1;
      } else {
        fail(i, input, describeThrown(err));
      }
    }
  }
  result.milliseconds = Math.round(performance.now() - started);
  return result;
}
