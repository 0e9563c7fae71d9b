/**
 * RouterAlertSocket: a router's tap for packets carrying a Router Alert option (RFC 2711
 * for IPv6, RFC 2113 for IPv4). The kernel hands every packet it is about to FORWARD whose
 * router-alert value matches to the socket, whole (IP header first), and then does not
 * forward it: the application looks at it (RSVP-like signalling, policy), then forwards it
 * with forward() (hop limit one lower, possibly with a new payload) or drops it.
 *
 * The Linux behaviour this class is built on:
 * - IPv6: socket(AF_INET6, SOCK_RAW, IPPROTO_RAW) + IPV6_ROUTER_ALERT = value. Only
 *   forwarded packets are tapped (so net.ipv6.conf.all.forwarding must be 1), never packets
 *   addressed to this host and never multicast. The tap runs before the hop-limit check.
 *   Re-injection is a send of the whole packet on the same socket to its destination.
 * - IPv4: a raw socket for a real protocol (not 255) + IP_ROUTER_ALERT = 1; every
 *   router-alert packet of that protocol that is being forwarded is tapped.
 * - Every socket registered for a value gets its own copy of each packet: so one tap per
 *   value and namespace forwards (lock.ts), and any others only observe.
 *
 * The tapped packets are packet.ts, the ICMP errors of expired ones icmp.ts.
 * @packageDocumentation
 */
import { attempt, interfaceLabel, invalidArgType, invalidArgValue, stateError, warn, type ErrorContext } from '../../errors';
import { findRouterAlert } from '../../codec/hopbyhop';
import { parseIpv4, type ParsedIpv4 } from '../../codec/ipv4';
import { AddressCache } from '../../codec/ipv6addr';
import { parsePacket, type Ipv6Packet } from '../../codec/packet';
import type { InterfaceRef } from '../../links/interfaces';
import { constants } from '../../core/native';
import type { RecordBatch } from '../../core/records';
import { eventMap, type Events } from '../../core/events';
import { BaseSocket, NO_CONTROL, type SocketEvents, type SocketOptions, type SocketStats } from '../socket';
import { sysctl } from '../../system';
import { netnsPath, toBuffer, validateBoolean, validateFamily, validateInteger, validateObject, validateOptionalObject, validateOptionKeys, type Family } from '../../validate';
import { TimeExceededSender } from './icmp';
import { TapLock } from './lock';
import { HANDLED, PENDING, quickRouterAlert, Tapped, TappedPacket4, TappedPacket6 } from './packet';
import type { RouterAlertPacketOf } from './types';

export type { Ipv4RouterAlertPacket, RouterAlertPacket, RouterAlertPacketOf } from './types';
export type { TappedError } from './lock';

/** Warning code emitted when the namespace does not forward (the tap would never see a packet). */
export const NO_FORWARDING_WARNING = 'IP6SOCK_NO_FORWARDING';

/** Largest IPv6 packet without a jumbo payload: a 40-byte header plus 65,535 bytes. */
const MAX_PACKET = 40 + 0xffff;

export interface RouterAlertSocketOptions<F extends Family = 6> extends SocketOptions {
  /** 6 (default) or 4. */
  family?: F;
  /** IPv6: the Router Alert value to tap, 0-65535 (1 RSVP, 2 Active Networks, ...). Required. */
  value?: number;
  /**
   * IPv6: see only packets forwarded by this socket's own namespace (IPV6_ROUTER_ALERT_ISOLATE).
   * Default true. Turn it off only to tap every namespace of the machine. (IPv4's chain is
   * per namespace already; the option changes nothing there.)
   */
  isolate?: boolean;
  /** IPv4: the protocol whose router-alert packets to tap, 1-254 (not 255: the kernel refuses it). Required. */
  protocol?: number;
  /**
   * Only look: the tap never forwards (forward() refuses), and so may share its value with
   * the one tap of the namespace that does. Default false: a tap that forwards is refused
   * (ERR_ROUTER_ALERT_TAPPED) while another one of the same value is open in the same
   * namespace, in any process. Alone, an observer stops the traffic it taps: the kernel
   * forwards no packet that any tap took.
   */
  observe?: boolean;
}

/** Every key RouterAlertSocketOptions knows. */
const OPTION_KEYS: readonly string[] = [
  'family',
  'value',
  'isolate',
  'protocol',
  'observe',
  'netns',
  'device',
  'signal',
  'batchSize',
  'maxMessageSize',
  'receiveBufferSize',
  'sendBufferSize',
  'iteratorHighWaterMark',
];

