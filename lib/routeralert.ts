/**
 * RouterAlertSocket: a router's tap for packets carrying a Router Alert option (RFC 2711
 * for IPv6, RFC 2113 for IPv4). The kernel hands every packet it is about to FORWARD whose
 * router-alert value matches to the socket, whole (IP header first), and then does not
 * forward it: the application looks at it (RSVP-like signalling, policy), then forwards it
 * with forward() (hop limit one lower, possibly with a new payload) or drops it.
 *
 * Linux facts this class is built on (KERNEL-NOTES.md, "Router alert"):
 * - IPv6: socket(AF_INET6, SOCK_RAW, IPPROTO_RAW) + IPV6_ROUTER_ALERT = value. Only
 *   forwarded packets are tapped (so net.ipv6.conf.all.forwarding must be 1), never packets
 *   addressed to this host and never multicast. The tap runs before the hop-limit check.
 *   Re-injection is a send of the whole packet on the same socket to its destination.
 * - IPv4: a raw socket for a real protocol (not 255) + IP_ROUTER_ALERT = 1; every
 *   router-alert packet of that protocol that is being forwarded is tapped.
 * @packageDocumentation
 */
import { ErrorContext, invalidArgType, invalidArgValue, stateError, withContext } from './errors';
import { findRouterAlert } from './hopbyhop';
import { sourceFor, type InterfaceRef } from './interfaces';
import { constants, Record } from './native';
import { parsePacket, serializePacket, internetChecksum, type Ipv6Packet } from './packet';
import { RawSocket } from './raw';
import { BaseSocket, NO_CONTROL, type SocketOptions, type SocketStats } from './socket';
import { sysctl } from './system';
import { toBuffer, validateBoolean, validateFamily, validateInteger, validateObject, validateOptionalObject, type Family } from './validate';

/** Warning code emitted when the namespace does not forward (the tap would never see a packet). */
export const NO_FORWARDING_WARNING = 'IP6SOCK_NO_FORWARDING';

/** Largest IPv6 packet without a jumbo payload: a 40-byte header plus 65,535 bytes. */
const MAX_PACKET = 40 + 0xffff;

/** IPv6 minimum MTU (RFC 8200 §5): an ICMPv6 error must fit in it (RFC 4443 §2.4(c)). */
const IPV6_MIN_MTU = 1280;

/** RFC 1812 §4.3.2.3: an ICMPv4 error carries as much as fits in 576 bytes. */
const IPV4_ICMP_ERROR_MAX = 576;

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
}

/** An IPv6 packet tapped by a RouterAlertSocket: the parsed packet plus where it came from. */
export interface RouterAlertPacket extends Ipv6Packet {
  family: 6;
  /** The Router Alert value of the packet (the socket's value). */
  routerAlert: number;
  /** The interface the packet arrived on. */
  ingress: InterfaceRef | null;
  /** The whole packet as received (IPv6 header first). */
  bytes: Buffer;
}

/** The fixed part of an IPv4 header and its options (RFC 791). */
export interface Ipv4Header {
  version: 4;
  /** Header length in bytes (IHL * 4). */
  headerLength: number;
  /** Type of service / DSCP + ECN. */
  tos: number;
  totalLength: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** Fragment offset in bytes. */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  source: string;
  destination: string;
  /** The option bytes after the fixed 20 bytes (a view into the packet). */
  options: Buffer;
}

/** An IPv4 packet tapped by a RouterAlertSocket with `family: 4`. */
export interface Ipv4RouterAlertPacket {
  family: 4;
  header: Ipv4Header;
  /** The value of the packet's Router Alert option (0: "examine packet"). */
  routerAlert: number;
  /** Everything after the IPv4 header, up to the total length (a view into `bytes`). */
  payload: Buffer;
  ingress: InterfaceRef | null;
  /** The whole packet as received (IPv4 header first). */
  bytes: Buffer;
}

/** The packet type a RouterAlertSocket of family F delivers. */
export type RouterAlertPacketOf<F extends Family> = F extends 4 ? Ipv4RouterAlertPacket : RouterAlertPacket;

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

