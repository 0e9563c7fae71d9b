/**
 * UdpSocket: a UDP socket for IPv6 or IPv4 that reports, for every datagram, the arrival
 * interface, destination address and hop limit, and that sends with a per-packet
 * interface, source, hop limit, traffic class and hop-by-hop options. MulticastSocket and
 * AnycastGroup build on it.
 * @packageDocumentation
 */
import { attempt, ErrorContext, invalidArgType, invalidArgValue } from './errors';
import { encode as encodeHopByHop, HopByHopOption } from './hopbyhop';
import { InterfaceRef, InterfaceSpec, resolve as resolveInterface } from './interfaces';
import { constants, Record } from './native';
import { BaseSocket, NO_CONTROL, SendControl, SocketOptions } from './socket';
import {
  Family,
  toBuffer,
  validateAddress,
  validateBoolean,
  validateFamily,
  validateInteger,
  validateObject,
  validateOptionalObject,
  validatePort,
} from './validate';

/** What ip6sock knows about one received datagram. */
export interface MessageInfo {
  /** Source address; link-local IPv6 sources carry `%interface`. */
  address: string;
  port: number;
  family: Family;
  /** Arrival interface (from IPV6_PKTINFO / IP_PKTINFO). */
  interface: InterfaceRef | null;
  /** The address the datagram was sent to (a multicast group, an anycast address, ...). */
  destination: string | null;
  /** Hop limit (IPv6) or TTL (IPv4) the datagram arrived with. */
  hopLimit: number | null;
  /** Traffic class / TOS, when `receiveTrafficClass` is on. */
  trafficClass: number | null;
  /** The raw hop-by-hop options header, when `receiveHopByHop` is on and the datagram had one. */
  hopByHop: Buffer | null;
  /** The datagram was longer than maxMessageSize and was cut. */
  truncated: boolean;
  /** Bytes received. */
  size: number;
}

/** One received datagram, as the async iterator yields it. */
export interface Message {
  data: Buffer;
  info: MessageInfo;
}

export interface UdpSocketOptions extends SocketOptions {
  /** 6 (default) or 4. */
  family?: Family;
  /** Local port; 0 (default) lets the kernel pick. */
  port?: number;
  /** Local address; default '::' or '0.0.0.0'. A link-local address may carry %interface. */
  address?: string;
  /** SO_REUSEADDR. */
  reuseAddr?: boolean;
  /** SO_REUSEPORT. */
  reusePort?: boolean;
  /** IPV6_V6ONLY (default true: an IPv6 socket does not see IPv4-mapped traffic). */
  ipv6Only?: boolean;
  /** Unicast hop limit (IPV6_UNICAST_HOPS / IP_TTL) for every datagram sent. */
  unicastHopLimit?: number;
  /** Deliver the hop-by-hop options header of received datagrams in info.hopByHop. */
  receiveHopByHop?: boolean;
  /** Deliver the traffic class (TOS) of received datagrams in info.trafficClass. */
  receiveTrafficClass?: boolean;
  /** Hop-by-hop options attached to every datagram sent (sticky IPV6_HOPOPTS; needs CAP_NET_RAW). */
  hopByHop?: HopByHopOption[] | Buffer;
}

/** Where and how one datagram leaves. */
export interface SendOptions {
  /** Destination address (omit on a connected socket). Link-local may carry %interface. */
  address?: string;
  /** Destination port (omit on a connected socket). */
  port?: number;
  /** Leave through this interface (index or name): IPV6_PKTINFO / IP_PKTINFO. */
  interface?: InterfaceSpec;
  /** Source address for this datagram (must be one of the host's, or a joined anycast address). */
  source?: string;
  /** Hop limit (TTL) for this datagram, 0-255. */
  hopLimit?: number;
  /** Traffic class (TOS) for this datagram, 0-255. */
  trafficClass?: number;
  /** Hop-by-hop options for this datagram (IPv6; needs CAP_NET_RAW). */
  hopByHop?: HopByHopOption[] | Buffer;
}

/** Accepts encoded options (a whole header) or a list of options to encode. */
export function hopByHopHeader(value: unknown, name: string): Buffer {
  if (Buffer.isBuffer(value)) {
    if (value.length < 8 || value.length % 8 !== 0 || value.length > 2048 || value.length !== (value[1] + 1) * 8) {
      throw invalidArgValue(name, value, 'must be a whole hop-by-hop header: a multiple of 8 bytes, 8 to 2048, matching its length byte');
    }
    return value;
  }
  if (Array.isArray(value)) return encodeHopByHop(value as HopByHopOption[]);
  throw invalidArgType(name, 'an array of hop-by-hop options or a Buffer', value);
}

