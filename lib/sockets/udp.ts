/**
 * UdpSocket: a UDP socket for IPv6 or IPv4 that reports, for every datagram, the arrival
 * interface, destination address and hop limit, and that sends with a per-packet
 * interface, source, hop limit, traffic class and hop-by-hop options. MulticastSocket and
 * AnycastGroup build on it.
 * @packageDocumentation
 */
import { DatagramSocket, DatagramSocketEvents, hopByHopHeader, SendOptions } from './datagram';
import { attempt, ErrorContext, invalidArgType, invalidArgValue } from '../errors';
import { eventMap, Events } from '../core/events';
import { HopByHopOption } from '../codec/hopbyhop';
import { isLinkLocalIpv6 } from '../codec/ipv6addr';
import { constants } from '../core/native';
import { SendGroup, SendWaiter, SingleSend } from '../core/outbox';
import { SOCKET_OPTION_KEYS, SocketOptions } from './socket';
import {
  Family,
  toBuffer,
  validateList,
  validateBoolean,
  validateFamily,
  validateObject,
  validateOptionalObject,
  validateOptionKeys,
  validatePort,
  optionKeys,
  type OptionKeyList,
} from '../validate';

export type { Message, MessageBatch, MessageInfo, SendOptions } from './datagram';

/**
 * Most messages one sendMany() takes: 64 sendmmsg calls of 1,024. Its length and holes are
 * checked before its results array or anything else is made.
 */
const MAX_SEND_MANY = 65_536;
export { hopByHopHeader } from './datagram';

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
  /**
   * Hop limit (IPV6_UNICAST_HOPS / IP_TTL) of every unicast datagram sent, 0-255 (IPv4:
   * 1-255); a per-datagram `hopLimit` in send() wins. Later: setHopLimit().
   */
  hopLimit?: number;
  /**
   * Ask the kernel for every datagram's destination address and arrival interface
   * (IPV6_PKTINFO / IP_PKTINFO), for info.destination and info.interface. Default true.
   * false spares the kernel one control message per datagram, for receivers that do not
   * need them: info.destination is then null, and info.interface is the interface of the
   * `device` the socket is bound to (the only one it hears), or null without one.
   */
  receivePacketInfo?: boolean;
  /**
   * Ask the kernel for every datagram's hop limit (IPV6_RECVHOPLIMIT / IP_RECVTTL), for
   * info.hopLimit. Default true. false spares the kernel one control message per datagram;
   * info.hopLimit is then null.
   */
  receiveHopLimit?: boolean;
  /** Deliver the hop-by-hop options header of received datagrams in info.hopByHop. */
  receiveHopByHop?: boolean;
  /** Deliver the traffic class (TOS) of received datagrams in info.trafficClass. */
  receiveTrafficClass?: boolean;
  /** Hop-by-hop options attached to every datagram sent (sticky IPV6_HOPOPTS; needs CAP_NET_RAW). */
  hopByHop?: HopByHopOption[] | Buffer;
}

/** The keys of UdpSocketOptions (the keys of the options its subclasses add are theirs). */
export const UDP_SOCKET_OPTION_KEYS: OptionKeyList<UdpSocketOptions> = {
  ...SOCKET_OPTION_KEYS,
  family: true,
  port: true,
  address: true,
  reuseAddr: true,
  reusePort: true,
  ipv6Only: true,
  hopLimit: true,
  receivePacketInfo: true,
  receiveHopLimit: true,
  receiveHopByHop: true,
  receiveTrafficClass: true,
  hopByHop: true,
};
const UDP_KEYS = optionKeys<UdpSocketOptions>(UDP_SOCKET_OPTION_KEYS);

/** The keys of SendOptions; sendMany() takes them with `data`. */
const SEND_OPTION_KEYS: OptionKeyList<SendOptions> = {
  address: true,
  port: true,
  interface: true,
  source: true,
  hopLimit: true,
  trafficClass: true,
  hopByHop: true,
};
const SEND_KEYS = optionKeys<SendOptions>(SEND_OPTION_KEYS);
const MESSAGE_KEYS = optionKeys<SendOptions & { data: unknown }>({ ...SEND_OPTION_KEYS, data: true });

/**
 * Events of a UdpSocket: 'message' (data, info) for each datagram, 'batch' (batch) for each
 * read, 'drain' when the backpressure queue empties, 'warning', 'error', 'close'.
 */
export interface UdpSocketEvents extends DatagramSocketEvents {}

/** A UDP socket with per-packet interface, destination and hop-limit reporting. */
export class UdpSocket extends DatagramSocket {
  /** @internal */
  declare readonly [eventMap]: Events<UdpSocketEvents>;

