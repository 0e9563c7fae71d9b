/**
 * The parts of ip6sock the bench drives, found at run time.
 *
 * UdpSocket is part of the library from the start and is imported normally where it is
 * used. MulticastSocket and RouterAlertSocket arrive in their own files (lib/sockets/multicast.ts,
 * lib/sockets/routeralert/socket.ts) and may not exist, or not be exported yet, in the tree being measured.
 * Rather than fail to compile, or fake a number, the bench looks for them here: a scenario
 * whose class is missing reports "not available" and why. Only the few members the bench
 * calls are described, structurally, so a class that grows more API still fits.
 * @packageDocumentation
 */
import type { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The package root (where binding.gyp sits), from bench/ or from the compiled bench/bin/js/bench/. */
export function packageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'binding.gyp'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`bench: cannot find the package root above ${__dirname}`);
    dir = up;
  }
  return dir;
}

/** A class the bench found, or why it could not use one. */
export type Availability<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** What the bench uses of a MulticastSocket. */
export interface MulticastSocketLike extends EventEmitter {
  join(group: string, options: { interface: string | number }): unknown;
  close(): Promise<void>;
  readonly stats: { readonly kernelDrops: number };
}

/** `new MulticastSocket({ port, receiveBufferSize })`, or lean (see the receiver role's --lean). */
export type MulticastSocketClass = new (options: {
  port: number;
  receiveBufferSize?: number;
  device?: string;
  receivePacketInfo?: boolean;
  receiveHopLimit?: boolean;
}) => MulticastSocketLike;

/** What the bench uses of a RouterAlertSocket: a 'packet' event and forward(packet). */
export interface RouterAlertSocketLike extends EventEmitter {
  forward(packet: unknown): Promise<unknown>;
  close(): Promise<void>;
  readonly stats: { readonly kernelDrops: number };
}

/** `new RouterAlertSocket({ value, receiveBufferSize })`. */
export type RouterAlertSocketClass = new (options: { value: number; receiveBufferSize?: number }) => RouterAlertSocketLike;

/** Which of `methods` the class `value` lacks (all of them if it is no class). */
function missingMethods(value: unknown, methods: readonly string[]): string[] {
  const proto: unknown = typeof value === 'function' ? (value as { prototype?: unknown }).prototype : undefined;
  if (typeof proto !== 'object' || proto === null) return [...methods];
  return methods.filter((m) => typeof (proto as Record<string, unknown>)[m] !== 'function');
}

/**
 * Finds `exportName` in the library next to this file (the compiled lib/ beside the compiled
 * bench, or the sources under ts-jest): first in its index (the public API), else in
 * `lib/<file>` provided `lib/<file>.ts` exists in the source tree (a compiled file left over
 * from a source that is gone does not count). The class must have every one of `methods`.
 */
export function findClass(exportName: string, file: string, methods: readonly string[]): Availability<unknown> {
  const libDir = path.join(__dirname, '..', 'lib');
  const candidates: string[] = [path.join(libDir, 'index')];
  const source = path.join(packageRoot(), 'lib', `${file}.ts`);
  if (fs.existsSync(source)) candidates.push(path.join(libDir, file));
  for (const modulePath of candidates) {
    try {
      require.resolve(modulePath);
    } catch {
      continue; // not compiled (yet)
    }
    // A plain require: the module may not exist at compile time, which is the point.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod: unknown = require(modulePath);
    const value: unknown = typeof mod === 'object' && mod !== null ? (mod as Record<string, unknown>)[exportName] : undefined;
    if (value === undefined) continue;
    const missing = missingMethods(value, methods);
    if (missing.length > 0) {
      return { ok: false, reason: `${exportName} in ${path.relative(packageRoot(), modulePath)} lacks ${missing.map((m) => `${m}()`).join(', ')}` };
    }
    return { ok: true, value };
  }
  return {
    ok: false,
    reason: fs.existsSync(source) ? `lib/${file}.ts does not export ${exportName}` : `lib/${file}.ts does not exist yet`,
  };
}

/** MulticastSocket, if the library has one. */
export function multicastSocket(): Availability<MulticastSocketClass> {
  const found = findClass('MulticastSocket', 'sockets/multicast', ['join', 'close', 'on']);
  return found.ok ? { ok: true, value: found.value as MulticastSocketClass } : found;
}

/** RouterAlertSocket, if the library has one. */
export function routerAlertSocket(): Availability<RouterAlertSocketClass> {
  const found = findClass('RouterAlertSocket', 'sockets/routeralert/socket', ['forward', 'close', 'on']);
  return found.ok ? { ok: true, value: found.value as RouterAlertSocketClass } : found;
}