/** Every key ForwardOptions knows. */
const FORWARD_OPTION_KEYS: readonly string[] = ['payload'];

/** What happened to a packet given to forward(). */
export type ForwardResult =
  | { forwarded: true; /** Bytes handed to the kernel. */ bytes: number }
  | {
      forwarded: false;
      /** The packet arrived with hop limit (TTL) 1 or 0: forwarding would take it to 0. */
      reason: 'hop-limit-exceeded';
      /**
       * An ICMP Time Exceeded went back to the source. False when the rules forbid one
       * (source unspecified or multicast, the packet itself an ICMP error) or the rate
       * limit was reached.
       */
      timeExceededSent: boolean;
    };

export interface ForwardOptions {
  /**
   * New upper-layer data. For a UDP datagram the bytes after the UDP header (ports kept,
   * length and checksum recomputed); for any other protocol everything after the IP
   * headers (an ICMPv6 checksum is recomputed). IPv6 only.
   */
  payload?: Buffer | Uint8Array | string;
}

/** Counters of a RouterAlertSocket. */
export interface RouterAlertStats extends SocketStats {
  /** Packets that could not be parsed (or arrived truncated): dropped, never emitted. */
  malformed: number;
  /** Packets re-injected by forward(). */
  forwarded: number;
  /** Packets given to drop(). */
  dropped: number;
  /** Packets not forwarded because their hop limit (TTL) would have reached 0. */
  hopLimitExceeded: number;
  /** IPv4: packets of the socket's protocol without a router alert option (ordinary raw delivery to this host): not emitted. */
  ignored: number;
}

/** Reads a /proc/sys/net value inside a namespace; undefined when it cannot be read. */
function readSysctl(name: string, netns: string | undefined): string | undefined {
  try {
    return sysctl(name, { netns });
  } catch {
    // A value we cannot read (IPv6 disabled, /proc/sys read-only in a container) is no
    // reason to refuse the socket; it only means we cannot warn.
    return undefined;
  }
}

/** The `options` of forward(), validated: the new payload, if any. */
function forwardPayload(options: unknown): Buffer | undefined {
  const opts = validateOptionalObject<ForwardOptions>(options, 'options');
  validateOptionKeys(opts, FORWARD_OPTION_KEYS, 'options');
  return opts.payload === undefined ? undefined : toBuffer(opts.payload, 'options.payload');
}

/**
 * Events of a RouterAlertSocket: 'packet' for every tapped packet, 'warning' (code
 * IP6SOCK_NO_FORWARDING when the namespace does not forward), 'drain', 'error', 'close'.
 */
export interface RouterAlertSocketEvents<F extends Family = 6> extends SocketEvents {
  /** A tapped packet, held back by the kernel: forward() or drop() it (an observer only looks). */
  packet: [packet: RouterAlertPacketOf<F>];
}

/**
 * A Router Alert tap (needs CAP_NET_RAW). Events: 'packet' (packet), 'warning' (error with
 * code IP6SOCK_NO_FORWARDING when the namespace does not forward; without a listener it goes
 * to process.emitWarning), 'error', 'close'. `for await (const pkt of socket)` works too.
 *
 * The kernel forwards no tapped packet: call forward() or drop() for each one (a packet
 * nobody forwards is lost). It hands each packet to every tap of its value, so only one tap
 * per value (IPv4: protocol) and namespace may forward: a second one is refused with
 * ERR_ROUTER_ALERT_TAPPED, whichever process opens it, unless it is an observer
 * (`observe: true`), which sees the same packets and never forwards them.
 */
export class RouterAlertSocket<F extends Family = 6> extends BaseSocket<RouterAlertPacketOf<F>> {
  /** @internal */
  declare readonly [eventMap]: Events<RouterAlertSocketEvents<F>>;

  /** The Router Alert value tapped (IPv6), or undefined (IPv4 taps every value). */
  readonly value: number | undefined;
  /** IPv4: the protocol tapped; IPv6: 255. */
  readonly protocol: number;
  /** Whether the socket sees only its own namespace's packets (always true for IPv4, whose chain is per namespace). */
  readonly isolate: boolean;
  /** True for an observer: it sees the packets and never forwards them (see the `observe` option). */
  readonly observe: boolean;
  override readonly stats: RouterAlertStats = this.countersWith({ malformed: 0, forwarded: 0, dropped: 0, hopLimitExceeded: 0, ignored: 0 });