  constructor(options: UdpSocketOptions = {}) {
    const opts = validateOptionalObject<UdpSocketOptions>(options, 'options');
    // A subclass takes more keys: it checks them itself, before calling this constructor.
    if (new.target === UdpSocket) validateOptionKeys(opts, UDP_KEYS, 'options');
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
    // A zone's index goes to the kernel unchecked on the send path (a cached fast path), but
    // not here: connect() binds the socket to the zone's index before the route lookup and
    // keeps that binding when the lookup fails, so an unknown index would leave every later
    // connect and send failing with ENETUNREACH.
    if (dest.scopeId !== 0) this.directory.resolve(dest.scopeId, 'address zone');
    attempt({ address, port, netns: this.netns }, () => this.handle.connect(dest.address, port, dest.scopeId));
  }

  /** Undoes connect(). A socket opened with `device` stays bound to that device. */
  disconnect(): void {
    this.assertOpen();
    attempt({ netns: this.netns }, () => this.handle.disconnect());
    // The kernel's UDP disconnect also clears the device binding (sk_bound_dev_if = 0 in
    // __udp_disconnect): without this the socket would silently start hearing every interface.
    if (this.deviceIndex !== 0) {
      const c = constants();
      this.setInt(c.SOL_SOCKET, c.SO_BINDTOIFINDEX, this.deviceIndex, 'SO_BINDTOIFINDEX');
    }
  }

  /** The connected peer. */
  remoteAddress(): { address: string; port: number; family: Family } {
    this.assertOpen();
    const a = attempt({ netns: this.netns }, () => this.handle.remoteAddress());
    return { address: this.withZone(a.address, a.scopeId), port: a.port, family: this.family };
  }

  /**
   * Sends one datagram. Resolves with the number of bytes sent once the kernel took it
   * (at once, or after waiting in order for buffer space). Every datagram sent in the same
   * tick leaves in one sendmmsg at the end of the tick.
   *
   * A failure nobody handles does not end the process as an unhandled rejection: if no
   * handler (`await`, `.then`, `.catch`) is attached to the promise by the next tick after
   * the failure is known, the error goes to the socket's `'error'` event, as with
   * node:dgram (without an `'error'` listener, that is an unhandled 'error' event). The
   * promise still rejects for a handler attached later. An awaited send only rejects.
   */
  send(data: Buffer | Uint8Array | string, options: SendOptions = {}): Promise<number> {
    try {
      this.assertOpen();
      const opts = validateObject<SendOptions>(options, 'options');
      validateOptionKeys(opts, SEND_KEYS, 'options');
      const waiter = new SingleSend(this.sendContext(opts), this.unobservedSendFailure);
      this.enqueue(data, opts, waiter, 0);
      return waiter.promise;
    } catch (err) {
      return this.failedSend(err);
    }
  }

  /**
   * Sends many datagrams at once, in order, in one sendmmsg (with the other sends of this
   * tick), for one promise. Every message is checked first: if one is invalid the promise
   * rejects with its error and none is sent. Resolves with the bytes sent for each, or
   * rejects with the kernel's error for the earliest one it refused (the others still leave).
   * At most 65,536 messages (ERR_OUT_OF_RANGE), and no holes (ERR_INVALID_ARG_VALUE): both
   * are checked before anything is made for the batch. A failure nobody handles goes to
   * `'error'`, as for send().
   */
  sendMany(messages: ReadonlyArray<SendOptions & { data: Buffer | Uint8Array | string }>): Promise<number[]> {
    try {
      this.assertOpen();
      const count = validateList(messages, 'messages', MAX_SEND_MANY, 'an array of { data, ...send options }');
      const list: readonly unknown[] = messages;
      const group = new SendGroup(count, (slot) => this.sendContext(list[slot] as SendOptions), this.unobservedSendFailure);
      const mark = this.sendMark;
      try {
        for (let i = 0; i < count; i++) {
          const m = list[i];
          if (typeof m !== 'object' || m === null) throw invalidArgType(`messages[${i}]`, 'an object with data', m);
          validateOptionKeys(m, MESSAGE_KEYS, `messages[${i}]`);
          this.enqueue((m as { data: unknown }).data, m as SendOptions, group, i, `messages[${i}].data`);
        }
      } catch (err) {
        this.unsendAfter(mark);
        throw err;
      }
      return group.promise;
    } catch (err) {
      return this.failedSend(err);
    }
  }

  /** Checks one datagram and its options and adds it to this tick's batch. */
  private enqueue(data: unknown, opts: SendOptions, waiter: SendWaiter, slot: number, name = 'data'): void {
    const buf = toBuffer(data, name);
    let address: string | null = null;
    let port = 0;
    let scopeId = 0;
    if (opts.address !== undefined || opts.port !== undefined) {
      port = validatePort(opts.port, 'options.port');
      const dest = this.destination(opts.address, 'options.address');
      address = dest.address;
      scopeId = dest.scopeId;
    }
    this.queueSend(buf, address, port, scopeId, this.control(opts), waiter, slot);
  }

