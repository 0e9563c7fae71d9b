/**
 * Argument validation: every public entry point checks its arguments here, before any
 * system call, and throws Node's own argument error codes.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { invalidArgType, invalidArgValue, outOfRange } from './errors';

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

/** Data to send: a Buffer, any TypedArray/DataView, or a string (UTF-8). */
export function toBuffer(value: unknown, name = 'data'): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw invalidArgType(name, 'of type string or an instance of Buffer, TypedArray, or DataView', value);
}

/** Splits 'fe80::1%eth0' into address and zone. */
export function splitZone(text: string): { address: string; zone?: string } {
  const at = text.indexOf('%');
  if (at < 0) return { address: text };
  return { address: text.slice(0, at), zone: text.slice(at + 1) };
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