  /** Marks the packets this socket emitted (see Tapped): forward() and drop() take only those. */
  private readonly token = {};
  /** Text and error context of the last destination forwarded to: a stream has few destinations. */
  private readonly lastDestination = new AddressCache();
  private lastContext: ErrorContext = {};
  /** Settles a forward() whose send went out: one function for every packet, not a closure each. */
  private readonly sent = (n: number): ForwardResult => {
    this.stats.forwarded++;
    return { forwarded: true, bytes: n };
  };
  private readonly timeExceeded: TimeExceededSender;
  /** The namespace's lock on this tap's value, held while a forwarding tap is open. */
  private lock: TapLock | undefined;

  constructor(options: RouterAlertSocketOptions<F>) {
    const opts = validateObject<RouterAlertSocketOptions<F>>(options, 'options');
    validateOptionKeys(opts, OPTION_KEYS, 'options');
    const family = opts.family === undefined ? 6 : validateFamily(opts.family, 'options.family');
    const c = constants();
    let value: number | undefined;
    let protocol: number;
    if (family === 6) {
      value = validateInteger(opts.value, 'options.value', 0, 0xffff);
      if (opts.protocol !== undefined) throw invalidArgValue('options.protocol', opts.protocol, 'is IPv4 only: IPv6 router-alert sockets are always IPPROTO_RAW (255)');
      protocol = c.IPPROTO_RAW;
    } else {
      if (opts.value !== undefined) {
        throw invalidArgValue('options.value', opts.value, 'is IPv6 only: IPv4 IP_ROUTER_ALERT taps every router-alert packet of the socket\'s protocol');
      }
      protocol = validateInteger(opts.protocol, 'options.protocol', 1, 254);
    }
    const isolate = opts.isolate === undefined ? true : validateBoolean(opts.isolate, 'options.isolate');
    const observe = opts.observe === undefined ? false : validateBoolean(opts.observe, 'options.observe');
    // A tapped packet must arrive whole to be forwarded: room for the largest one.
    super({ family, type: c.SOCK_RAW, protocol }, { maxMessageSize: MAX_PACKET, ...opts }, 'packet');
    this.value = value;
    this.protocol = protocol;
    this.isolate = family === 4 || isolate;
    this.observe = observe;
    this.timeExceeded = new TimeExceededSender(family, this.netns);
    try {
      this.configure();
    } catch (err) {
      void this.close();
      throw err;
    }
    this.checkForwarding();
  }

  /**
   * Sends the packet on towards its destination with the hop limit (TTL) one lower, as the
   * kernel would have. Unchanged packets leave byte for byte as they came (a wrong checksum
   * included); with `payload`, or after changing the packet's fields (IPv6: header,
   * hopByHop options, udp view), the packet is rebuilt with lengths and checksums
   * recomputed. A packet that arrived with hop limit <= 1 is not forwarded: its source gets
   * an ICMP Time Exceeded (code 0) from this router instead.
   *
   * Each packet can be forwarded or dropped once; the promise rejects with
   * ERR_INVALID_ARG_VALUE for a packet this socket did not emit, ERR_INVALID_STATE for one
   * already handled, and ERR_ROUTER_ALERT_OBSERVER on an observer, which never forwards.
   */
  forward(packet: RouterAlertPacketOf<F>, options?: ForwardOptions): Promise<ForwardResult> {
    try {
      this.assertOpen();
      const pkt = this.checkPending(packet);
      const payload = options === undefined ? undefined : forwardPayload(options);
      if (this.observe) {
        throw stateError('ERR_ROUTER_ALERT_OBSERVER', 'This RouterAlertSocket only observes (observe: true): another tap forwards its packets; drop() it instead');
      }
      if (pkt instanceof TappedPacket4) {
        if (payload !== undefined) throw invalidArgValue('options.payload', (options as ForwardOptions).payload, 'is IPv6 only (IPv4 packets are forwarded as they came)');
        const ttl = pkt.header.ttl;
        if (ttl <= 1) return this.expired(pkt);
        // IP_HDRINCL: the kernel recomputes the header checksum and keeps the rest.
        const bytes = Buffer.from(pkt.bytes);
        bytes[8] = ttl - 1;
        return this.send(pkt, bytes, pkt.header.destination);
      }
      const hopLimit = TappedPacket6.hopLimitOf(pkt);
      if (hopLimit <= 1) return this.expired(pkt);
      const bytes = TappedPacket6.wire(pkt, payload);
      // Not covered by any checksum, so the rebuilt bytes stay valid.
      bytes[7] = hopLimit - 1;
      return this.send(pkt, bytes, TappedPacket6.destinationOf(pkt, this.lastDestination));
    } catch (err) {
      return this.failedSend(err);
    }
  }

