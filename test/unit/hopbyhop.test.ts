import {
  decode,
  destinationOptions,
  encode,
  findRouterAlert,
  jumboPayload,
  option,
  optionActions,
  optionTypes,
  routerAlert,
  routerAlertValues,
  type HopByHopOption,
  type UnknownOption,
} from '../../lib/codec/hopbyhop';
import { thrown } from '../helpers/thrown';

function h(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ');
}

/** Offsets of every non-padding option in an encoded header. */
function optionOffsets(buf: Uint8Array): number[] {
  const out: number[] = [];
  let off = 2;
  while (off < buf.length) {
    if (buf[off] === 0) {
      off++;
      continue;
    }
    if (buf[off] !== 1) out.push(off);
    off += 2 + buf[off + 1];
  }
  return out;
}

describe('encode', () => {
  test('a sparse or huge options list is refused before anything is built', () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(() => encode([routerAlert(5), , routerAlert(6)] as HopByHopOption[])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('options[1]') }));
    const huge: HopByHopOption[] = [];
    huge.length = 2 ** 32 - 1;
    expect(() => encode(huge)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('options.length') }));
  });

  test('routerAlert(5) is exactly what glibc inet6_opt_* produces', () => {
    expect(hex(encode([routerAlert(5)]))).toBe('00 00 05 02 00 05 01 00');
  });

  test('router alert values and next header', () => {
    expect(hex(encode([routerAlert(routerAlertValues.MLD)], { nextHeader: 58 }))).toBe('3a 00 05 02 00 00 01 00');
    expect(hex(encode([routerAlert(0xffff)], { nextHeader: 17 }))).toBe('11 00 05 02 ff ff 01 00');
  });

  test('no options: a header of pure padding, a single PadN run of 6', () => {
    expect(hex(encode([]))).toBe('00 00 01 04 00 00 00 00');
  });

  test('jumbo payload is aligned 4n+2 (RFC 2675)', () => {
    expect(hex(encode([jumboPayload(70000)]))).toBe('00 00 c2 04 00 01 11 70');
    // A 1-byte raw option first leaves offset 5: one Pad1 moves jumbo to 6 (= 4*1+2).
    const b = encode([option(0x3e, h('aa')), jumboPayload(0x10000)]);
    expect(hex(b)).toBe('00 01 3e 01 aa 00 c2 04 00 01 00 00 01 02 00 00');
    // After a router alert (offset 2..5) jumbo sits at 6 with no padding.
    expect(hex(encode([routerAlert(1), jumboPayload(100000)]))).toBe('00 01 05 02 00 01 c2 04 00 01 86 a0 01 02 00 00');
    // Two raw bytes first leave offset 6: already 4n+2.
    expect(optionOffsets(encode([option(0x3e, h('aabb')), jumboPayload(0x10000)]))).toEqual([2, 6]);
    // Three data bytes leave offset 7: PadN of 3 to reach 10.
    const c = encode([option(0x3e, h('aabbcc')), jumboPayload(0x10000)]);
    expect(optionOffsets(c)).toEqual([2, 10]);
    expect(hex(c.subarray(7, 10))).toBe('01 01 00');
  });

  test('router alert is aligned 2n+0 (RFC 2711)', () => {
    const b = encode([option(0x3e, h('aa')), routerAlert(5)]);
    expect(hex(b)).toBe('00 01 3e 01 aa 00 05 02 00 05 01 04 00 00 00 00');
    expect(optionOffsets(b)).toEqual([2, 6]);
  });

  test('raw options keep their order and bytes', () => {
    const b = encode([option(0x1e, h('0102')), option(0x7f), routerAlert(2)], { nextHeader: 6 });
    expect(hex(b)).toBe('06 01 1e 02 01 02 7f 00 05 02 00 02 01 02 00 00');
  });

  test('accepts plain objects without a name', () => {
    const ra = { type: 5, routerAlert: 5 } as unknown as HopByHopOption;
    expect(hex(encode([ra]))).toBe('00 00 05 02 00 05 01 00');
    const raw = { type: 0x3e, data: h('01') } as unknown as HopByHopOption;
    expect(hex(encode([raw]))).toBe('00 00 3e 01 01 01 01 00');
  });

  test('headers up to 2048 bytes; longer is ERR_OUT_OF_RANGE', () => {
    const big = option(0x3e, Buffer.alloc(255, 0x11));
    const seven = encode(Array(7).fill(big));
    expect(seven.length).toBe(1808);
    expect(seven[1]).toBe(1808 / 8 - 1);
    // 2 + 7 * 257 + (2 + 245) = 2048: the largest header there is.
    const max = encode([...Array(7).fill(big), option(0x3e, Buffer.alloc(245))]);
    expect(max.length).toBe(2048);
    expect(max[1]).toBe(255);
    expect(decode(max).options).toHaveLength(8);
    expect(thrown(() => encode(Array(8).fill(big))).code).toBe('ERR_OUT_OF_RANGE');
  });

  test('argument errors carry codes', () => {
    expect(thrown(() => encode('x' as unknown as HopByHopOption[])).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => encode([null as unknown as HopByHopOption])).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => encode([{ name: 'bogus' } as unknown as HopByHopOption])).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => encode([{ type: 0, name: 'unknown', data: h('') } as unknown as HopByHopOption])).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => encode([{ type: 6, name: 'routerAlert', routerAlert: 1 } as unknown as HopByHopOption])).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => encode([{ type: 5, name: 'routerAlert', routerAlert: 70000 } as unknown as HopByHopOption])).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => encode([{ type: 0x3e, name: 'unknown', data: 'ab' } as unknown as HopByHopOption])).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => encode([], { nextHeader: 256 })).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => encode([], { nextHeader: '17' as unknown as number })).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('encode reads its input once', () => {
  /** An unknown option whose data is 200 bytes on the first read and empty on every later one. */
  function shrinkingOption(): { opt: UnknownOption; reads: () => number } {
    let reads = 0;
    const opt = {
      type: 0x3e,
      name: 'unknown',
      action: 0,
      mayChange: true,
      get data(): Buffer {
        return reads++ === 0 ? Buffer.alloc(200, 0xab) : Buffer.alloc(0);
      },
    } as UnknownOption;
    return { opt, reads: () => reads };
  }

  /** The header encode() must give for one unknown option of `data`: laid out by hand. */
  function expected(type: number, data: Buffer): Buffer {
    const total = (2 + 2 + data.length + 7) & ~7;
    const out = Buffer.alloc(total);
    out[1] = total / 8 - 1;
    out[2] = type;
    out[3] = data.length;
    data.copy(out, 4);
    const pad = total - 4 - data.length;
    if (pad === 1) out[4 + data.length] = 0;
    if (pad > 1) {
      out[4 + data.length] = 1;
      out[5 + data.length] = pad - 2;
    }
    return out;
  }

  test('a data getter that answers 200 bytes, then none: the header is built from one answer, every byte written', () => {
    // Before: validated as 200 bytes, written as 0, so 200 bytes of the 208-byte header were
    // whatever Buffer.allocUnsafe's pool held.
    const { opt, reads } = shrinkingOption();
    const out = encode([opt]);
    expect(reads()).toBe(1);
    expect(hex(out)).toBe(hex(expected(0x3e, Buffer.alloc(200, 0xab))));
    expect(decode(out).options).toEqual([expect.objectContaining({ type: 0x3e, data: Buffer.alloc(200, 0xab) })]);
  });

  test('the same option through destinationOptions.encode', () => {
    const { opt, reads } = shrinkingOption();
    expect(hex(destinationOptions.encode([opt]))).toBe(hex(expected(0x3e, Buffer.alloc(200, 0xab))));
    expect(reads()).toBe(1);
  });

  test('a Proxy answering differently on every read: each field read once, output from those answers', () => {
    const reads = new Map<PropertyKey, number>();
    const answers: Record<string, unknown[]> = {
      name: ['routerAlert', 'unknown'],
      type: [5, 0x3e],
      routerAlert: [7, 70000],
      data: [undefined, Buffer.alloc(100, 1)],
    };
    const opt = new Proxy({} as HopByHopOption, {
      get(_target, key) {
        const n = reads.get(key) ?? 0;
        reads.set(key, n + 1);
        const list = typeof key === 'string' ? answers[key] : undefined;
        return list === undefined ? undefined : list[Math.min(n, list.length - 1)];
      },
    });
    let lengthReads = 0;
    const list = new Proxy([opt], {
      get(target, key, receiver) {
        if (key === 'length') return ++lengthReads === 1 ? 1 : 3;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const out = encode(list);
    expect(hex(out)).toBe(hex(encode([routerAlert(7)])));
    expect(lengthReads).toBe(1);
    for (const [key, n] of reads) expect({ key, n }).toEqual({ key, n: 1 });
  });

  test('a Uint8Array subclass whose length getter lies: the real bytes are written, nothing else', () => {
    class Liar extends Uint8Array {
      override get length(): number {
        return 200;
      }
    }
    const data = new Liar(3).fill(9);
    expect(hex(encode([{ type: 0x3e, name: 'unknown', data, action: 0, mayChange: true } as UnknownOption]))).toBe(
      hex(expected(0x3e, Buffer.from([9, 9, 9]))),
    );
    expect(hex(encode([option(0x3e, data)]))).toBe(hex(expected(0x3e, Buffer.from([9, 9, 9]))));
  });

  test('data changed after encode() returns does not change the header (it was copied)', () => {
    const data = Buffer.alloc(4, 1);
    const opt = option(0x3e, data);
    data.fill(2);
    expect(hex(encode([opt]))).toBe(hex(expected(0x3e, Buffer.alloc(4, 1))));
  });
});

describe('option constructors', () => {
  test('routerAlert validates a 16-bit integer', () => {
    expect(routerAlert(routerAlertValues.RSVP)).toEqual({ type: 5, name: 'routerAlert', routerAlert: 1 });
    for (const bad of [-1, 65536, 1.5, NaN, Infinity]) expect(thrown(() => routerAlert(bad)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => routerAlert('5' as unknown as number)).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  test('jumboPayload needs more than 65535 and fits 32 bits', () => {
    expect(jumboPayload(65536).jumboPayloadLength).toBe(65536);
    expect(jumboPayload(0xffffffff).jumboPayloadLength).toBe(0xffffffff);
    for (const bad of [65535, 0, 2 ** 32, 1e5 + 0.5]) expect(thrown(() => jumboPayload(bad)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => jumboPayload(null as unknown as number)).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  test('option() returns named options when well formed, raw otherwise', () => {
    expect(option(5, h('0007'))).toEqual(routerAlert(7));
    expect(option(0xc2, h('00010000'))).toEqual(jumboPayload(65536));
    expect(option(5, h('000700'))).toMatchObject({ type: 5, name: 'unknown' });
    expect(option(0xc2, h('0000ffff'))).toMatchObject({ type: 0xc2, name: 'unknown' });
    const data = h('0102');
    const o = option(0x3e, data) as UnknownOption;
    data[0] = 9; // the option keeps its own copy
    expect(hex(o.data)).toBe('01 02');
  });

  test('option() refuses padding types and oversized data', () => {
    expect(thrown(() => option(0)).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => option(1)).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => option(256)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => option(0x3e, Buffer.alloc(256))).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => option(0x3e, [1] as unknown as Uint8Array)).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  test('constant tables are frozen', () => {
    expect(routerAlertValues).toEqual({ MLD: 0, RSVP: 1, ACTIVE_NETWORKS: 2 });
    expect(Object.isFrozen(routerAlertValues)).toBe(true);
    expect(Object.isFrozen(optionTypes)).toBe(true);
    expect(Object.isFrozen(optionActions)).toBe(true);
    expect(Object.isFrozen(destinationOptions)).toBe(true);
  });
});

describe('decode', () => {
  test('the kernel-format router alert header', () => {
    expect(decode(h('11 00 05 02 00 05 01 00'))).toEqual({
      nextHeader: 17,
      length: 8,
      options: [{ type: 5, name: 'routerAlert', routerAlert: 5 }],
      problems: [],
    });
  });

  test('accepts a plain Uint8Array and ignores bytes after the header', () => {
    const u = new Uint8Array(h('3a 00 05 02 00 00 01 00 ff ff ff'));
    const d = decode(u);
    expect(d.length).toBe(8);
    expect(findRouterAlert(d)).toBe(routerAlertValues.MLD);
  });

  test('unknown options: action bits and the may-change bit', () => {
    // Types 0x3e (00 1 11110), 0x5e (01 0 ...), 0x9e (10 0 ...), 0xfe (11 1 ...); all data 1 byte.
    const d = decode(h('00 01 3e 01 aa 5e 01 bb 9e 01 cc fe 01 dd 01 00'));
    expect(d.options).toEqual([
      { type: 0x3e, name: 'unknown', data: h('aa'), action: optionActions.SKIP, mayChange: true },
      { type: 0x5e, name: 'unknown', data: h('bb'), action: optionActions.DISCARD, mayChange: false },
      { type: 0x9e, name: 'unknown', data: h('cc'), action: optionActions.DISCARD_ICMP, mayChange: false },
      { type: 0xfe, name: 'unknown', data: h('dd'), action: optionActions.DISCARD_ICMP_UNLESS_MULTICAST, mayChange: true },
    ]);
  });

  test('unknown option data is a view into the input (no copy per option)', () => {
    const buf = h('00 00 3e 02 aa bb 01 00');
    const o = decode(buf).options[0] as UnknownOption;
    buf[4] = 0xcc;
    expect(hex(o.data)).toBe('cc bb');
  });

  test('non-zero PadN bytes are rejected (strict) or reported', () => {
    const buf = h('00 00 01 04 00 00 07 00');
    const err = thrown(() => decode(buf));
    expect(err.code).toBe('ERR_HOPOPTS_MALFORMED');
    expect(err.offset).toBe(6);
    expect(err.message).toMatch(/offset 6.*PadN at offset 2 has non-zero byte 0x7/);
    const loose = decode(buf, { strict: false });
    expect(loose.options).toEqual([]);
    expect(loose.problems).toEqual([{ offset: 6, reason: 'padding-not-zero', message: expect.stringContaining('non-zero') }]);
  });

  test('padding runs over 7 bytes are rejected; exactly 7 is fine', () => {
    // PadN with 6 data bytes = an 8-byte run.
    const padN8 = h('11 01  01 06 00 00 00 00 00 00  05 02 00 05 01 00');
    expect(thrown(() => decode(padN8))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 2 });
    // Eight Pad1 bytes: the eighth (offset 9) is one too many.
    const pad1x8 = h('11 01  00 00 00 00 00 00 00 00  05 02 00 05 01 00');
    expect(thrown(() => decode(pad1x8))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 9 });
    // Pad1 and PadN count together: 3 Pad1 + PadN(3) = 8.
    const mixed = h('11 01  00 00 00 01 03 00 00 00  05 02 00 05 01 00');
    expect(thrown(() => decode(mixed))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 5 });
    // Seven bytes is the most RFC 8200 padding ever needs.
    const seven = h('11 01  01 05 00 00 00 00 00  05 02 00 05  01 01 00');
    expect(findRouterAlert(decode(seven))).toBe(5);
    expect(decode(pad1x8, { strict: false }).problems).toEqual([
      { offset: 9, reason: 'padding-too-long', message: expect.stringContaining('more than 7') },
    ]);
    // A whole header of padding is a run of 14: one problem, not one per byte.
    expect(decode(h('00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00'), { strict: false }).problems).toHaveLength(1);
  });

  test('truncated TLVs are malformed in both modes', () => {
    // Option length 8 from offset 2 runs past the 8-byte header.
    for (const strict of [true, false]) {
      expect(thrown(() => decode(h('00 00 3e 08 00 00 00 00'), { strict }))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 2 });
    }
    // An option type in the last byte has no length byte.
    const e = thrown(() => decode(h('00 00 01 02 00 00 00 3e')));
    expect(e).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 7 });
    expect(e.message).toMatch(/no length byte/);
  });

  test('hdr-ext-len lying', () => {
    // Says 16 bytes, 8 present.
    const up = thrown(() => decode(h('00 01 05 02 00 05 01 00')));
    expect(up).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 1 });
    expect(up.message).toMatch(/hdr-ext-len 1 means 16 bytes but only 8/);
    // Says 8 bytes of a 16-byte header: the option then runs past the (claimed) end.
    expect(thrown(() => decode(h('00 00 3e 0a 00 00 00 00 00 00 00 00 00 00 01 00')))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 2 });
    // Shorter than the minimum 8 bytes.
    expect(thrown(() => decode(h('00 00 05 02')))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 0 });
    expect(thrown(() => decode(h('')))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 0 });
  });

  test('router alert with the wrong length: Linux drops it, so strict rejects', () => {
    const buf = h('00 00 05 03 00 05 00 00'); // length 3
    expect(thrown(() => decode(buf))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 2 });
    const loose = decode(buf, { strict: false });
    expect(loose.options).toEqual([{ type: 5, name: 'unknown', data: h('00 05 00'), action: 0, mayChange: false }]);
    expect(loose.problems.map((p) => p.reason)).toEqual(['bad-router-alert']);
  });

  test('jumbo payload: misaligned, short or too small values are malformed', () => {
    expect(decode(h('00 00 c2 04 00 01 00 00')).options).toEqual([jumboPayload(65536)]);
    // At offset 3 (not 4n+2); Linux answers with a Parameter Problem and drops it.
    expect(thrown(() => decode(h('00 01 00 c2 04 00 01 00 00 01 04 00 00 00 00 00')))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 3 });
    // Value 65535.
    expect(thrown(() => decode(h('00 00 c2 04 00 00 ff ff')))).toMatchObject({ code: 'ERR_HOPOPTS_MALFORMED', offset: 2 });
    expect(decode(h('00 00 c2 04 00 00 ff ff'), { strict: false }).problems.map((p) => p.reason)).toEqual(['bad-jumbo-payload']);
  });

  test('input type errors', () => {
    expect(thrown(() => decode('0000' as unknown as Uint8Array)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => decode([0, 0, 1, 4, 0, 0, 0, 0] as unknown as Uint8Array)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => decode(h('00 00 01 04 00 00 00 00'), { strict: 'yes' as unknown as boolean })).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  test('decode(encode(x)) returns x', () => {
    const opts: HopByHopOption[] = [routerAlert(3), option(0x3e, h('01 02 03')), jumboPayload(123456), option(0xfe)];
    expect(decode(encode(opts, { nextHeader: 60 }))).toEqual({ nextHeader: 60, length: 24, options: opts, problems: [] });
  });
});

describe('destination options', () => {
  test('same format, errors name the destination options header', () => {
    const opts = [option(0xc9, h('20010db8000000000000000000000001'))]; // home address option, RFC 6275
    const b = destinationOptions.encode(opts, { nextHeader: 17 });
    expect(b).toEqual(encode(opts, { nextHeader: 17 }));
    expect(destinationOptions.decode(b).options).toEqual(opts);
    const err = thrown(() => destinationOptions.decode(h('00 00 01 04 00 00 00 01')));
    expect(err.code).toBe('ERR_HOPOPTS_MALFORMED');
    expect(err.message).toMatch(/destination options header/);
  });
});

describe('findRouterAlert', () => {
  test('from options or a decoded header', () => {
    expect(findRouterAlert([option(0x3e), routerAlert(0), routerAlert(7)])).toBe(0);
    expect(findRouterAlert({ options: [option(0x3e)] })).toBeUndefined();
    expect(findRouterAlert([])).toBeUndefined();
    expect(thrown(() => findRouterAlert(5 as unknown as HopByHopOption[])).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});