/** A UDP socket with per-packet interface, destination and hop-limit reporting. */
export class UdpSocket extends BaseSocket<Message> {
  constructor(options: UdpSocketOptions = {}) {
    const opts = validateOptionalObject<UdpSocketOptions>(options, 'options');
    const family = opts.family === undefined ? 6 : validateFamily(opts.family, 'options.family');
    const c = constants();
    super({ family, type: c.SOCK_DGRAM, protocol: 0 }, opts, 'message');
    try {
      this.configure(opts);
    } catch (err) {
      void this.close();
      throw err;
    }
  }

  /** Fixes the peer: later sends may omit address and port, and only its datagrams arrive. */
  connect(address: string, port: number): void {
    this.assertOpen();
    validatePort(port);
    const dest = this.destination(address);
    attempt({ address, port, netns: this.netns }, () => this.handle.connect(dest.address, port, dest.scopeId));
  }

  /** Undoes connect(). */
  disconnect(): void {
    this.assertOpen();
    attempt({ netns: this.netns }, () => this.handle.disconnect());
  }

  /** The connected peer. */
  remoteAddress(): { address: string; port: number; family: Family } {
    this.assertOpen();
    const a = attempt({ netns: this.netns }, () => this.handle.remoteAddress());
    return { address: this.withZone(a.address, a.scopeId), port: a.port, family: this.family };
  }

