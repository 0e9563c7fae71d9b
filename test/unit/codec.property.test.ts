/**
 * Property / fuzz tests for the decoders: hop-by-hop options, whole packets, and address
 * text. Valid encodings must round-trip; every other input must end in either a valid
 * result or an Error with the decoder's own `code` (never a RangeError from a Buffer read,
 * never a TypeError from a missing field).
 *
 * Seeded so failures reproduce: FUZZ_SEED=<n> npx jest test/unit/codec.property.test.ts
 */

import { isIPv6 } from 'net';
import {
  decode,
  destinationOptions,
  encode,
  option,
  type HopByHopOption,
} from '../../lib/codec/hopbyhop';
import { formatIpv6, parseIpv6 } from '../../lib/codec/ipv6addr';
import { parsePacket, serializePacket, type Ipv6Packet } from '../../lib/codec/packet';
import { randomAddress, randomExtension, randomOptions, Rng } from '../stress/fuzz/targets';

const SEED = Number(process.env.FUZZ_SEED ?? 0x6f0c0de) >>> 0;


/** Inputs fed to decoders, across all tests in this file. */
let inputs = 0;

/** Outcomes of mutated / noise inputs per decoder, to prove the fuzzing reaches both sides. */
const outcomes = { decodeOk: 0, decodeMalformed: 0, parseOk: 0, parseMalformed: 0 };