/** Allows `burst` events at once and `perSecond` on average (RFC 4443 §2.4(f) rate limit). */
class TokenBucket {
  private tokens: number;
  private last = Date.now();
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }
  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
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

function malformed(what: string): Error {
  return stateError('ERR_PACKET_MALFORMED', `Malformed IPv4 packet: ${what}`);
}

/** Parses the IPv4 header of a tapped packet, and the value of its Router Alert option. */
export function parseIpv4(b: Buffer): { header: Ipv4Header; routerAlert: number | undefined; payload: Buffer } {
  if (b.length < 20) throw malformed(`${b.length} bytes is shorter than the 20-byte IPv4 header`);
  if (b[0] >> 4 !== 4) throw malformed(`IP version ${b[0] >> 4}, expected 4`);
  const headerLength = (b[0] & 0x0f) * 4;
  const totalLength = b.readUInt16BE(2);
  if (headerLength < 20 || headerLength > totalLength || totalLength > b.length) {
    throw malformed(`header length ${headerLength} and total length ${totalLength} do not fit ${b.length} bytes`);
  }
  const options = b.subarray(20, headerLength);
  let routerAlert: number | undefined;
  for (let i = 0; i < options.length; ) {
    const type = options[i];
    if (type === 0) break; // end of option list
    if (type === 1) {
      i++; // no-operation
      continue;
    }
    const len = i + 1 < options.length ? options[i + 1] : 0;
    if (len < 2 || i + len > options.length) throw malformed(`option ${type} at ${20 + i} has length ${len}`);
    // RFC 2113: type 148 (copied, class 0, number 20), length 4, 16-bit value.
    if (type === 148 && len === 4 && routerAlert === undefined) routerAlert = options.readUInt16BE(i + 2);
    i += len;
  }
  const flags = b.readUInt16BE(6);
  const f = (x: number): string => `${b[x]}.${b[x + 1]}.${b[x + 2]}.${b[x + 3]}`;
  return {
    header: {
      version: 4,
      headerLength,
      tos: b[1],
      totalLength,
      identification: b.readUInt16BE(4),
      dontFragment: (flags & 0x4000) !== 0,
      moreFragments: (flags & 0x2000) !== 0,
      fragmentOffset: (flags & 0x1fff) * 8,
      ttl: b[8],
      protocol: b[9],
      checksum: b.readUInt16BE(10),
      source: f(12),
      destination: f(16),
      options,
    },
    routerAlert,
    payload: b.subarray(headerLength, totalLength),
  };
}

/** RFC 4443 §2.4(e) / RFC 1812 §4.3.2.7: addresses an ICMP error must never be sent to. */
function mayReportTo(source: string, family: Family): boolean {
  if (family === 6) return source !== '::' && !/^ff/i.test(source);
  const first = Number(source.split('.')[0]);
  return source !== '0.0.0.0' && first !== 127 && first < 224;
}

function isLinkLocal6(address: string): boolean {
  return /^fe[89ab]/i.test(address);
}

/**
 * A Router Alert tap (needs CAP_NET_RAW). Events: 'packet' (packet), 'warning' (error with
 * code IP6SOCK_NO_FORWARDING when the namespace does not forward; without a listener it goes
 * to process.emitWarning), 'error', 'close'. `for await (const pkt of socket)` works too.
 *
 * Every tapped packet is held by the kernel for this socket alone: call forward() or drop()
 * for each one (a packet nobody forwards is lost, as the kernel does not forward it).
 */
export class RouterAlertSocket<F extends Family = 6> extends BaseSocket<RouterAlertPacketOf<F>> {
  /** The Router Alert value tapped (IPv6), or undefined (IPv4 taps every value). */
  readonly value: number | undefined;
  /** IPv4: the protocol tapped; IPv6: 255. */
  readonly protocol: number;
  /** Whether the socket sees only its own namespace's packets (always true for IPv4, whose chain is per namespace). */
  readonly isolate: boolean;
  override readonly stats: RouterAlertStats = { received: 0, kernelDrops: 0, truncated: 0, malformed: 0, forwarded: 0, dropped: 0, hopLimitExceeded: 0, ignored: 0 };

