/**
 * RawSocket: a raw IPv6 (or IPv4) socket for one protocol: ICMPv6 with a type filter,
 * any protocol with a kernel-computed checksum, or whole packets sent header included.
 * Received messages are reported exactly like UdpSocket's, with the arrival interface,
 * destination and hop limit of every packet.
 *
 * What a raw AF_INET6 socket receives starts at the protocol's own header (the ICMPv6 type,
 * the UDP ports, ...): the IPv6 header is NOT included, unlike IPv4 raw sockets, whose
 * messages start with the IPv4 header. Extension-header data comes as control data
 * (`receiveHopByHop`). A socket for IPPROTO_RAW (255) never receives ordinary traffic.
 * @packageDocumentation
 */
import { attempt, ErrorContext, interfaceLabel, invalidArgType, invalidArgValue } from '../errors';
import { isMulticast } from '../codec/ipv6addr';
import type { InterfaceSpec } from '../links/types';
import { constants } from '../core/native';
import { SOCKET_OPTION_KEYS, type SocketOptions } from './socket';
import type { Membership } from './multicast';
import { DatagramSocket, type DatagramSocketEvents, type SendOptions } from './datagram';
import { eventMap, type Events } from '../core/events';
import {
  optionKeys,
  toBuffer,
  validateAddress,
  validateList,
  validateBoolean,
  validateFamily,
  validateInteger,
  validateObject,
  validateOptionKeys,
  type Family,
} from '../validate';

/** ICMPv6 message types by name (RFC 4443, RFC 4861, RFC 2710, RFC 3810), for filters. */
export const icmpv6Types = Object.freeze({
  'destination-unreachable': 1,
  'packet-too-big': 2,
  'time-exceeded': 3,
  'parameter-problem': 4,
  'echo-request': 128,
  'echo-reply': 129,
  'mld-query': 130,
  'mld-report': 131,
  'mld-done': 132,
  'router-solicitation': 133,
  'router-advertisement': 134,
  'neighbor-solicitation': 135,
  'neighbor-advertisement': 136,
  redirect: 137,
  'mldv2-report': 143,
} as const);

/** A named ICMPv6 type (see {@link icmpv6Types}). */
export type Icmpv6TypeName = keyof typeof icmpv6Types;

/** An ICMPv6 type by name or number (0-255). */
export type Icmpv6TypeSpec = Icmpv6TypeName | number;

/**
 * Which ICMPv6 types reach the socket (ICMP6_FILTER): `{ pass: [...] }` lets only those
 * through, `{ block: [...] }` lets everything else through. `{ block: [] }` passes all.
 */
export type IcmpFilter = { pass: readonly Icmpv6TypeSpec[]; block?: undefined } | { block: readonly Icmpv6TypeSpec[]; pass?: undefined };

export interface RawSocketOptions extends SocketOptions {
  /** 6 (default) or 4. */
  family?: Family;
  /** The protocol number, 1-255: 58 ICMPv6, 17 UDP, 255 IPPROTO_RAW (send-only, header included). */
  protocol: number;
  /** Bind to this local address: receive only packets sent to it (and send from it). */
  address?: string;
  /** ICMPv6 sockets only: which message types to receive. Default: all. */
  icmpFilter?: IcmpFilter;
  /**
   * IPv6, not ICMPv6 (which always has the kernel checksum at offset 2): the offset of the
   * 16-bit checksum in the protocol header for the kernel to fill in on send and verify on
   * receive (IPV6_CHECKSUM), an even number; -1 (default) for none.
   */
  checksumOffset?: number;
  /**
   * Send whole packets, IP header included (IPV6_HDRINCL / IP_HDRINCL): the kernel adds no
   * header and does not check source, payload length or checksums. Always on for
   * protocol 255 on IPv6.
   */
  headerIncluded?: boolean;
  /** Deliver the hop-by-hop options header of received packets in info.hopByHop (IPv6). */
  receiveHopByHop?: boolean;
  /** Deliver the traffic class (TOS) of received packets in info.trafficClass. */
  receiveTrafficClass?: boolean;
  /**
   * Hop limit (IPV6_UNICAST_HOPS / IP_TTL) of every unicast packet sent, 0-255 (IPv4:
   * 1-255; ignored when the header is included); a per-packet `hopLimit` wins. Later:
   * setHopLimit().
   */
  hopLimit?: number;
}

