/**
 * Reading a caller's input once, for the encoders (hop-by-hop and destination options,
 * packets). An encoder that reads a field to validate it and again to write it can be told
 * two different things by a getter or a Proxy, and write what it never checked (or leave
 * bytes it sized for unwritten). These helpers take one snapshot: each field read once,
 * byte arrays copied at their real length. Internal: not part of the public API.
 * @packageDocumentation
 */
import { invalidArgType, invalidArgValue, outOfRange } from '../errors';
import type { HopByHopOption, OptionAction, UnknownOption } from './options';
import { validateList } from '../validate';

/** A number that is an integer 0..max, else ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE. */
export function checkUint(name: string, value: unknown, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < 0 || value > max) throw outOfRange(name, `an integer from 0 to ${max}`, value);
  return value;
}

/** An 'unknown' option, with its action bits and may-change bit decoded from `type`. */
export function unknownOption(type: number, data: Buffer): UnknownOption {
  return { type, name: 'unknown', data, action: (type >> 6) as OptionAction, mayChange: (type & 0x20) !== 0 };
}

/**
 * The real length of a typed array, from the engine rather than from the object: a
 * subclass's own `length` getter cannot tell an encoder a different size than it writes.
 */
const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'length')
  ?.get as (this: Uint8Array) => number;

/** The number of bytes `u` holds now (see typedArrayLength). */
export function byteCount(u: Uint8Array): number {
  return typedArrayLength.call(u);
}

/**
 * A copy of the bytes `u` holds now. Encoders copy what they validated, so that
 * code running later (a getter of another field) cannot change what they write.
 */
export function snapshotBytes(u: Uint8Array): Buffer {
  const copy = Buffer.alloc(byteCount(u));
  copy.set(u);
  return copy;
}

/**
 * Validates one option for encoding and returns it as a plain option object, each field
 * of the input read exactly once and its data copied: a getter or a Proxy that answers
 * differently on a second read gets no second read.
 */
function snapshotOption(opt: unknown, i: number): HopByHopOption {
  const name = `options[${i}]`;
  if (typeof opt !== 'object' || opt === null) throw invalidArgType(name, 'an object', opt);
  const o = opt as Partial<Record<string, unknown>>;
  const given = o.name;
  const type = o.type;
  // Plain objects from JavaScript callers ({ type: 5, routerAlert: 5 }) are accepted.
  const data = given === undefined || given === 'unknown' ? o.data : undefined;
  const kind = given !== undefined ? given : type === 5 && data === undefined ? 'routerAlert' : type === 0xc2 && data === undefined ? 'jumboPayload' : 'unknown';
  switch (kind) {
    case 'routerAlert':
      if (type !== undefined && type !== 5) throw invalidArgValue(`${name}.type`, type, "must be 5 for a 'routerAlert' option");
      return { type: 5, name: 'routerAlert', routerAlert: checkUint(`${name}.routerAlert`, o.routerAlert, 0xffff) };
    case 'jumboPayload':
      if (type !== undefined && type !== 0xc2) throw invalidArgValue(`${name}.type`, type, "must be 0xc2 for a 'jumboPayload' option");
      return { type: 0xc2, name: 'jumboPayload', jumboPayloadLength: checkUint(`${name}.jumboPayloadLength`, o.jumboPayloadLength, 0xffffffff) };
    case 'unknown': {
      const t = checkUint(`${name}.type`, type, 0xff);
      if (t === 0 || t === 1) throw invalidArgValue(`${name}.type`, t, 'must not be Pad1 (0) or PadN (1); padding is added automatically');
      if (!(data instanceof Uint8Array)) throw invalidArgType(`${name}.data`, 'an instance of Buffer or Uint8Array', data);
      const length = byteCount(data);
      if (length > 255) throw outOfRange(`${name}.data.length`, 'at most 255', length);
      return unknownOption(t, snapshotBytes(data));
    }
    default:
      throw invalidArgValue(`${name}.name`, kind, "must be 'routerAlert', 'jumboPayload' or 'unknown'");
  }
}

/**
 * Validates a list of options to encode and returns a snapshot of it: plain
 * option objects, the list's length and each element read once, data copied.
 */
export function snapshotOptions(options: unknown, name = 'options'): HopByHopOption[] {
  // Every option takes at least 2 bytes of a header of at most 2,048.
  const count = validateList(options, name, 1024, 'an array');
  const list = options as readonly unknown[];
  const out: HopByHopOption[] = [];
  for (let i = 0; i < count; i++) out.push(snapshotOption(list[i], i));
  return out;
}
