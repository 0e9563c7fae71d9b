/**
 * The native surface, typed in one place. Everything the C++ layer exports is described
 * here; nothing else in lib/ reaches the addon directly, and nothing else needs `any`.
 * @internal
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A socket address as the native layer reports it. */
export interface NativeSockAddr {
  address: string;
  port: number;
  family: 4 | 6 | 0;
  scopeId: number;
}

/**
 * Called with one batch of received messages, or with an error (count 0). `data` is a pool
 * buffer shared by consecutive batches (offsets in the records are absolute); `meta` is
 * reused and valid only during the call. Returning true says that no view of this batch's
 * `data` outlived the call: the native side may then write the next batch over it. Any
 * other return keeps the bytes as they are for good.
 */
export type NativeMessagesCallback = (count: number, data: Buffer | undefined, meta: Buffer | undefined, error?: Error) => boolean | void;

/**
 * Called with the outcome of queued sends as (id, result) pairs: `results[2k]` is the id
 * the datagram's plan entry carried, `results[2k + 1]` the bytes sent or a negative errno.
 * At most 256 pairs per call (one turn of the event loop).
 */
export type NativeSentCallback = (results: Int32Array) => void;

/** One kernel socket (native/socket.cc). Every method throws a system error on failure. */
export interface NativeSocket {
  readonly fd: number;
  /** Datagrams waiting in the native queue for the socket to become writable. */
  readonly queued: number;
  bind(address: string, port: number, scopeId: number): void;
  /** Binds a netlink socket (family AF_NETLINK) to the multicast groups in `groups` (RTMGRP_* bits). */
  bindNetlink(groups: number): void;
  /** True when connected; false while a stream socket's connect is in progress (see watchConnect). */
  connect(address: string, port: number, scopeId: number): boolean;
  disconnect(): void;
  localAddress(): NativeSockAddr;
  remoteAddress(): NativeSockAddr;
  /** The name of interface `index` in the socket's own namespace (SIOCGIFNAME), '' if none. */
  interfaceName(index: number): string;
  setInt(level: number, name: number, value: number): void;
  getInt(level: number, name: number): number;
  setBuffer(level: number, name: number, value: Buffer | null): void;
  getBuffer(level: number, name: number, maxLength: number): Buffer;
  /** RFC 3678 MCAST_* with group_req / group_source_req, at the socket family's level. */
  groupReq(name: number, ifindex: number, group: string, source?: string | null): void;
  /** ipv6_mreq options: IPV6_JOIN_ANYCAST, IPV6_LEAVE_ANYCAST, IPV6_JOIN_GROUP, ... */
  ipv6Mreq(name: number, address: string, ifindex: number): void;
  /** ip_mreqn options: IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP, IP_MULTICAST_IF. */
  ipMreqn(name: number, group: string | null, localAddress: string | null, ifindex: number): void;
  /** Receives batches of messages (set before startReceive). */
  onmessages?: NativeMessagesCallback;
  /** Receives the results of queued sends. */
  onsent?: NativeSentCallback;
  /**
   * Starts delivering batches of up to `batchSize` messages of up to `slotSize` bytes to
   * `onmessages`. A record without PKTINFO names `deviceIndex` (the device the socket is
   * bound to; 0 for none) as its arrival interface.
   */
  startReceive(batchSize: number, slotSize: number, deviceIndex?: number): void;
  stopReceive(): void;
  /**
   * Sends `count` datagrams in order with sendmmsg, straight from `data`. `plan` holds
   * layouts.sendPlan.fields int32 per datagram (see SendPlanLayout); `refs` the address
   * strings and hop-by-hop headers the plan points at. Each datagram's result lands in its
   * plan entry (`result`): bytes sent, a negative errno, or layouts.sendQueued when it waits
   * in the backpressure queue (its result comes through onsent, with the entry's `id`).
   */
  sendBatch(data: readonly Uint8Array[], plan: Int32Array, refs: ReadonlyArray<string | Uint8Array>, count: number): void;
  /** listen() on a stream socket. */
  listen(backlog: number): void;
  /**
   * After connect() of a stream socket failed with EINPROGRESS: waits on the loop for the
   * outcome and calls `onconnect` once (no error when connected, else the 'connect' error).
   */
  watchConnect(): void;
  /** Receives the outcome of watchConnect(). */
  onconnect?: (error: Error | undefined) => void;
  /** A second descriptor of the same socket (close-on-exec); this object keeps its own. */
  duplicate(): number;
  /** Hands the fd over (to Node's net module); this object no longer owns it. */
  detach(): number;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface NativeSocketConstructor {
  /**
   * `family` 6 or 4, or constants.AF_NETLINK for a netlink socket (type SOCK_RAW, protocol
   * NETLINK_ROUTE; its records carry family 0, its sends go to the kernel with address null).
   */
  new (family: number, type: number, protocol: number, netnsPath: string | null, device: string | null): NativeSocket;
}

export interface NativeLink {
  index: number;
  name: string;
  flags: number;
}

export interface NativeInterfaceAddress {
  name: string;
  family: 4 | 6;
  address: string;
  prefixLength: number;
  scopeId: number;
}

/** Option numbers and flags from the system headers (native/addon.cc). */
export interface NativeConstants {
  readonly [name: string]: number;
}

export interface NativeBinding {
  Socket: NativeSocketConstructor;
  interfaces(netnsPath: string | null): { links: NativeLink[]; addresses: NativeInterfaceAddress[] };
  /** The text of /proc/net/NAME as seen from inside the namespace. */
  netFile(netnsPath: string | null, name: string): string;
  /**
   * getsockname() (or getpeername() with `peer`) of any socket descriptor, with `interface`
   * naming the scope id in the socket's own namespace ('' when none).
   */
  socketAddress(fd: number, peer: boolean): NativeSockAddr & { interface: string };
  /** The text of /proc/sys/net/NAME (a sysctl, e.g. 'ipv6/conf/all/forwarding') inside the namespace. */
  sysctl(netnsPath: string | null, name: string): string;
  constants: NativeConstants;
  /** The record, send plan and queued marker, from the addon's own structs (checked at load). */
  layouts: NativeLayouts;
}

/**
 * The fields of one received-message record, by name. The format itself is defined once,
 * in C++ (MessageRecord, native/socket.h); the addon exports each field's byte offset and
 * the record's size as `layouts.record`, and load checks that every field named here is
 * there. Records are in host byte order: read them through typed arrays (lib/core/records.ts).
 */
const RECORD_FIELDS = [
  'dataOffset',
  'dataLength',
  'flags',
  'family',
  'port',
  'scopeId',
  'ifindex',
  'hopLimit',
  'tclass',
  'hopOptsOffset',
  'hopOptsLength',
  'source',
  'destination',
  'hasDestination',
  'size',
] as const;

/** Byte offsets of a record's fields, and `size`: bytes per record. */
export type RecordLayout = { readonly [K in (typeof RECORD_FIELDS)[number]]: number };

/**
 * The fields of one datagram's entry in sendBatch's plan (SendPlanEntry, native/socket.h),
 * as int32 indexes, and `fields`: int32 per entry. -1 means "none" for every field but port,
 * scope id and id. `id` is chosen by lib/ and comes back with the result of a datagram that
 * waited in the native queue (onsent).
 */
const SEND_PLAN_FIELDS = ['addressRef', 'port', 'scopeId', 'ifindex', 'sourceRef', 'hopLimit', 'tclass', 'hopOptsRef', 'id', 'result', 'fields'] as const;

export type SendPlanLayout = { readonly [K in (typeof SEND_PLAN_FIELDS)[number]]: number };

/** The formats the addon shares with lib/, as the addon exports them. */
export interface NativeLayouts {
  readonly record: RecordLayout;
  readonly sendPlan: SendPlanLayout;
  /** sendBatch's result for a datagram that waits in the backpressure queue (see onsent). */
  readonly sendQueued: number;
}

/** The layouts the addon exports, checked: a field missing or out of place fails the load. */
export function checkLayouts(raw: unknown): NativeLayouts {
  const fail = (what: string): never => {
    throw new Error(`ip6sock: the addon's ${what}; it does not match this lib, rebuild the addon`);
  };
  const l = raw as Partial<{ record: Partial<Record<string, unknown>>; sendPlan: Partial<Record<string, unknown>>; sendQueued: unknown }> | undefined;
  if (typeof l !== 'object' || l === null) return fail('layouts are missing');
  const table = <K extends string>(name: string, value: unknown, fields: readonly K[], limit: string): { readonly [F in K]: number } => {
    if (typeof value !== 'object' || value === null) return fail(`layouts.${name} is missing`);
    const t = value as Partial<Record<string, unknown>>;
    const out = {} as { [F in K]: number };
    for (const f of fields) {
      const v = t[f];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`layouts.${name}.${f} is missing`);
      out[f] = v as number;
    }
    for (const f of fields) if (f !== limit && out[f] >= out[limit as K]) fail(`layouts.${name}.${f} lies outside the ${limit}`);
    return Object.freeze(out);
  };
  const record = table('record', l.record, RECORD_FIELDS, 'size');
  const sendPlan = table('sendPlan', l.sendPlan, SEND_PLAN_FIELDS, 'fields');
  if (typeof l.sendQueued !== 'number' || !Number.isInteger(l.sendQueued) || l.sendQueued >= 0) fail('layouts.sendQueued is missing');
  return Object.freeze({ record, sendPlan, sendQueued: l.sendQueued as number });
}

type Loader = (dir: string) => NativeBinding;

/** The package root (where binding.gyp sits), from lib/ under ts-jest or dist/lib when compiled. */
function packageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'binding.gyp'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`ip6sock: cannot find the package root above ${__dirname}`);
    dir = up;
  }
  return dir;
}

let binding: NativeBinding | undefined;

/** The addon, loaded once (a prebuild if one fits, else the local build). */
export function native(): NativeBinding {
  if (binding === undefined) {
    // node-gyp-build ships no types; its whole interface is this one function.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as Loader;
    const loaded = load(packageRoot());
    // Replaced by the checked copy before anything else sees the binding.
    loaded.layouts = checkLayouts(loaded.layouts);
    binding = loaded;
  }
  return binding;
}

/** The record and send-plan layouts (loads the addon). */
export function layouts(): NativeLayouts {
  return native().layouts;
}

/** Shorthand for the header constants. */
export function constants(): NativeConstants {
  return native().constants;
}