interface Failure {
  what: string;
  input: string;
  detail: string;
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.constructor.name} ${(err as { code?: unknown }).code}: ${err.message}`;
  return `non-Error thrown: ${String(err)}`;
}

/** Records a thrown value unless it is an Error with `code` and a sane `offset`. */
function checkError(failures: Failure[], what: string, input: Uint8Array, err: unknown, code: string): void {
  const e = err as { code?: unknown; offset?: unknown };
  const ok = err instanceof Error && e.code === code && typeof e.offset === 'number' && e.offset >= 0 && e.offset <= input.length;
  if (!ok) failures.push({ what, input: Buffer.from(input).toString('hex'), detail: describeError(err) });
}

function sameOption(a: HopByHopOption, b: HopByHopOption): boolean {
  if (a.name !== b.name || a.type !== b.type) return false;
  if (a.name === 'routerAlert') return a.routerAlert === (b as typeof a).routerAlert;
  if (a.name === 'jumboPayload') return a.jumboPayloadLength === (b as typeof a).jumboPayloadLength;
  const u = b as typeof a;
  return a.action === u.action && a.mayChange === u.mayChange && a.data.equals(u.data);
}

function sameOptions(a: readonly HopByHopOption[], b: readonly HopByHopOption[]): boolean {
  return a.length === b.length && a.every((o, i) => sameOption(o, b[i]));
}

/**
 * Non-strict decoding returns a misaligned or wrong-length router alert / jumbo option as
 * 'unknown'; encode() aligns by type, so after re-encoding it may decode as the named
 * option. option(type, data) applies the same classification, so compare through it.
 */
function normalize(options: readonly HopByHopOption[]): HopByHopOption[] {
  return options.map((o) => (o.name === 'unknown' ? option(o.type, o.data) : o));
}


/**
 * One mutation of a valid encoding. `lengthFields` are offsets of bytes that hold lengths,
 * so "lying" mutations hit them rather than random bytes.
 */
function mutate(r: Rng, input: Buffer, lengthFields: readonly number[]): Buffer {
  const b = Buffer.from(input);
  switch (r.int(7)) {
    case 0: {
      // overwrite 1..3 random bytes
      if (b.length === 0) return r.bytes(r.int(16));
      for (let k = 1 + r.int(3); k > 0; k--) b[r.int(b.length)] = r.u32() & 0xff;
      return b;
    }
    case 1: {
      if (b.length === 0) return b;
      const i = r.int(b.length);
      b[i] ^= 1 << r.int(8);
      return b;
    }
    case 2:
      return b.subarray(0, r.int(b.length + 1));
    case 3:
      return Buffer.concat([b, r.bytes(1 + r.int(24))]);
    case 4:
    case 5: {
      // lie in a length field: small deltas and arbitrary values
      const fields = lengthFields.filter((f) => f < b.length);
      if (fields.length === 0) return b;
      const f = r.pick(fields);
      b[f] = r.bool() ? (b[f] + r.pick([1, -1, 2, -2, 8, -8])) & 0xff : r.u32() & 0xff;
      return b;
    }
    default: {
      // delete or insert a byte, shifting everything after it
      const i = r.int(b.length + 1);
      return r.bool() ? Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]) : Buffer.concat([b.subarray(0, i), r.bytes(1), b.subarray(i)]);
    }
  }
}

/** Checks alignment and padding of an encoder output by walking it independently. */
function layoutProblem(buf: Buffer): string | undefined {
  if (buf.length % 8 !== 0 || buf[1] !== buf.length / 8 - 1) return 'length not a multiple of 8 or hdr-ext-len wrong';
  let off = 2;
  let run = 0;
  while (off < buf.length) {
    const t = buf[off];
    if (t === 0 || t === 1) {
      const n = t === 0 ? 1 : 2 + buf[off + 1];
      if (t === 1 && buf.subarray(off + 2, off + n).some((x) => x !== 0)) return `non-zero PadN at ${off}`;
      run += n;
      if (run > 7) return `padding run over 7 at ${off}`;
      off += n;
      continue;
    }
    run = 0;
    if (t === 5 && off % 2 !== 0) return `router alert at ${off}`;
    if (t === 0xc2 && off % 4 !== 2) return `jumbo at ${off}`;
    off += 2 + buf[off + 1];
  }
  return off === buf.length ? undefined : 'TLVs overrun the header';
}

/** Decodes and checks the outcome; for successes, the result must re-encode consistently. */
function checkDecode(failures: Failure[], input: Buffer, strict: boolean, dest: boolean): void {
  inputs++;
  let d;
  try {
    d = dest ? destinationOptions.decode(input, { strict }) : decode(input, { strict });
  } catch (err) {
    outcomes.decodeMalformed++;
    checkError(failures, `decode strict=${strict}`, input, err, 'ERR_HOPOPTS_MALFORMED');
    return;
  }
  outcomes.decodeOk++;
  const hex = input.toString('hex');
  if (d.length > input.length || d.length % 8 !== 0 || d.nextHeader !== input[0]) {
    failures.push({ what: 'decode result', input: hex, detail: JSON.stringify(d) });
    return;
  }
  if (strict && d.problems.length > 0) failures.push({ what: 'strict decode with problems', input: hex, detail: JSON.stringify(d.problems) });
  let again;
  try {
    again = decode(encode(d.options, { nextHeader: d.nextHeader }), { strict });
  } catch (err) {
    // Re-encoding aligns options the input left unaligned, so a header near the maximum
    // size may legitimately no longer fit.
    const e = err as { code?: unknown };
    if (!(e.code === 'ERR_OUT_OF_RANGE' && d.length > 1900) && !(!strict && e.code === 'ERR_HOPOPTS_MALFORMED')) {
      failures.push({ what: 're-encode of decoded options', input: hex, detail: describeError(err) });
    }
    return;
  }
  if (!sameOptions(normalize(again.options), normalize(d.options))) {
    failures.push({ what: 'decode(encode(decode(x))) != decode(x)', input: hex, detail: JSON.stringify(again.options) });
  }
}

function report(failures: Failure[]): void {
  if (failures.length > 0) {
    const sample = failures.slice(0, 5).map((f) => `${f.what}: ${f.detail}\n  input ${f.input}`).join('\n');
    throw new Error(`${failures.length} failures with FUZZ_SEED=${SEED}:\n${sample}`);
  }
}

describe(`codec properties (FUZZ_SEED=${SEED})`, () => {
  test('hop-by-hop / destination options: round trip, layout, mutations, noise', () => {
    const r = new Rng(SEED);
    const failures: Failure[] = [];
    for (let i = 0; i < 15000; i++) {
      const opts = randomOptions(r, true);
      const nextHeader = r.int(256);
      const dest = r.bool(0.2);
      const enc = dest ? destinationOptions.encode(opts, { nextHeader }) : encode(opts, { nextHeader });
      inputs++;
      const bad = layoutProblem(enc);
      if (bad) failures.push({ what: 'encoder layout', input: enc.toString('hex'), detail: bad });
      try {
        const d = decode(enc);
        if (d.nextHeader !== nextHeader || d.length !== enc.length || !sameOptions(d.options, opts) || d.problems.length) {
          failures.push({ what: 'round trip', input: enc.toString('hex'), detail: JSON.stringify(d) });
        }
      } catch (err) {
        failures.push({ what: 'round trip threw', input: enc.toString('hex'), detail: describeError(err) });
      }
      for (let m = 0; m < 4; m++) checkDecode(failures, mutate(r, enc, [1, 3]), r.bool(), dest);
    }
    for (let i = 0; i < 10000; i++) {
      // Noise, skewed towards small hdr-ext-len and padding bytes so decoding gets somewhere.
      const b = r.bytes(r.int(40));
      for (let j = 1; j < b.length; j++) if (r.bool(0.4)) b[j] = r.pick([0, 1, 2, 4, 5, 0xc2]);
      checkDecode(failures, b, r.bool(), false);
    }
    report(failures);
  });

  test('packets: round trip through serializePacket, mutations, noise', () => {
    const r = new Rng(SEED ^ 0xa5a5a5a5);
    const failures: Failure[] = [];
    const randomPacket = (): { pkt: Ipv6Packet; types: number[] } => {
      const extensions: Ipv6Packet['extensions'] = [];
      const types: number[] = [];
      const add = (type: number, raw: Buffer): void => {
        extensions.push({ type, offset: 0, length: raw.length, raw });
        types.push(type);
      };
      let hopByHop: Ipv6Packet['hopByHop'];
      if (r.bool()) {
        hopByHop = { nextHeader: 0, length: 0, offset: 40, options: randomOptions(r, false), problems: [], raw: Buffer.alloc(0) };
        types.push(0);
      }
      for (let n = r.int(4); n > 0; n--) {
        const { type, raw } = randomExtension(r, 'atomic');
        add(type, raw);
      }
      const fragmented = r.bool(0.1);
      if (fragmented) {
        const raw = r.bytes(8);
        raw[1] = 0;
        if (r.bool()) raw[3] |= 1; // first fragment or any: M = 1
        else raw[2] |= 1; // a non-zero offset
        add(44, raw);
      }
      const pkt: Ipv6Packet = {
        header: {
          version: 6, trafficClass: r.int(256), flowLabel: r.int(0x100000), payloadLength: 0, nextHeader: 0,
          hopLimit: r.int(256), source: randomAddress(r), destination: randomAddress(r),
        },
        extensions,
        protocol: 0,
        payload: Buffer.alloc(0),
      };
      if (hopByHop) pkt.hopByHop = hopByHop;
      const proto = r.pick([17, 17, 58, 58, 6, 59, 50]);
      pkt.protocol = proto;
      if (fragmented || (proto !== 17 && proto !== 58)) {
        pkt.payload = r.bytes(r.int(48));
        if (proto === 17 && pkt.payload.length < 8) pkt.payload = r.bytes(8);
        if (proto === 58 && pkt.payload.length < 4) pkt.payload = r.bytes(4);
      } else if (proto === 17) {
        pkt.udp = { sourcePort: r.int(0x10000), destinationPort: r.int(0x10000), length: 0, checksum: r.int(0x10000), data: r.bytes(r.int(48)) };
      } else {
        pkt.icmpv6 = { type: r.int(256), code: r.int(256), checksum: r.int(0x10000), body: r.bytes(r.int(48)) };
      }
      return { pkt, types };
    };

    const checkParse = (input: Buffer, strict: boolean): void => {
      inputs++;
      let p: Ipv6Packet;
      try {
        p = parsePacket(input, { strict });
      } catch (err) {
        outcomes.parseMalformed++;
        checkError(failures, `parsePacket strict=${strict}`, input, err, 'ERR_PACKET_MALFORMED');
        return;
      }
      outcomes.parseOk++;
      // Anything parsePacket accepts, serializePacket must rebuild byte for byte.
      const jumbo = p.hopByHop?.options.find((o) => o.name === 'jumboPayload');
      const end = 40 + (jumbo && jumbo.name === 'jumboPayload' ? jumbo.jumboPayloadLength : p.header.payloadLength);
      try {
        const out = serializePacket(p);
        if (!out.equals(input.subarray(0, end))) {
          failures.push({ what: 'serialize(parse(x)) != x', input: input.toString('hex'), detail: out.toString('hex') });
        }
      } catch (err) {
        failures.push({ what: 'serialize of a parsed packet threw', input: input.toString('hex'), detail: describeError(err) });
      }
    };

    for (let i = 0; i < 6000; i++) {
      const { pkt, types } = randomPacket();
      let bytes: Buffer;
      try {
        bytes = serializePacket(pkt);
      } catch (err) {
        failures.push({ what: 'serialize of a generated packet threw', input: JSON.stringify(pkt.header), detail: describeError(err) });
        continue;
      }
      inputs++;
      let p: Ipv6Packet;
      try {
        p = parsePacket(bytes);
      } catch (err) {
        failures.push({ what: 'parse of a generated packet threw', input: bytes.toString('hex'), detail: describeError(err) });
        continue;
      }
      const h = pkt.header;
      const wrong: string[] = [];
      if (p.header.source !== h.source || p.header.destination !== h.destination) wrong.push('addresses');
      if (p.header.trafficClass !== h.trafficClass || p.header.flowLabel !== h.flowLabel || p.header.hopLimit !== h.hopLimit) wrong.push('header fields');
      if (p.header.payloadLength !== bytes.length - 40) wrong.push('payload length');
      if (p.extensions.map((e) => e.type).join() !== types.join()) wrong.push(`chain ${p.extensions.map((e) => e.type)} vs ${types}`);
      if (p.protocol !== pkt.protocol) wrong.push('protocol');
      if (pkt.hopByHop && !(p.hopByHop && sameOptions(p.hopByHop.options, pkt.hopByHop.options))) wrong.push('hop-by-hop options');
      if (pkt.udp && !(p.udp && p.udp.checksumValid && p.udp.data.equals(pkt.udp.data) && p.udp.sourcePort === pkt.udp.sourcePort)) wrong.push('udp');
      if (pkt.icmpv6 && !(p.icmpv6 && p.icmpv6.checksumValid && p.icmpv6.body.equals(pkt.icmpv6.body) && p.icmpv6.type === pkt.icmpv6.type)) wrong.push('icmpv6');
      if (!pkt.udp && !pkt.icmpv6 && !p.payload.equals(pkt.payload)) wrong.push('payload');
      if (!serializePacket(p).equals(bytes)) wrong.push('serialize(parse(x)) != x');
      if (wrong.length) failures.push({ what: 'packet round trip', input: bytes.toString('hex'), detail: wrong.join(', ') });

      const lengthFields = [4, 5, ...p.extensions.map((e) => e.offset + 1)];
      if (p.udp) lengthFields.push(bytes.length - p.payload.length + 4, bytes.length - p.payload.length + 5);
      for (let m = 0; m < 6; m++) checkParse(mutate(r, bytes, lengthFields), r.bool(0.7));
    }
    for (let i = 0; i < 5000; i++) {
      const b = r.bytes(r.int(120));
      if (b.length > 0 && r.bool(0.9)) b[0] = 0x60 | (b[0] & 0x0f);
      if (b.length > 6) b[6] = r.pick([0, 17, 43, 44, 50, 51, 58, 59, 60, 135, b[6]]);
      if (b.length > 5 && r.bool(0.7)) b.writeUInt16BE(Math.max(0, b.length - 40 - r.int(3)), 4);
      checkParse(b, r.bool());
    }
    report(failures);
  });

  test('addresses: format/parse round trip, agreement with net.isIPv6 and the URL parser', () => {
    const r = new Rng(SEED ^ 0x5a5a5a5a);
    const failures: Failure[] = [];
    /** WHATWG URL host serialization: canonical RFC 5952 text, except IPv4-mapped (hex). */
    const urlCanonical = (s: string): string | undefined => {
      try {
        return new URL(`http://[${s}]/`).hostname.slice(1, -1);
      } catch {
        return undefined;
      }
    };
    const textForms = (b: Buffer): string[] => {
      const groups: string[] = [];
      for (let g = 0; g < 8; g++) groups.push(b.readUInt16BE(g * 2).toString(16));
      const forms = [groups.join(':'), groups.map((g) => g.padStart(4, '0')).join(':').toUpperCase()];
      // A non-canonical '::' over some zero run (not necessarily the longest).
      const zeros = groups.map((g, k) => (g === '0' ? k : -1)).filter((k) => k >= 0);
      if (zeros.length > 0) {
        const start = r.pick(zeros);
        let end = start;
        while (end + 1 < 8 && groups[end + 1] === '0' && r.bool(0.8)) end++;
        forms.push(`${groups.slice(0, start).join(':')}::${groups.slice(end + 1).join(':')}`);
      }
      forms.push(`${groups.slice(0, 6).join(':')}:${b[12]}.${b[13]}.${b[14]}.${b[15]}`);
      return forms;
    };

    for (let i = 0; i < 12000; i++) {
      const b = r.bytes(16);
      for (let g = 0; g < 8; g++) if (r.bool(0.45)) b.writeUInt16BE(0, g * 2);
      if (r.bool(0.05)) {
        b.fill(0, 0, 10);
        b.writeUInt16BE(0xffff, 10);
      }
      const s = formatIpv6(b);
      inputs++;
      const back = parseIpv6(s);
      if (!back.equals(b)) failures.push({ what: 'parse(format(b)) != b', input: b.toString('hex'), detail: s });
      const oracle = urlCanonical(s);
      const mapped = b.subarray(0, 12).equals(Buffer.from('00000000000000000000ffff', 'hex'));
      if (!mapped && oracle !== s) failures.push({ what: 'formatIpv6 differs from the URL parser', input: b.toString('hex'), detail: `${s} vs ${oracle}` });
      if (s !== s.toLowerCase() || !isIPv6(s)) failures.push({ what: 'format not canonical', input: b.toString('hex'), detail: s });
      for (const form of textForms(b)) {
        inputs++;
        try {
          if (!parseIpv6(form).equals(b)) failures.push({ what: 'text form parses to other bytes', input: b.toString('hex'), detail: form });
        } catch (err) {
          failures.push({ what: 'valid text form rejected', input: b.toString('hex'), detail: `${form}: ${describeError(err)}` });
        }
      }
    }

    const alphabet = '0123456789abcdefABCDEF:.%:::x 0';
    for (let i = 0; i < 20000; i++) {
      const base = r.pick(textForms(parseIpv6(formatIpv6(r.bytes(16).fill(0, 0, r.int(16))))));
      let s = base;
      for (let k = 1 + r.int(3); k > 0; k--) {
        const at = r.int(s.length + 1);
        const op = r.int(3);
        const c = alphabet[r.int(alphabet.length)];
        s = op === 0 ? s.slice(0, at) + c + s.slice(at) : op === 1 ? s.slice(0, at) + s.slice(at + 1) : s.slice(0, at) + c + s.slice(at + 1);
      }
      inputs++;
      const valid = isIPv6(s) && !s.includes('%');
      let bytes: Buffer | undefined;
      try {
        bytes = parseIpv6(s);
      } catch (err) {
        const e = err as { code?: unknown };
        if (!(err instanceof Error) || e.code !== 'ERR_INVALID_ARG_VALUE') failures.push({ what: 'parseIpv6 threw wrongly', input: s, detail: describeError(err) });
      }
      if ((bytes !== undefined) !== valid) {
        failures.push({ what: 'parseIpv6 disagrees with net.isIPv6', input: s, detail: `parsed=${bytes !== undefined} isIPv6=${valid}` });
      } else if (bytes !== undefined) {
        const oracle = urlCanonical(s);
        if (oracle === undefined || !parseIpv6(oracle).equals(bytes)) {
          failures.push({ what: 'parseIpv6 differs from the URL parser', input: s, detail: `${bytes.toString('hex')} vs ${oracle}` });
        }
      }
    }
    report(failures);
  });

  test('at least 100,000 inputs were fed to the decoders, reaching both outcomes', () => {
    expect(inputs).toBeGreaterThanOrEqual(100000);
    // Mutations must produce plenty of both accepted and rejected inputs, or the test
    // exercises only one side of the decoders.
    for (const n of Object.values(outcomes)) expect(n).toBeGreaterThan(5000);
    if (process.env.FUZZ_VERBOSE) console.log({ inputs, ...outcomes });
  });
});