  /**
   * Sends one datagram. Resolves with the number of bytes sent once the kernel took it
   * (at once, or after waiting in order for buffer space).
   */
  send(data: Buffer | Uint8Array | string, options: SendOptions = {}): Promise<number> {
    try {
      this.assertOpen();
      const buf = toBuffer(data);
      const opts = validateObject<SendOptions>(options, 'options');
      let address: string | null = null;
      let port = 0;
      let scopeId = 0;
      if (opts.address !== undefined || opts.port !== undefined) {
        port = validatePort(opts.port, 'options.port');
        const dest = this.destination(opts.address, 'options.address');
        address = dest.address;
        scopeId = dest.scopeId;
      }
      const ctl = this.control(opts);
      const context: ErrorContext = { address: opts.address, port: opts.address === undefined ? undefined : port, netns: this.netns };
      if (opts.interface !== undefined) context.interface = opts.interface;
      return this.sendNative(buf, address, port, scopeId, ctl, context);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Sets (or with null clears) hop-by-hop options sent with every datagram. Needs CAP_NET_RAW. */
  setHopByHop(options: HopByHopOption[] | Buffer | null): void {
    this.assertOpen();
    if (this.family !== 6) throw invalidArgValue('options', options, 'is IPv6 only');
    const c = constants();
    const header = options === null ? null : hopByHopHeader(options, 'options');
    attempt({ option: 'IPV6_HOPOPTS', netns: this.netns }, () => this.handle.setBuffer(c.IPPROTO_IPV6, c.IPV6_HOPOPTS, header));
  }

  /** Resolves a destination and its zone; subclasses use it for their own address checks. */
  protected destination(address: unknown, name = 'address'): { address: string; scopeId: number } {
    const parts = validateAddress(address, name, this.family);
    let scopeId = 0;
    if (parts.zone !== undefined) {
      const zone = /^\d+$/.test(parts.zone) ? Number(parts.zone) : parts.zone;
      scopeId = resolveInterface(zone, 'address zone', this.netns).index;
    }
    return { address: parts.address, scopeId };
  }

  /** Builds the control data for one send from its options. */
  protected control(opts: SendOptions): SendControl {
    if (opts.interface === undefined && opts.source === undefined && opts.hopLimit === undefined && opts.trafficClass === undefined && opts.hopByHop === undefined) {
      return NO_CONTROL;
    }
    const ctl: SendControl = { ...NO_CONTROL };
    if (opts.interface !== undefined) ctl.ifindex = resolveInterface(opts.interface, 'options.interface', this.netns).index;
    if (opts.source !== undefined) ctl.source = validateAddress(opts.source, 'options.source', this.family, false).address;
    if (opts.hopLimit !== undefined) ctl.hopLimit = validateInteger(opts.hopLimit, 'options.hopLimit', 0, 255);
    if (opts.trafficClass !== undefined) ctl.trafficClass = validateInteger(opts.trafficClass, 'options.trafficClass', 0, 255);
    if (opts.hopByHop !== undefined) {
      if (this.family !== 6) throw invalidArgValue('options.hopByHop', opts.hopByHop, 'is IPv6 only');
      ctl.hopByHop = hopByHopHeader(opts.hopByHop, 'options.hopByHop');
    }
    return ctl;
  }

  protected dispatch(count: number, data: Buffer, meta: Buffer): void {
    const wantEvents = this.listenerCount('message') > 0;
    const wantItems = this.hasIterators;
    for (let i = 0; i < count; i++) {
      const at = i * Record.size;
      const offset = meta.readUInt32LE(at + Record.dataOffset);
      const length = meta.readUInt32LE(at + Record.dataLength);
      const payload = data.subarray(offset, offset + length);
      const info = this.info(meta, at, data, length);
      if (wantEvents) this.emit('message', payload, info);
      if (wantItems) this.pushToIterators({ data: payload, info });
      if (this.closed) return;
    }
  }

  /** Decodes one metadata record. */
  protected info(meta: Buffer, at: number, data: Buffer, size: number): MessageInfo {
    const family = meta.readUInt16LE(at + Record.family) === 4 ? 4 : 6;
    const ifindex = meta.readInt32LE(at + Record.ifindex);
    const hopLimit = meta.readInt32LE(at + Record.hopLimit);
    const tclass = meta.readInt32LE(at + Record.tclass);
    const hopLen = meta.readUInt32LE(at + Record.hopOptsLength);
    let hopByHop: Buffer | null = null;
    if (hopLen > 0) {
      const hopAt = meta.readUInt32LE(at + Record.hopOptsOffset);
      hopByHop = data.subarray(hopAt, hopAt + hopLen);
    }
    const { truncated } = this.recordFlags(meta, at);
    return {
      address: this.withZone(this.sourceCache.format(meta, at + Record.source, family), meta.readUInt32LE(at + Record.scopeId)),
      port: meta.readUInt16LE(at + Record.port),
      family,
      interface: ifindex > 0 ? { index: ifindex, name: this.names.name(ifindex) } : null,
      destination: meta.readUInt32LE(at + Record.hasDestination) === 1 ? this.destinationCache.format(meta, at + Record.destination, family) : null,
      hopLimit: hopLimit >= 0 ? hopLimit : null,
      trafficClass: tclass >= 0 ? tclass : null,
      hopByHop,
      truncated,
      size,
    };
  }

  private configure(opts: Partial<UdpSocketOptions>): void {
    const c = constants();
    const v6 = this.family === 6;
    if (opts.reuseAddr !== undefined && validateBoolean(opts.reuseAddr, 'options.reuseAddr')) this.setInt(c.SOL_SOCKET, c.SO_REUSEADDR, 1, 'SO_REUSEADDR');
    if (opts.reusePort !== undefined && validateBoolean(opts.reusePort, 'options.reusePort')) this.setInt(c.SOL_SOCKET, c.SO_REUSEPORT, 1, 'SO_REUSEPORT');
    if (v6) {
      const v6only = opts.ipv6Only === undefined ? true : validateBoolean(opts.ipv6Only, 'options.ipv6Only');
      this.setInt(c.IPPROTO_IPV6, c.IPV6_V6ONLY, v6only ? 1 : 0, 'IPV6_V6ONLY');
      this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVPKTINFO, 1, 'IPV6_RECVPKTINFO');
      this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVHOPLIMIT, 1, 'IPV6_RECVHOPLIMIT');
      if (opts.receiveTrafficClass !== undefined && validateBoolean(opts.receiveTrafficClass, 'options.receiveTrafficClass')) {
        this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVTCLASS, 1, 'IPV6_RECVTCLASS');
      }
      if (opts.receiveHopByHop !== undefined && validateBoolean(opts.receiveHopByHop, 'options.receiveHopByHop')) {
        this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVHOPOPTS, 1, 'IPV6_RECVHOPOPTS');
      }
      if (opts.unicastHopLimit !== undefined) {
        this.setInt(c.IPPROTO_IPV6, c.IPV6_UNICAST_HOPS, validateInteger(opts.unicastHopLimit, 'options.unicastHopLimit', 0, 255), 'IPV6_UNICAST_HOPS');
      }
      if (opts.hopByHop !== undefined) this.setHopByHop(hopByHopHeader(opts.hopByHop, 'options.hopByHop'));
    } else {
      this.setInt(c.IPPROTO_IP, c.IP_PKTINFO, 1, 'IP_PKTINFO');
      this.setInt(c.IPPROTO_IP, c.IP_RECVTTL, 1, 'IP_RECVTTL');
      if (opts.receiveTrafficClass !== undefined && validateBoolean(opts.receiveTrafficClass, 'options.receiveTrafficClass')) {
        this.setInt(c.IPPROTO_IP, c.IP_RECVTOS, 1, 'IP_RECVTOS');
      }
      if (opts.receiveHopByHop) throw invalidArgValue('options.receiveHopByHop', true, 'is IPv6 only');
      if (opts.hopByHop !== undefined) throw invalidArgValue('options.hopByHop', opts.hopByHop, 'is IPv6 only');
      if (opts.unicastHopLimit !== undefined) {
        this.setInt(c.IPPROTO_IP, c.IP_TTL, validateInteger(opts.unicastHopLimit, 'options.unicastHopLimit', 1, 255), 'IP_TTL');
      }
    }
    const port = opts.port === undefined ? 0 : validatePort(opts.port, 'options.port');
    const local = opts.address === undefined ? (v6 ? '::' : '0.0.0.0') : opts.address;
    const bindTo = this.destination(local, 'options.address');
    attempt({ address: local, port, netns: this.netns }, () => this.handle.bind(bindTo.address, port, bindTo.scopeId));
  }
}