  /** Drops a tapped packet (it goes no further) and counts it in stats.dropped. */
  drop(packet: RouterAlertPacketOf<F>): void {
    this.assertOpen();
    Tapped.settle(this.checkPending(packet));
    this.stats.dropped++;
  }

  protected override beforeClose(): void {
    this.timeExceeded.close();
    // A closing tap forwards nothing more: from here on the value is the next tap's.
    this.lock?.release();
    this.lock = undefined;
  }

  protected dispatch(records: RecordBatch): void {
    const wantEvents = this.listenerCount('packet') > 0;
    const wantItems = this.hasIterators;
    const events: RouterAlertSocket<F> = this;
    // Tapped packets are views of the data, decoded only as far as they are read.
    const data = records.keepData();
    this.forEachRecord(records, (i) => {
      this.countRecord(records, i);
      if (records.truncated(i)) {
        // A cut packet can be neither parsed nor forwarded whole.
        this.stats.malformed++;
        return;
      }
      const offset = records.dataOffset(i);
      const length = records.dataLength(i);
      const ifindex = records.ifindex(i);
      const ingress = ifindex > 0 ? this.names.ref(ifindex) : null;
      const pkt = this.family === 6 ? this.packet6(data, offset, length, ingress) : this.packet4(data.subarray(offset, offset + length), ingress);
      if (pkt === undefined) return;
      // RouterAlertPacketOf<F> is exactly the family's packet type; TypeScript cannot
      // follow a conditional type through a runtime family check.
      const item = pkt as unknown as RouterAlertPacketOf<F>;
      // Iterators first: a listener that throws must not cost them the packet.
      if (wantItems) this.pushToIterators(item);
      if (wantEvents) events.emit('packet', item);
    });
  }

  private packet6(data: Buffer, start: number, length: number, ingress: InterfaceRef | null): TappedPacket6 | undefined {
    // The common shape (hop-by-hop header with the alert, then the upper layer) is checked
    // here without building anything; the rest is decoded when the application reads it.
    // The kernel delivers a packet to this socket for its value (the packet may carry other
    // Router Alert options too, before it: routerAlerts lists them all).
    const value = this.value as number;
    if (quickRouterAlert(data, start, length) >= 0) return new TappedPacket6(this.token, data, start, length, value, ingress, undefined);
    const bytes = data.subarray(start, start + length);
    let parsed: Ipv6Packet;
    try {
      // Not strict: a router does not judge destination options or padding it does not
      // process (the kernel already validated the hop-by-hop header before tapping).
      parsed = parsePacket(bytes, { strict: false });
    } catch {
      // The kernel validates the IPv6 and hop-by-hop headers before the tap, not what
      // follows: a lying UDP length or a cut extension header reaches us and goes no further.
      this.stats.malformed++;
      return undefined;
    }
    const found = parsed.hopByHop === undefined ? undefined : findRouterAlert(parsed.hopByHop);
    if (found === undefined) {
      this.stats.malformed++;
      return undefined;
    }
    return new TappedPacket6(this.token, data, start, length, value, ingress, parsed);
  }

  private packet4(bytes: Buffer, ingress: InterfaceRef | null): TappedPacket4 | undefined {
    let parsed: ParsedIpv4;
    try {
      parsed = parseIpv4(bytes);
    } catch {
      this.stats.malformed++;
      return undefined;
    }
    if (parsed.routerAlerts.length === 0) {
      // A raw IPv4 socket also gets its protocol's packets addressed to this host.
      this.stats.ignored++;
      return undefined;
    }
    return new TappedPacket4(this.token, parsed.header, parsed.routerAlerts, parsed.payload, ingress, bytes);
  }

  /** Hands the bytes to the kernel; the packet is settled once they are accepted for sending. */
  private send(pkt: Tapped, bytes: Buffer, destination: string): Promise<ForwardResult> {
    Tapped.settle(pkt);
    if (this.lastContext.address !== destination) this.lastContext = { address: destination, netns: this.netns };
    return this.sendNative(bytes, destination, 0, 0, NO_CONTROL, this.lastContext, this.sent);
  }

