/**
 * Argument validation: every public entry point checks its arguments here, before any
 * system call, and throws Node's own argument error codes.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { types } from 'node:util';
import { invalidArgType, invalidArgValue, outOfRange, stateError } from './errors';

/** Address family: 6 for IPv6, 4 for IPv4. */
export type Family = 4 | 6;

export function validateObject<T extends object>(value: unknown, name: string): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidArgType(name, 'of type object', value);
  return value as T;
}

export function validateOptionalObject<T extends object>(value: unknown, name: string): Partial<T> {
  if (value === undefined) return {};
  return validateObject<T>(value, name);
}

/**
 * Refuses an options object that has a key the callee does not know: a misspelt option
 * (`{ prot: 7017 }`) would otherwise be ignored and the call would do something else than
 * asked (bind a random port). ERR_INVALID_ARG_VALUE names the key and the nearest known one.
 * Only own enumerable string keys count, as with object spread.
 */
export function validateOptionKeys(options: object, known: readonly string[], name = 'options'): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const nearest = nearestName(key, known);
    const hint = nearest === undefined ? `known options: ${known.join(', ')}` : `the nearest known one is '${nearest}'`;
    throw invalidArgValue(`${name}.${key}`, (options as Record<string, unknown>)[key], `is not an option here; ${hint}`);
  }
}

/** Every key of an options interface T set to true, and no other key (see optionKeys()). */
export type OptionKeyList<T extends object> = { readonly [K in keyof Required<T>]: true };

/**
 * The keys of an options interface, as validateOptionKeys() takes them. Written as an object
 * with every key set to true so that the compiler checks the list against the interface:
 * a key missing from it, or one the interface does not have, is a compile error.
 */
export function optionKeys<T extends object>(keys: OptionKeyList<T>): readonly string[] {
  return Object.freeze(Object.keys(keys));
}

/** The known name closest to `key` by edit distance, if it is close enough to be a likely typo. */
function nearestName(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/** Levenshtein distance (insertions, deletions, substitutions), for short option names. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

export function validateInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

export function validateString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  return value;
}

export function validatePort(value: unknown, name = 'port'): number {
  return validateInteger(value, name, 0, 65535);
}

export function validateFamily(value: unknown, name = 'family'): Family {
  if (value !== 4 && value !== 6) {
    if (typeof value !== 'number') throw invalidArgType(name, 'the number 4 or 6', value);
    throw invalidArgValue(name, value, 'must be 4 or 6');
  }
  return value;
}

/**
 * An array argument, checked before anything is made for it: at most `max` elements (a
 * sparse array's length is free to give, and a results array or a loop of that length is
 * not), and no holes (a hole would pass as `undefined`, or be skipped by forEach/map).
 * Returns the length as read once (a Proxy may answer differently each time): callers loop
 * up to it, never to a fresh read. Costs a loop over the elements, bounded by `max`.
 */
export function validateList(value: unknown, name: string, max: number, expected: string): number {
  if (!Array.isArray(value)) throw invalidArgType(name, expected, value);
  const list = value as readonly unknown[];
  const length = list.length;
  if (length > max) throw outOfRange(`${name}.length`, `at most ${max}`, length);
  for (let i = 0; i < length; i++) {
    if (!(i in list)) throw invalidArgValue(`${name}[${i}]`, undefined, 'is a hole: a sparse array is not accepted, every element must be given');
  }
  return length;
}

// The engine's own getters, read once: a view's `byteLength`, `buffer` or `byteOffset` can be
// shadowed by an own property or a subclass, and what is sent must be what the view really
// spans (the native layer reads the bytes through the engine, not through those properties).
type Getter = (this: unknown) => unknown;
function getter(proto: object, key: string): Getter {
  const get = Object.getOwnPropertyDescriptor(proto, key)?.get;
  if (get === undefined) throw new Error(`no ${key} getter`);
  return get as Getter;
}
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayByteLength = getter(typedArrayProto, 'byteLength');
const typedArrayByteOffset = getter(typedArrayProto, 'byteOffset');
const typedArrayBuffer = getter(typedArrayProto, 'buffer');
const dataViewByteLength = getter(DataView.prototype, 'byteLength');
const dataViewByteOffset = getter(DataView.prototype, 'byteOffset');
const dataViewBuffer = getter(DataView.prototype, 'buffer');
// %TypedArray%.prototype.at validates its receiver: it throws for a view that is detached or
// out of bounds of its shrunk resizable buffer (both of which report 0 bytes otherwise).
const typedArrayAt = (Object.getPrototypeOf(Uint8Array.prototype) as { at: (this: unknown, index: number) => unknown }).at;
const arrayBufferDetached = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'detached')?.get as Getter | undefined;

/** Bytes a Buffer really spans now: 0 once its ArrayBuffer is detached or shrunk below it. */
export function byteLengthOf(buf: Uint8Array): number {
  return typedArrayByteLength.call(buf) as number;
}