/** Where one raw packet goes. */
export interface RawSendOptions {
  /** Destination address; a link-local one may carry %interface. */
  address: string;
  /** Leave through this interface (index or name). */
  interface?: InterfaceSpec;
  /** Source address (ignored when the header is included). */
  source?: string;
  /** Hop limit (TTL), 0-255 (ignored when the header is included). */
  hopLimit?: number;
  /** Traffic class (TOS), 0-255 (ignored when the header is included). */
  trafficClass?: number;
  /** Hop-by-hop options (IPv6, not with the header included; needs CAP_NET_RAW). */
  hopByHop?: SendOptions['hopByHop'];
}

/** Which interface (and for which source) a multicast join or leave is for. */
export interface RawGroupOptions {
  /** Interface index or name. */
  interface: InterfaceSpec;
  /** Source-specific membership: receive the group only from this source. */
  source?: string;
}

const RAW_KEYS = optionKeys<RawSocketOptions>({
  ...SOCKET_OPTION_KEYS,
  family: true,
  protocol: true,
  address: true,
  icmpFilter: true,
  checksumOffset: true,
  headerIncluded: true,
  receiveHopByHop: true,
  receiveTrafficClass: true,
  hopLimit: true,
});
const RAW_SEND_KEYS = optionKeys<RawSendOptions>({ address: true, interface: true, source: true, hopLimit: true, trafficClass: true, hopByHop: true });
const RAW_GROUP_KEYS = optionKeys<RawGroupOptions>({ interface: true, source: true });


const ICMP_FILTER_KEYS = optionKeys<IcmpFilter>({ pass: true, block: true });

/** The 8 x 32-bit ICMP6_FILTER value for a filter: a SET bit BLOCKS that type. */
export function icmpFilterBytes(filter: unknown, name = 'filter'): Buffer {
  const f = validateObject<Partial<Record<'pass' | 'block', unknown>>>(filter, name);
  validateOptionKeys(f, ICMP_FILTER_KEYS, name);
  // Each field read once: a getter must not pass the check with one answer and give another.
  const { pass, block } = f;
  const passing = pass !== undefined;
  if (passing === (block !== undefined)) throw invalidArgValue(name, filter, 'must have exactly one of "pass" or "block"');
  const listName = `${name}.${passing ? 'pass' : 'block'}`;
  // 256 types; a longer list can only repeat them.
  const list: unknown = passing ? pass : block;
  const count = validateList(list, listName, 1024, 'an array of ICMPv6 type names or numbers');
  // u32 words in host byte order, as glibc's ICMP6_FILTER_SETBLOCK writes them.
  const words = new Uint32Array(8);
  words.fill(passing ? 0xffffffff : 0);
  for (let i = 0; i < count; i++) {
    const type = icmpv6Type((list as readonly unknown[])[i], `${listName}[${i}]`);
    const bit = 1 << (type & 31);
    if (passing) words[type >> 5] &= ~bit;
    else words[type >> 5] |= bit;
  }
  return Buffer.from(words.buffer);
}

function icmpv6Type(spec: unknown, name: string): number {
  if (typeof spec === 'string') {
    const type = (icmpv6Types as Record<string, number>)[spec];
    if (type === undefined || !Object.prototype.hasOwnProperty.call(icmpv6Types, spec)) {
      throw invalidArgValue(name, spec, `must be an ICMPv6 type number or one of ${Object.keys(icmpv6Types).join(', ')}`);
    }
    return type;
  }
  if (typeof spec === 'number') return validateInteger(spec, name, 0, 255);
  throw invalidArgType(name, 'an ICMPv6 type name (string) or number', spec);
}


/** The source of a source-specific membership: a unicast address of the socket's family, no zone. */
function sourceAddress(value: unknown, family: Family): string {
  const address = validateAddress(value, 'options.source', family, false).address;
  if (isMulticast(address) || address === '::' || address === '0.0.0.0') throw invalidArgValue('options.source', value, 'must be a unicast address');
  return address;
}

/** Events of a RawSocket: those of a UdpSocket ('port' is 0 in every info). */
export interface RawSocketEvents extends DatagramSocketEvents {}

/**
 * A raw socket for one protocol. Needs CAP_NET_RAW (opening it without fails with EPERM,
 * `capability: 'CAP_NET_RAW'`).
 *
 * It receives every packet of its protocol that the host accepts, multicast included
 * (groups joined by anyone on the host): Linux filters raw sockets by address only when
 * they are bound (`address`), and ICMPv6 ones by `icmpFilter`.
 *
 * Events: 'message' (data, info) as UdpSocket's ('port' is 0), 'error', 'close'.
 */
export class RawSocket extends DatagramSocket {
  /** @internal */
  declare readonly [eventMap]: Events<RawSocketEvents>;

  /** The protocol number the socket was opened for. */
  readonly protocol: number;
  /** True when sends carry their own IP header. */
  readonly headerIncluded: boolean;