  /** A packet whose hop limit (TTL) would reach 0: settled, counted, reported to its source. */
  private expired(pkt: TappedPacket6 | TappedPacket4): Promise<ForwardResult> {
    Tapped.settle(pkt);
    this.stats.hopLimitExceeded++;
    return this.trackedSend(this.reportExpired(pkt));
  }

  /** ICMP Time Exceeded to the packet's source (rate-limited; never about an error): what forward() resolves with. */
  private async reportExpired(pkt: TappedPacket6 | TappedPacket4): Promise<ForwardResult> {
    const timeExceededSent = await this.timeExceeded.send(pkt);
    return { forwarded: false, reason: 'hop-limit-exceeded', timeExceededSent };
  }

  private checkPending(packet: unknown): TappedPacket6 | TappedPacket4 {
    if (typeof packet !== 'object' || packet === null) throw invalidArgType('packet', 'a packet emitted by this RouterAlertSocket', packet);
    const state = Tapped.stateOf(packet, this.token);
    if (state === HANDLED) throw stateError('ERR_INVALID_STATE', 'Invalid state: this packet was already forwarded or dropped');
    if (state !== PENDING) throw invalidArgValue('packet', packet, 'must be a packet emitted by this RouterAlertSocket');
    return packet as TappedPacket6 | TappedPacket4;
  }

  private configure(): void {
    const c = constants();
    if (this.family === 6) {
      // THE CHAIN IS GLOBAL ACROSS NETWORK NAMESPACES: without isolation a socket here
      // takes (and so stops) packets that any other namespace of the machine forwards,
      // e.g. another container's or a parallel test's. Set before registering the value,
      // so not even one foreign packet queues up.
      if (this.isolate) this.setInt(c.IPPROTO_IPV6, c.IPV6_ROUTER_ALERT_ISOLATE, 1, 'IPV6_ROUTER_ALERT_ISOLATE');
      this.takeLock(this.value as number);
      this.setInt(c.IPPROTO_IPV6, c.IPV6_ROUTER_ALERT, this.value as number, 'IPV6_ROUTER_ALERT');
      this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVPKTINFO, 1, 'IPV6_RECVPKTINFO');
    } else {
      this.takeLock(this.protocol);
      this.setInt(c.IPPROTO_IP, c.IP_ROUTER_ALERT, 1, 'IP_ROUTER_ALERT');
      this.setInt(c.IPPROTO_IP, c.IP_PKTINFO, 1, 'IP_PKTINFO');
      // forward() sends the whole packet, header included.
      this.setInt(c.IPPROTO_IP, c.IP_HDRINCL, 1, 'IP_HDRINCL');
    }
  }

  /**
   * A tap that forwards holds its namespace's lock on the value (IPv4: protocol), taken
   * before the kernel registers the tap: a refused tap never takes a packet from the other.
   */
  private takeLock(selector: number): void {
    if (this.observe) return;
    const device = this.deviceIndex === 0 ? undefined : interfaceLabel(this.names.ref(this.deviceIndex));
    const key = { family: this.family, selector, deviceIndex: this.deviceIndex };
    this.lock = attempt({ netns: this.netns }, () => TapLock.acquire(key, netnsPath(this.netns), this.netns, device));
  }

  /**
   * Only forwarded packets are tapped, so a namespace that does not forward never delivers
   * one. /proc/sys/net is per namespace as seen by the reading thread: native().sysctl
   * opens it from inside the socket's namespace.
   */
  private checkForwarding(): void {
    const name = this.family === 6 ? 'ipv6/conf/all/forwarding' : 'ipv4/ip_forward';
    if (readSysctl(name, this.netns) !== '0') return;
    const where = this.netns === undefined ? 'this network namespace' : `network namespace ${this.netns}`;
    const warning = stateError(
      NO_FORWARDING_WARNING,
      `net.${name.replace(/\//g, '.')} is 0 in ${where}: the kernel taps only packets it forwards, so this RouterAlertSocket will never receive one`,
    );
    warning.name = 'Ip6sockWarning';
    // Next tick: the caller can attach a 'warning' listener right after the constructor.
    process.nextTick(() => {
      if (!this.closed) warn(this, warning);
    });
  }
}