/** True if `buffer` (an ArrayBuffer or SharedArrayBuffer) was detached (transferred). */
function isDetached(buffer: ArrayBufferLike): boolean {
  if (types.isSharedArrayBuffer(buffer)) return false;
  if (arrayBufferDetached !== undefined) return arrayBufferDetached.call(buffer) === true;
  // Before ArrayBuffer.prototype.detached (Node 20): a view of a detached buffer cannot be made.
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * Data to send: a Buffer, any TypedArray/DataView, or a string (UTF-8). Anything else,
 * including a Proxy of a view (which is not a view: the engine cannot read its bytes), is
 * ERR_INVALID_ARG_TYPE; a view whose ArrayBuffer was detached (transferred) is
 * ERR_INVALID_STATE, not a datagram of 0 bytes.
 */
export function toBuffer(value: unknown, name = 'data'): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  // ArrayBuffer.isView looks at the object itself (a Proxy is not a view); Buffer.isBuffer
  // only at its prototype chain, which a Proxy forwards.
  if (!ArrayBuffer.isView(value)) {
    const proxy = types.isProxy(value) ? ' (a Proxy of one is not one)' : '';
    throw invalidArgType(name, `of type string or an instance of Buffer, TypedArray, or DataView${proxy}`, value);
  }
  const dataView = types.isDataView(value);
  const buffer = (dataView ? dataViewBuffer : typedArrayBuffer).call(value) as ArrayBufferLike;
  // A TypedArray of a detached buffer says 0 bytes; a DataView's getters throw.
  let length = -1;
  try {
    length = (dataView ? dataViewByteLength : typedArrayByteLength).call(value) as number;
  } catch {
    // Left at -1: detached, or out of bounds of a shrunk resizable buffer.
  }
  if (length === 0 && !dataView) {
    try {
      typedArrayAt.call(value, 0);
    } catch {
      length = -1; // detached, or a fixed-length view its shrunk buffer no longer covers
    }
  }
  if (length <= 0 && isDetached(buffer)) {
    throw stateError('ERR_INVALID_STATE', `Invalid state: the "${name}" argument is a view of a detached ArrayBuffer (it was transferred): there are no bytes to send`);
  }
  if (length < 0) throw stateError('ERR_INVALID_STATE', `Invalid state: the "${name}" argument is a view outside its ArrayBuffer (which was resized): there are no bytes to send`);
  if (!dataView && Buffer.isBuffer(value)) return value;
  return Buffer.from(buffer, (dataView ? dataViewByteOffset : typedArrayByteOffset).call(value) as number, length);
}

/** Splits 'fe80::1%eth0' into address and zone. */
export function splitZone(text: string): { address: string; zone?: string } {
  const at = text.indexOf('%');
  if (at < 0) return { address: text };
  return { address: text.slice(0, at), zone: text.slice(at + 1) };
}

/**
 * The interface a zone names ('fe80::1%eth0' -> 'eth0', 'fe80::1%2' -> 2): digits are an
 * index (as a number), anything else an interface name, each checked as such. `name`
 * names the argument in errors ("address zone").
 */
export function parseZone(zone: string, name: string): number | string {
  if (/^\d+$/.test(zone)) return validateInteger(Number(zone), name, 1, 0x7fffffff);
  return validateInterfaceName(zone, name);
}

/**
 * Checks that `value` is an IP address of `family` (a `%zone` is allowed for IPv6 when
 * `allowZone`), and returns its parts.
 */
export function validateAddress(value: unknown, name: string, family: Family, allowZone = true): { address: string; zone?: string } {
  const text = validateString(value, name);
  const parts = family === 6 && allowZone ? splitZone(text) : { address: text };
  if (parts.zone !== undefined && parts.zone.length === 0) throw invalidArgValue(name, value, 'has an empty zone after %');
  const ok = family === 6 ? net.isIPv6(parts.address) : net.isIPv4(parts.address);
  if (!ok) throw invalidArgValue(name, value, `must be a valid IPv${family} address`);
  return parts;
}

/** An AbortSignal, or undefined. */
export function validateSignal(value: unknown, name = 'signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || typeof (value as AbortSignal).aborted !== 'boolean' || typeof (value as AbortSignal).addEventListener !== 'function') {
    throw invalidArgType(name, 'an instance of AbortSignal', value);
  }
  return value as AbortSignal;
}

/** Names a network namespace: a name under /run/netns, or a path such as /proc/PID/ns/net. */
export function netnsPath(value: unknown, name = 'netns'): string | null {
  if (value === undefined || value === null) return null;
  const text = validateString(value, name);
  if (text.length === 0 || text.includes('\0')) throw invalidArgValue(name, value, 'must be a namespace name or a path');
  if (!text.includes('/') && (text === '.' || text === '..')) throw invalidArgValue(name, value, 'must be a namespace name or a path');
  const path = text.includes('/') ? text : `/run/netns/${text}`;
  // The native layer open()s the path on the thread that runs JavaScript: a FIFO would block
  // that open() until some writer came, and a device may block too. Namespace files (nsfs,
  // also through /run/netns bind mounts and /proc/PID/ns/net links) stat as regular files.
  // A path that cannot be stat()ed is left to the native open(), whose errno says why.
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(path, { throwIfNoEntry: false });
  } catch {
    stat = undefined;
  }
  if (stat !== undefined && !stat.isFile()) throw invalidArgValue(name, value, 'must name a network namespace file (/run/netns/NAME or /proc/PID/ns/net), not a directory, FIFO or device');
  return path;
}

/** An interface name as the kernel accepts it (IFNAMSIZ - 1 bytes, no '/', ':' or space). */
export function validateInterfaceName(value: string, name: string): string {
  if (value.length === 0 || Buffer.byteLength(value) > 15 || /[/:\s\0]/.test(value)) {
    throw invalidArgValue(name, value, 'must be an interface name of 1 to 15 bytes without "/", ":" or spaces');
  }
  return value;
}