  constructor(options: RawSocketOptions) {
    const opts = validateObject<RawSocketOptions>(options, 'options');
    validateOptionKeys(opts, RAW_KEYS, 'options');
    const family = opts.family === undefined ? 6 : validateFamily(opts.family, 'options.family');
    const protocol = validateInteger(opts.protocol, 'options.protocol', 1, 255);
    // Every option is checked before the socket exists: a bad one costs no system call.
    const plan = planOptions(opts, family, protocol);
    super({ family, type: constants().SOCK_RAW, protocol }, opts, 'message');
    this.protocol = protocol;
    this.headerIncluded = plan.headerIncluded;
    try {
      this.configure(plan);
    } catch (err) {
      void this.close();
      throw err;
    }
  }

  /**
   * Sends one packet: the protocol header and data (the kernel adds the IP header), or the
   * whole packet when the socket has `headerIncluded`. Resolves with the bytes sent. A
   * failure nobody handles (no `await`, `.then` or `.catch` by the next tick after it is
   * known) goes to `'error'`, as for UdpSocket.send().
   */
  send(data: Buffer | Uint8Array | string, options: RawSendOptions): Promise<number> {
    try {
      this.assertOpen();
      const buf = toBuffer(data);
      const opts = validateObject<RawSendOptions>(options, 'options');
      validateOptionKeys(opts, RAW_SEND_KEYS, 'options');
      const dest = this.destination(opts.address, 'options.address');
      const ctl = this.control(opts);
      const context: ErrorContext = { address: opts.address, netns: this.netns };
      if (opts.interface !== undefined) context.interface = opts.interface;
      return this.sendNative(buf, dest.address, 0, dest.scopeId, ctl, context);
    } catch (err) {
      return this.failedSend(err);
    }
  }

  /** Replaces the ICMPv6 filter (ICMPv6 sockets only). */
  setIcmpFilter(filter: IcmpFilter): void {
    this.assertOpen();
    const c = constants();
    if (this.family !== 6 || this.protocol !== c.IPPROTO_ICMPV6) {
      throw invalidArgValue('filter', filter, 'applies only to ICMPv6 sockets (family 6, protocol 58)');
    }
    this.applyIcmpFilter(icmpFilterBytes(filter, 'filter'));
  }

  /**
   * Joins a multicast group on one interface (MCAST_JOIN_GROUP), e.g. ff02::16 to hear
   * MLDv2 reports. This makes the host a member, so the kernel accepts packets sent to the
   * group there; Linux then hands them to every raw socket of the protocol that is not bound
   * to an address (it checks memberships per socket only for bound raw IPv6 sockets), and
   * the membership ends when the socket closes. With `source` the membership is
   * source-specific (MCAST_JOIN_SOURCE_GROUP); Linux does not filter by source what it hands
   * a raw socket that is not bound to an address. Returns the membership added, as
   * MulticastSocket.join() does; the kernel's errno (EADDRINUSE for a membership held
   * already) is the error.
   */
  join(group: string, options: RawGroupOptions): Membership[] {
    return this.group('join', group, options);
  }

  /** Leaves a group joined with join() (with the same `source`); returns the membership removed. */
  leave(group: string, options: RawGroupOptions): Membership[] {
    return this.group('leave', group, options);
  }

  private group(op: 'join' | 'leave', group: string, options: RawGroupOptions): Membership[] {
    this.assertOpen();
    const address = validateAddress(group, 'group', this.family, false).address;
    if (!isMulticast(address)) throw invalidArgValue('group', group, 'must be a multicast address');
    const opts = validateObject<RawGroupOptions>(options, 'options');
    validateOptionKeys(opts, RAW_GROUP_KEYS, 'options');
    const source = opts.source === undefined ? undefined : sourceAddress(opts.source, this.family);
    const iface = this.directory.resolve(opts.interface, 'options.interface');
    const option = source === undefined ? (op === 'join' ? 'MCAST_JOIN_GROUP' : 'MCAST_LEAVE_GROUP') : op === 'join' ? 'MCAST_JOIN_SOURCE_GROUP' : 'MCAST_LEAVE_SOURCE_GROUP';
    const c = constants();
    const what = source === undefined ? address : `${address} from ${source}`;
    attempt({ option, address: what, interface: interfaceLabel(iface), netns: this.netns }, () => this.handle.groupReq(c[option], iface.index, address, source ?? null));
    return [source === undefined ? { group: address, interface: iface } : { group: address, interface: iface, source }];
  }