  /** What an error about a send names: where it went, and the option that needs privilege. */
  private sendContext(opts: SendOptions): ErrorContext {
    const context: ErrorContext = { address: opts.address, port: opts.address === undefined ? undefined : opts.port, netns: this.netns };
    if (opts.interface !== undefined) context.interface = opts.interface;
    // Per-packet hop-by-hop options are what needs CAP_NET_RAW here; name it on EPERM.
    if (opts.hopByHop !== undefined) context.option = 'IPV6_HOPOPTS';
    // The kernel refuses a link-local source with EINVAL when nothing names the outgoing
    // interface (ip6_datagram_send_ctl): no interface option, zone or bound device.
    const zoned = typeof opts.address === 'string' && opts.address.includes('%');
    if (typeof opts.source === 'string' && isLinkLocalIpv6(opts.source) && opts.interface === undefined && !zoned && this.deviceIndex === 0) {
      context.hints = { EINVAL: `the link-local source ${opts.source} needs an outgoing interface: set options.interface, put a zone on the destination, or bind the socket to a device` };
    }
    return context;
  }

  /** Sets (or with null clears) hop-by-hop options sent with every datagram. Needs CAP_NET_RAW. */
  setHopByHop(options: HopByHopOption[] | Buffer | null): void {
    this.assertOpen();
    if (this.family !== 6) throw invalidArgValue('options', options, 'is IPv6 only');
    const c = constants();
    const header = options === null ? null : hopByHopHeader(options, 'options');
    attempt({ option: 'IPV6_HOPOPTS', netns: this.netns }, () => this.handle.setBuffer(c.IPPROTO_IPV6, c.IPV6_HOPOPTS, header));
  }

  private configure(opts: Partial<UdpSocketOptions>): void {
    const c = constants();
    const v6 = this.family === 6;
    const packetInfo = opts.receivePacketInfo === undefined ? true : validateBoolean(opts.receivePacketInfo, 'options.receivePacketInfo');
    const hopLimit = opts.receiveHopLimit === undefined ? true : validateBoolean(opts.receiveHopLimit, 'options.receiveHopLimit');
    if (opts.reuseAddr !== undefined && validateBoolean(opts.reuseAddr, 'options.reuseAddr')) this.setInt(c.SOL_SOCKET, c.SO_REUSEADDR, 1, 'SO_REUSEADDR');
    if (opts.reusePort !== undefined && validateBoolean(opts.reusePort, 'options.reusePort')) this.setInt(c.SOL_SOCKET, c.SO_REUSEPORT, 1, 'SO_REUSEPORT');
    if (v6) {
      const v6only = opts.ipv6Only === undefined ? true : validateBoolean(opts.ipv6Only, 'options.ipv6Only');
      this.setInt(c.IPPROTO_IPV6, c.IPV6_V6ONLY, v6only ? 1 : 0, 'IPV6_V6ONLY');
      if (packetInfo) this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVPKTINFO, 1, 'IPV6_RECVPKTINFO');
      if (hopLimit) this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVHOPLIMIT, 1, 'IPV6_RECVHOPLIMIT');
      if (opts.receiveTrafficClass !== undefined && validateBoolean(opts.receiveTrafficClass, 'options.receiveTrafficClass')) {
        this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVTCLASS, 1, 'IPV6_RECVTCLASS');
      }
      if (opts.receiveHopByHop !== undefined && validateBoolean(opts.receiveHopByHop, 'options.receiveHopByHop')) {
        this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVHOPOPTS, 1, 'IPV6_RECVHOPOPTS');
      }
      if (opts.hopLimit !== undefined) this.applyHopLimit(opts.hopLimit, 'options.hopLimit');
      if (opts.hopByHop !== undefined) this.setHopByHop(hopByHopHeader(opts.hopByHop, 'options.hopByHop'));
    } else {
      if (packetInfo) this.setInt(c.IPPROTO_IP, c.IP_PKTINFO, 1, 'IP_PKTINFO');
      if (hopLimit) this.setInt(c.IPPROTO_IP, c.IP_RECVTTL, 1, 'IP_RECVTTL');
      if (opts.receiveTrafficClass !== undefined && validateBoolean(opts.receiveTrafficClass, 'options.receiveTrafficClass')) {
        this.setInt(c.IPPROTO_IP, c.IP_RECVTOS, 1, 'IP_RECVTOS');
      }
      if (opts.receiveHopByHop) throw invalidArgValue('options.receiveHopByHop', true, 'is IPv6 only');
      if (opts.hopByHop !== undefined) throw invalidArgValue('options.hopByHop', opts.hopByHop, 'is IPv6 only');
      if (opts.hopLimit !== undefined) this.applyHopLimit(opts.hopLimit, 'options.hopLimit');
    }
    const port = opts.port === undefined ? 0 : validatePort(opts.port, 'options.port');
    const local = opts.address === undefined ? (v6 ? '::' : '0.0.0.0') : opts.address;
    const bindTo = this.destination(local, 'options.address');
    attempt({ address: local, port, netns: this.netns }, () => this.handle.bind(bindTo.address, port, bindTo.scopeId));
  }
}