  /** Packets this socket emitted and that are not yet forwarded or dropped. */
  private readonly pending = new WeakSet<object>();
  /** Packets this socket emitted that were forwarded or dropped. */
  private readonly handled = new WeakSet<object>();
  private icmp: RawSocket | undefined;
  private readonly icmpLimit = new TokenBucket(1000, 50);

  constructor(options: RouterAlertSocketOptions<F>) {
    const opts = validateObject<RouterAlertSocketOptions<F>>(options, 'options');
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
    // A tapped packet must arrive whole to be forwarded: room for the largest one.
    super({ family, type: c.SOCK_RAW, protocol }, { maxMessageSize: MAX_PACKET, ...opts }, 'packet');
    this.value = value;
    this.protocol = protocol;
    this.isolate = family === 4 || isolate;
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
   * ERR_INVALID_ARG_VALUE for a packet this socket did not emit and ERR_INVALID_STATE for
   * one already handled.
   */
  forward(packet: RouterAlertPacketOf<F>, options?: ForwardOptions): Promise<ForwardResult> {
    try {
      this.assertOpen();
      this.checkPending(packet);
      const opts = validateOptionalObject<ForwardOptions>(options, 'options');
      const payload = opts.payload === undefined ? undefined : toBuffer(opts.payload, 'options.payload');
      const pkt = packet as RouterAlertPacket | Ipv4RouterAlertPacket;
      if (pkt.family === 4 && payload !== undefined) {
        throw invalidArgValue('options.payload', opts.payload, 'is IPv6 only (IPv4 packets are forwarded as they came)');
      }
      const hopLimit = pkt.family === 6 ? validateInteger(pkt.header.hopLimit, 'packet.header.hopLimit', 0, 255) : pkt.header.ttl;
      if (hopLimit <= 1) {
        this.settle(pkt);
        this.stats.hopLimitExceeded++;
        return this.timeExceeded(pkt);
      }
      let bytes: Buffer;
      if (pkt.family === 6) {
        bytes = this.rebuild(pkt, payload);
        // Not covered by any checksum, so the rebuilt bytes stay valid.
        bytes[7] = hopLimit - 1;
      } else {
        // IP_HDRINCL: the kernel recomputes the header checksum and keeps the rest.
        bytes = Buffer.from(pkt.bytes);
        bytes[8] = hopLimit - 1;
      }
      const destination = pkt.header.destination;
      this.settle(pkt);
      const context: ErrorContext = { address: destination, netns: this.netns };
      return this.sendNative(bytes, destination, 0, 0, NO_CONTROL, context).then((sent) => {
        this.stats.forwarded++;
        return { forwarded: true, bytes: sent } as const;
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Drops a tapped packet (it goes no further) and counts it in stats.dropped. */
  drop(packet: RouterAlertPacketOf<F>): void {
    this.assertOpen();
    this.checkPending(packet);
    this.settle(packet);
    this.stats.dropped++;
  }

  protected override beforeClose(): void {
    const icmp = this.icmp;
    this.icmp = undefined;
    if (icmp !== undefined) void icmp.close();
  }

  protected dispatch(count: number, data: Buffer, meta: Buffer): void {
    const wantEvents = this.listenerCount('packet') > 0;
    const wantItems = this.hasIterators;
    for (let i = 0; i < count; i++) {
      const at = i * Record.size;
      const offset = meta.readUInt32LE(at + Record.dataOffset);
      const bytes = data.subarray(offset, offset + meta.readUInt32LE(at + Record.dataLength));
      if (this.recordFlags(meta, at).truncated) {
        // A cut packet can be neither parsed nor forwarded whole.
        this.stats.malformed++;
        continue;
      }
      const ifindex = meta.readInt32LE(at + Record.ifindex);
      const ingress = ifindex > 0 ? { index: ifindex, name: this.names.name(ifindex) } : null;
      const pkt = this.family === 6 ? this.packet6(bytes, ingress) : this.packet4(bytes, ingress);
      if (pkt === undefined) continue;
      this.pending.add(pkt);
      // RouterAlertPacketOf<F> is exactly the family's packet type; TypeScript cannot
      // follow a conditional type through a runtime family check.
      const item = pkt as RouterAlertPacketOf<F>;
      if (wantEvents) this.emit('packet', item);
      if (wantItems) this.pushToIterators(item);
      if (this.closed) return;
    }
  }

  private packet6(bytes: Buffer, ingress: InterfaceRef | null): RouterAlertPacket | undefined {
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
    const routerAlert = parsed.hopByHop === undefined ? undefined : findRouterAlert(parsed.hopByHop);
    if (routerAlert === undefined) {
      this.stats.malformed++;
      return undefined;
    }
    // Extends the parsed object itself: packet.ts recognises it (by identity) as parsed,
    // which is how serializePacket knows what the application changed.
    return Object.assign(parsed, { family: 6 as const, routerAlert, ingress, bytes });
  }

  private packet4(bytes: Buffer, ingress: InterfaceRef | null): Ipv4RouterAlertPacket | undefined {
    let parsed: ReturnType<typeof parseIpv4>;
    try {
      parsed = parseIpv4(bytes);
    } catch {
      this.stats.malformed++;
      return undefined;
    }
    if (parsed.routerAlert === undefined) {
      // A raw IPv4 socket also gets its protocol's packets addressed to this host.
      this.stats.ignored++;
      return undefined;
    }
    return { family: 4, header: parsed.header, routerAlert: parsed.routerAlert, payload: parsed.payload, ingress, bytes };
  }

  /** The bytes to send for an IPv6 packet, with its current fields and an optional new payload. */
  private rebuild(pkt: RouterAlertPacket, payload: Buffer | undefined): Buffer {
    if (payload === undefined) return serializePacket(pkt);
    // A copy of the view is not the parsed object, so serializePacket treats it as new and
    // recomputes lengths and checksums; the application's packet stays as it was.
    if (pkt.udp !== undefined) return serializePacket({ ...pkt, udp: { ...pkt.udp, data: payload } });
    return serializePacket({ ...pkt, payload, udp: undefined, icmpv6: undefined });
  }

  /** Sends ICMP Time Exceeded (hop limit exceeded in transit, code 0) to the packet's source. */
  private async timeExceeded(pkt: RouterAlertPacket | Ipv4RouterAlertPacket): Promise<ForwardResult> {
    const notSent = { forwarded: false, reason: 'hop-limit-exceeded', timeExceededSent: false } as const;
    const source = pkt.header.source;
    // Never an error about an error (RFC 4443 §2.4(e), RFC 1812 §4.3.2.7).
    const isError = pkt.family === 6 ? pkt.protocol === 58 && pkt.icmpv6 !== undefined && pkt.icmpv6.type < 128 : pkt.header.protocol === 1 && [3, 4, 5, 11, 12].includes(pkt.payload[0]);
    if (!mayReportTo(source, this.family) || isError || !this.icmpLimit.take()) return notSent;

    let message: Buffer;
    let address = source;
    if (pkt.family === 6) {
      // type 3, code 0, checksum (the kernel fills it in on raw ICMPv6), 4 unused bytes,
      // then as much of the invoking packet as keeps the whole message within 1280 bytes.
      const room = IPV6_MIN_MTU - 40 - 8;
      message = Buffer.alloc(8 + Math.min(room, pkt.bytes.length));
      message[0] = 3;
      pkt.bytes.copy(message, 8, 0, room);
      if (isLinkLocal6(source) && pkt.ingress !== null) address = `${source}%${pkt.ingress.index}`;
    } else {
      // type 11, code 0, checksum, 4 unused bytes, then the invoking datagram within 576
      // bytes. Raw ICMPv4 gets no kernel checksum: computed here.
      const room = IPV4_ICMP_ERROR_MAX - 20 - 8;
      message = Buffer.alloc(8 + Math.min(room, pkt.bytes.length));
      message[0] = 11;
      pkt.bytes.copy(message, 8, 0, room);
      message.writeUInt16BE(internetChecksum([message]), 2);
    }
    const context: ErrorContext = { address, netns: this.netns, hint: 'sending ICMP Time Exceeded to the source' };
    let from: string;
    try {
      // The address this router would use to reach the source: the one on the link the
      // packet came in on, as RFC 4443 §2.2 asks for errors about packets not sent to us.
      from = sourceFor(address, { netns: this.netns });
    } catch (err) {
      throw withContext(err, context);
    }
    const sock = this.icmpSocket();
    await sock.send(message, { address, source: from }).catch((err: unknown) => {
      throw withContext(err, context);
    });
    return { forwarded: false, reason: 'hop-limit-exceeded', timeExceededSent: true };
  }

  /** The raw ICMP socket errors leave from, opened on first use in the same namespace. */
  private icmpSocket(): RawSocket {
    if (this.icmp === undefined) {
      this.icmp =
        this.family === 6
          ? // Send-only: the filter blocks every type, so nothing queues up in it.
            new RawSocket({ family: 6, protocol: 58, netns: this.netns, icmpFilter: { pass: [] } })
          : // IPv4 raw ICMP has no filter constant here; the smallest buffer bounds what queues.
            new RawSocket({ family: 4, protocol: 1, netns: this.netns, receiveBufferSize: 1 });
    }
    return this.icmp;
  }

  private checkPending(packet: unknown): void {
    if (typeof packet !== 'object' || packet === null) throw invalidArgType('packet', 'a packet emitted by this RouterAlertSocket', packet);
    if (this.handled.has(packet)) throw stateError('ERR_INVALID_STATE', 'Invalid state: this packet was already forwarded or dropped');
    if (!this.pending.has(packet)) throw invalidArgValue('packet', packet, 'must be a packet emitted by this RouterAlertSocket');
  }

  private settle(packet: object): void {
    this.pending.delete(packet);
    this.handled.add(packet);
  }

  private configure(): void {
    const c = constants();
    if (this.family === 6) {
      // THE CHAIN IS GLOBAL ACROSS NETWORK NAMESPACES: without isolation a socket here
      // takes (and so stops) packets that any other namespace of the machine forwards,
      // e.g. another container's or a parallel test's. Set before registering the value,
      // so not even one foreign packet queues up.
      if (this.isolate) this.setInt(c.IPPROTO_IPV6, c.IPV6_ROUTER_ALERT_ISOLATE, 1, 'IPV6_ROUTER_ALERT_ISOLATE');
      this.setInt(c.IPPROTO_IPV6, c.IPV6_ROUTER_ALERT, this.value as number, 'IPV6_ROUTER_ALERT');
      this.setInt(c.IPPROTO_IPV6, c.IPV6_RECVPKTINFO, 1, 'IPV6_RECVPKTINFO');
    } else {
      this.setInt(c.IPPROTO_IP, c.IP_ROUTER_ALERT, 1, 'IP_ROUTER_ALERT');
      this.setInt(c.IPPROTO_IP, c.IP_PKTINFO, 1, 'IP_PKTINFO');
      // forward() sends the whole packet, header included.
      this.setInt(c.IPPROTO_IP, c.IP_HDRINCL, 1, 'IP_HDRINCL');
    }
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
    const warning = Object.assign(
      new Error(`net.${name.replace(/\//g, '.')} is 0 in ${where}: the kernel taps only packets it forwards, so this RouterAlertSocket will never receive one`),
      { name: 'Ip6sockWarning', code: NO_FORWARDING_WARNING },
    );
    // Next tick: the caller can attach a 'warning' listener right after the constructor.
    process.nextTick(() => {
      if (this.closed) return;
      if (this.listenerCount('warning') > 0) this.emit('warning', warning);
      else process.emitWarning(warning.message, { type: warning.name, code: warning.code });
    });
  }
}