  private applyIcmpFilter(bytes: Buffer): void {
    const c = constants();
    attempt({ option: 'ICMP6_FILTER', netns: this.netns }, () => this.handle.setBuffer(c.IPPROTO_ICMPV6, c.ICMP6_FILTER, bytes));
  }

  private configure(plan: Plan): void {
    const c = constants();
    if (plan.icmpFilter !== undefined) this.applyIcmpFilter(plan.icmpFilter);
    if (plan.checksumOffset !== undefined) this.setInt(c.IPPROTO_IPV6, c.IPV6_CHECKSUM, plan.checksumOffset, 'IPV6_CHECKSUM');
    if (this.family === 6) {
      if (plan.headerIncluded && this.protocol !== c.IPPROTO_RAW) this.setInt(c.IPPROTO_IPV6, c.IPV6_HDRINCL, 1, 'IPV6_HDRINCL');
      this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVPKTINFO, 1, 'IPV6_RECVPKTINFO');
      this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVHOPLIMIT, 1, 'IPV6_RECVHOPLIMIT');
      if (plan.receiveTrafficClass) this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVTCLASS, 1, 'IPV6_RECVTCLASS');
      if (plan.receiveHopByHop) this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVHOPOPTS, 1, 'IPV6_RECVHOPOPTS');
    } else {
      if (plan.headerIncluded) this.setInt(c.IPPROTO_IP, c.IP_HDRINCL, 1, 'IP_HDRINCL');
      this.setInt(c.IPPROTO_IP, c.IP_PKTINFO, 1, 'IP_PKTINFO');
      this.setInt(c.IPPROTO_IP, c.IP_RECVTTL, 1, 'IP_RECVTTL');
      if (plan.receiveTrafficClass) this.setInt(c.IPPROTO_IP, c.IP_RECVTOS, 1, 'IP_RECVTOS');
    }
    if (plan.hopLimit !== undefined) this.applyHopLimit(plan.hopLimit, 'options.hopLimit');
    if (plan.address !== undefined) {
      const local = this.destination(plan.address, 'options.address');
      attempt({ address: plan.address, netns: this.netns }, () => this.handle.bind(local.address, 0, local.scopeId));
    }
  }
}

/** The socket options, validated, as they will be applied. */
interface Plan {
  headerIncluded: boolean;
  icmpFilter?: Buffer;
  checksumOffset?: number;
  receiveTrafficClass: boolean;
  receiveHopByHop: boolean;
  address?: string;
  hopLimit?: number;
}

function planOptions(opts: RawSocketOptions, family: Family, protocol: number): Plan {
  const c = constants();
  const icmpv6 = family === 6 && protocol === c.IPPROTO_ICMPV6;
  const flag = (value: unknown, name: string): boolean => value !== undefined && validateBoolean(value, name);
  const plan: Plan = {
    // IPPROTO_RAW on IPv6 always takes whole packets (the kernel sets hdrincl itself).
    headerIncluded: (family === 6 && protocol === c.IPPROTO_RAW) || flag(opts.headerIncluded, 'options.headerIncluded'),
    receiveTrafficClass: flag(opts.receiveTrafficClass, 'options.receiveTrafficClass'),
    receiveHopByHop: flag(opts.receiveHopByHop, 'options.receiveHopByHop'),
  };
  if (plan.receiveHopByHop && family !== 6) throw invalidArgValue('options.receiveHopByHop', true, 'is IPv6 only');
  if (opts.icmpFilter !== undefined) {
    if (!icmpv6) throw invalidArgValue('options.icmpFilter', opts.icmpFilter, 'applies only to ICMPv6 sockets (family 6, protocol 58)');
    plan.icmpFilter = icmpFilterBytes(opts.icmpFilter, 'options.icmpFilter');
  }
  if (opts.checksumOffset !== undefined) {
    if (family !== 6) throw invalidArgValue('options.checksumOffset', opts.checksumOffset, 'is IPv6 only');
    if (icmpv6) throw invalidArgValue('options.checksumOffset', opts.checksumOffset, 'cannot be set for ICMPv6, whose checksum the kernel always computes at offset 2');
    const offset = validateInteger(opts.checksumOffset, 'options.checksumOffset', -1, 65534);
    if (offset !== -1 && offset % 2 !== 0) throw invalidArgValue('options.checksumOffset', offset, 'must be even (or -1 for none)');
    plan.checksumOffset = offset;
  }
  if (opts.address !== undefined) {
    validateAddress(opts.address, 'options.address', family);
    plan.address = opts.address;
  }
  if (opts.hopLimit !== undefined) plan.hopLimit = validateInteger(opts.hopLimit, 'options.hopLimit', family === 6 ? 0 : 1, 255);
  return plan;
}
