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

/** Called with the results (bytes, or a negative errno) of queued sends, in queue order. */
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
   * SendPlan.fields int32 per datagram (see SendPlan); `refs` the address strings and
   * hop-by-hop headers the plan points at. Each datagram's result lands in its plan entry
   * (SendPlan.result): bytes sent, a negative errno, or INT32_MIN when it waits in the
   * backpressure queue (its result comes through onsent).
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
}

/**
 * Offsets of one received-message record in the metadata buffer (mirrors `rec::` in
 * native/socket.h; change both together).
 */
export const Record = {
  dataOffset: 0,
  dataLength: 4,
  flags: 8,
  family: 12,
  port: 14,
  scopeId: 16,
  ifindex: 20,
  hopLimit: 24,
  tclass: 28,
  hopOptsOffset: 32,
  hopOptsLength: 36,
  source: 40,
  destination: 56,
  hasDestination: 72,
  size: 76,
} as const;

/**
 * The record's 32-bit fields as indexes into an Int32Array over the metadata buffer (the
 * native side writes them in host byte order). Family and port share one word: read them
 * through a Uint16Array at RecordHalf.family / RecordHalf.port.
 */
export const RecordWord = {
  dataOffset: Record.dataOffset / 4,
  dataLength: Record.dataLength / 4,
  flags: Record.flags / 4,
  scopeId: Record.scopeId / 4,
  ifindex: Record.ifindex / 4,
  hopLimit: Record.hopLimit / 4,
  tclass: Record.tclass / 4,
  hopOptsOffset: Record.hopOptsOffset / 4,
  hopOptsLength: Record.hopOptsLength / 4,
  source: Record.source / 4,
  destination: Record.destination / 4,
  hasDestination: Record.hasDestination / 4,
  size: Record.size / 4,
} as const;

/** The record's 16-bit fields as indexes into a Uint16Array over the metadata buffer. */
export const RecordHalf = { family: Record.family / 2, port: Record.port / 2, size: Record.size / 2 } as const;

/**
 * Layout of one datagram's entry in sendBatch's plan, in int32 fields (native/socket.h,
 * namespace plan); -1 means "none" for every field but port and scope id.
 */
export const SendPlan = {
  addressRef: 0,
  port: 1,
  scopeId: 2,
  ifindex: 3,
  sourceRef: 4,
  hopLimit: 5,
  tclass: 6,
  hopOptsRef: 7,
  /** Written by sendBatch: bytes sent, a negative errno, or INT32_MIN while it waits in the queue. */
  result: 8,
  fields: 9,
} as const;

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
    binding = load(packageRoot());
    if (binding.constants.RECORD_SIZE !== Record.size) {
      throw new Error(`ip6sock: native record size ${binding.constants.RECORD_SIZE} does not match lib (${Record.size}); rebuild the addon`);
    }
    if (binding.constants.SEND_PLAN_FIELDS !== SendPlan.fields) {
      throw new Error(`ip6sock: native send plan of ${binding.constants.SEND_PLAN_FIELDS} fields does not match lib (${SendPlan.fields}); rebuild the addon`);
    }
  }
  return binding;
}

/** Shorthand for the header constants. */
export function constants(): NativeConstants {
  return native().constants;
}
