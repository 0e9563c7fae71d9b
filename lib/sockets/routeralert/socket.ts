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
 * @packageDocumentation
 */
import { inspect } from 'node:util';
import { ErrorContext, invalidArgType, invalidArgValue, stateError, withContext } from '../../errors';
import { findRouterAlert } from '../../codec/hopbyhop';
import { sourceFor, type InterfaceRef } from '../../links/interfaces';
import { AddressCache, formatIpv6 } from '../../codec/ipv6addr';
import { constants } from '../../core/native';
import type { RecordBatch } from '../../core/records';
import {
  parsePacket,
  serializePacket,
  internetChecksum,
  type DestinationOptionsHeader,
  type ExtensionHeader,
  type FragmentInfo,
  type Icmpv6Message,
  type Ipv6Header,
  type Ipv6Packet,
  type PacketOptionsHeader,
  type RoutingInfo,
  type UdpDatagram,
} from '../../codec/packet';
import { RawSocket } from '../raw';
import { eventMap, type Events } from '../../core/events';
import { BaseSocket, NO_CONTROL, type SocketEvents, type SocketOptions, type SocketStats } from '../socket';
import { sysctl } from '../../system';
import { toBuffer, validateBoolean, validateFamily, validateInteger, validateObject, validateOptionalObject, type Family } from '../../validate';

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

/**
 * An IPv6 packet tapped by a RouterAlertSocket: the parsed packet plus where it came from.
 *
 * `family`, `routerAlert` and `ingress` are plain properties. The fields of the parsed
 * packet (`header`, `hopByHop`, `extensions`, `protocol`, `payload`, `udp`, `icmpv6`, ...),
 * `routerAlerts` and `bytes` are accessors of the packet's class, decoded on first read and the same
 * objects on every read after; assigning to them works as on a parsed packet. Being
 * accessors, they are not own properties: `{ ...pkt }` and `Object.keys(pkt)` carry only
 * the plain ones, `delete` does not remove them (assign `undefined` instead, e.g. to
 * remove the hop-by-hop header), while `JSON.stringify(pkt)` (`toJSON()`) and
 * `util.inspect` show them all.
 */
export interface RouterAlertPacket extends Ipv6Packet {
  family: 6;
  /**
   * The Router Alert value the kernel matched: the socket's value. A packet may carry more
   * than one Router Alert option (see `routerAlerts`); the kernel taps it for the value of
   * the last one.
   */
  routerAlert: number;
  /** Every Router Alert option value of the hop-by-hop header as it arrived, in wire order. */
  readonly routerAlerts: readonly number[];
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
  /** The value of the packet's (first) Router Alert option (0: "examine packet"). */
  routerAlert: number;
  /** Every Router Alert option value of the header as it arrived, in wire order (as on IPv6 taps). */
  readonly routerAlerts: readonly number[];
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

/** Parses the IPv4 header of a tapped packet, and the values of its Router Alert options. */
export function parseIpv4(b: Buffer): { header: Ipv4Header; routerAlert: number | undefined; routerAlerts: number[]; payload: Buffer } {
  if (b.length < 20) throw malformed(`${b.length} bytes is shorter than the 20-byte IPv4 header`);
  if (b[0] >> 4 !== 4) throw malformed(`IP version ${b[0] >> 4}, expected 4`);
  const headerLength = (b[0] & 0x0f) * 4;
  const totalLength = b.readUInt16BE(2);
  if (headerLength < 20 || headerLength > totalLength || totalLength > b.length) {
    throw malformed(`header length ${headerLength} and total length ${totalLength} do not fit ${b.length} bytes`);
  }
  const options = b.subarray(20, headerLength);
  const routerAlerts: number[] = [];
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
    if (type === 148 && len === 4) routerAlerts.push(options.readUInt16BE(i + 2));
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
    routerAlert: routerAlerts[0],
    routerAlerts,
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

/** The `options` of forward(), validated: the new payload, if any. */
function forwardPayload(options: unknown): Buffer | undefined {
  const opts = validateOptionalObject<ForwardOptions>(options, 'options');
  return opts.payload === undefined ? undefined : toBuffer(opts.payload, 'options.payload');
}

/** Next-header values parsePacket walks as extension headers (RFC 8200 §4). */
function isExtensionHeader(nh: number): boolean {
  return nh === 0 || nh === 43 || nh === 44 || nh === 51 || nh === 60 || nh === 135 || nh === 139 || nh === 140;
}

/**
 * The Router Alert value of the tapped packet at b[start..start+length) when it has the
 * common shape (IPv6 header, a hop-by-hop header carrying the alert and no jumbo payload
 * option, then directly a UDP, ICMPv6 or other non-extension upper layer), else -1.
 *
 * Only a packet that `parsePacket(bytes, { strict: false })` accepts, with the same first
 * Router Alert as `findRouterAlert` finds, gets a value; anything else (-1) is left to the
 * full parser, which decides whether it is malformed. Nothing is allocated.
 *
 * @internal exported for the tests
 */
export function quickRouterAlert(b: Uint8Array, start: number, length: number): number {
  if (length < 48 || b[start] >> 4 !== 6 || b[start + 6] !== 0) return -1;
  const payloadLength = (b[start + 4] << 8) | b[start + 5];
  // 0 would be a jumbogram's (RFC 2675): the full parser handles those.
  if (payloadLength === 0 || 40 + payloadLength > length) return -1;
  const end = start + 40 + payloadLength;
  const hbh = start + 40;
  const hbhEnd = hbh + (b[hbh + 1] + 1) * 8;
  if (hbhEnd > end) return -1;
  // The options walk of hopbyhop.decode: Pad1 is one byte, every other option has a length
  // byte, and no option may run past the header.
  let routerAlert = -1;
  for (let off = hbh + 2; off < hbhEnd; ) {
    const type = b[off];
    if (type === 0) {
      off++;
      continue;
    }
    if (off + 1 >= hbhEnd) return -1;
    const len = b[off + 1];
    if (off + 2 + len > hbhEnd) return -1;
    if (type === 0xc2) return -1;
    // RFC 2711: type 5, length 2. The first one counts, as in findRouterAlert.
    if (type === 5 && len === 2 && routerAlert < 0) routerAlert = (b[off + 2] << 8) | b[off + 3];
    off += 2 + len;
  }
  if (routerAlert < 0) return -1;
  const nh = b[hbh];
  if (isExtensionHeader(nh)) return -1;
  const upper = end - hbhEnd;
  if (nh === 17) {
    // parsePacket's UDP checks outside a jumbogram: a whole header, 8 <= Length <= payload.
    if (upper < 8) return -1;
    const udpLength = (b[hbhEnd + 4] << 8) | b[hbhEnd + 5];
    if (udpLength < 8 || udpLength > upper) return -1;
  } else if (nh === 58 && upper < 4) {
    return -1;
  }
  return routerAlert;
}

/**
 * The values of every Router Alert option (type 5, length 2) of the hop-by-hop header that
 * follows the IPv6 header at b[start], in wire order. The packet was validated on arrival.
 */
function routerAlertsIn(b: Uint8Array, start: number, length: number): number[] {
  const values: number[] = [];
  const hbh = start + 40;
  if (length < 48 || b[start + 6] !== 0) return values;
  const hbhEnd = Math.min(hbh + (b[hbh + 1] + 1) * 8, start + length);
  for (let off = hbh + 2; off < hbhEnd; ) {
    const type = b[off];
    if (type === 0) {
      off++;
      continue;
    }
    if (off + 1 >= hbhEnd) break;
    const len = b[off + 1];
    if (off + 2 + len > hbhEnd) break;
    if (type === 5 && len === 2) values.push((b[off + 2] << 8) | b[off + 3]);
    off += 2 + len;
  }
  return values;
}

/** Tapped.stateOf: not a packet of this socket, waiting for forward() or drop(), or done. */
const FOREIGN = 0;
const PENDING = 1;
const HANDLED = 2;

/**
 * What every tapped packet carries privately: the socket that emitted it (its token) and
 * whether it was forwarded or dropped. Private fields, so a copy of a packet, or an object
 * made to look like one, is not taken for it.
 */
abstract class Tapped {
  readonly #owner: object;
  #handled = false;

  protected constructor(owner: object) {
    this.#owner = owner;
  }

  static stateOf(packet: object, owner: object): number {
    if (!(#owner in packet) || packet.#owner !== owner) return FOREIGN;
    return packet.#handled ? HANDLED : PENDING;
  }

  static settle(packet: Tapped): void {
    packet.#handled = true;
  }
}

/**
 * An IPv6 packet as a RouterAlertSocket emits it. The fields of the parsed packet are
 * decoded on first read (parsePacket, kept with its snapshot, so serializePacket sees what
 * the application changed exactly as for any parsed packet); a packet whose decoded parts
 * were never handed out cannot have changed and is forwarded as a copy of its bytes (which
 * is what serializePacket makes of an unchanged packet: the fuzz suite checks that for
 * every packet parsePacket accepts).
 *
 * The header alone is cheap and often read (addresses, hop limit): it is made without a
 * full parse, and while what serializePacket would write from it is unchanged (version,
 * traffic class, flow label, addresses; payload length and next header are recomputed,
 * the hop limit is forward()'s) the packet still counts as untouched.
 */
class TappedPacket6 extends Tapped implements RouterAlertPacket {
  family = 6 as const;
  routerAlert: number;
  ingress: InterfaceRef | null;

  /** The batch buffer and where the packet lies in it. */
  readonly #data: Buffer;
  readonly #start: number;
  readonly #length: number;
  /** Bytes a forward of the unchanged packet sends: the IPv6 header and its payload. */
  readonly #end: number;
  /** The upper-layer protocol (what parsePacket would say). */
  readonly #protocol: number;
  #bytes: Buffer | undefined;
  /** The full parse: made on first read of a decoded part, or on arrival for an uncommon shape. */
  #parsed: Ipv6Packet | undefined;
  /** The header handed out (or assigned), and the addresses it had when handed out. */
  #header: Ipv6Header | undefined;
  #source = '';
  #destination = '';
  /** A decoded part other than the header, or `bytes`, was handed out or assigned: forward() rebuilds. */
  #exposed = false;
  #routerAlerts: readonly number[] | undefined;

  constructor(owner: object, data: Buffer, start: number, length: number, routerAlert: number, ingress: InterfaceRef | null, parsed: Ipv6Packet | undefined) {
    super(owner);
    this.routerAlert = routerAlert;
    this.ingress = ingress;
    this.#data = data;
    this.#start = start;
    this.#length = length;
    this.#parsed = parsed;
    const payloadLength = (data[start + 4] << 8) | data[start + 5];
    if (parsed === undefined) {
      this.#end = 40 + payloadLength;
      this.#protocol = data[start + 40];
    } else {
      const jumbo = payloadLength === 0 ? parsed.hopByHop?.options.find((o) => o.name === 'jumboPayload') : undefined;
      this.#end = 40 + (jumbo !== undefined && jumbo.name === 'jumboPayload' ? jumbo.jumboPayloadLength : payloadLength);
      this.#protocol = parsed.protocol;
    }
  }

  /** The full parse, made now if need be, with the header the application already has. */
  #full(): Ipv6Packet {
    let p = this.#parsed;
    if (p === undefined) {
      // Validated on arrival (quickRouterAlert), so this does not throw.
      p = parsePacket(this.#view(), { strict: false });
      if (this.#header !== undefined) p.header = this.#header;
      this.#parsed = p;
    }
    return p;
  }

  /** Read from the received bytes, so edits of `hopByHop` do not change what arrived. */
  get routerAlerts(): readonly number[] {
    return (this.#routerAlerts ??= Object.freeze(routerAlertsIn(this.#data, this.#start, this.#length)));
  }

  #view(): Buffer {
    return (this.#bytes ??= this.#data.subarray(this.#start, this.#start + this.#length));
  }

  /** Hands out a decoded part: from now on the application may change it in place. */
  #out<T>(value: T): T {
    if (value !== undefined) this.#exposed = true;
    return value;
  }

  #set<K extends keyof Ipv6Packet>(key: K, value: Ipv6Packet[K]): void {
    this.#full()[key] = value;
    this.#exposed = true;
  }

  get header(): Ipv6Header {
    let h = this.#header;
    if (h === undefined) {
      if (this.#parsed !== undefined) {
        h = this.#parsed.header;
      } else {
        const b = this.#data;
        const at = this.#start;
        h = {
          version: 6,
          trafficClass: ((b[at] & 0x0f) << 4) | (b[at + 1] >> 4),
          flowLabel: ((b[at + 1] & 0x0f) << 16) | (b[at + 2] << 8) | b[at + 3],
          payloadLength: (b[at + 4] << 8) | b[at + 5],
          nextHeader: b[at + 6],
          hopLimit: b[at + 7],
          source: formatIpv6(b, at + 8),
          destination: formatIpv6(b, at + 24),
        };
      }
      this.#header = h;
      this.#source = h.source;
      this.#destination = h.destination;
    }
    return h;
  }
  set header(value: Ipv6Header) {
    this.#set('header', value);
    this.#header = value;
  }

  get hopByHop(): PacketOptionsHeader | undefined {
    return this.#out(this.#full().hopByHop);
  }
  set hopByHop(value: PacketOptionsHeader | undefined) {
    this.#set('hopByHop', value);
  }

  get destinationOptions(): DestinationOptionsHeader[] | undefined {
    return this.#out(this.#full().destinationOptions);
  }
  set destinationOptions(value: DestinationOptionsHeader[] | undefined) {
    this.#set('destinationOptions', value);
  }

  get routing(): RoutingInfo | undefined {
    return this.#out(this.#full().routing);
  }
  set routing(value: RoutingInfo | undefined) {
    this.#set('routing', value);
  }

  get fragment(): FragmentInfo | undefined {
    return this.#out(this.#full().fragment);
  }
  set fragment(value: FragmentInfo | undefined) {
    this.#set('fragment', value);
  }

  get extensions(): ExtensionHeader[] {
    return this.#out(this.#full().extensions);
  }
  set extensions(value: ExtensionHeader[]) {
    this.#set('extensions', value);
  }

  get protocol(): number {
    return this.#parsed === undefined ? this.#protocol : this.#parsed.protocol;
  }
  set protocol(value: number) {
    this.#set('protocol', value);
  }

  get payload(): Buffer {
    return this.#out(this.#full().payload);
  }
  set payload(value: Buffer) {
    this.#set('payload', value);
  }

  get udp(): UdpDatagram | undefined {
    return this.#out(this.#full().udp);
  }
  set udp(value: UdpDatagram | undefined) {
    this.#set('udp', value);
  }

  get icmpv6(): Icmpv6Message | undefined {
    return this.#out(this.#full().icmpv6);
  }
  set icmpv6(value: Icmpv6Message | undefined) {
    this.#set('icmpv6', value);
  }

  /** The whole packet as received. Parsed first, so that changes made in it are seen as changes. */
  get bytes(): Buffer {
    this.#full();
    this.#exposed = true;
    return this.#view();
  }
  set bytes(value: Buffer) {
    this.#full();
    this.#exposed = true;
    this.#bytes = value;
  }

  /** The packet as a plain object with every field, for JSON.stringify. */
  toJSON(): Record<string, unknown> {
    this.#exposed = true;
    return this.#plain();
  }

  /** util.inspect shows every field (shown, not handed out: the packet stays untouched). */
  [inspect.custom](): Record<string, unknown> {
    return this.#plain();
  }

  #plain(): Record<string, unknown> {
    const p = this.#full();
    // Through the accessor, so that forward() knows the header is out.
    p.header = this.header;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(p) as Array<keyof Ipv6Packet>) if (p[key] !== undefined) out[key] = p[key];
    out.family = this.family;
    out.routerAlert = this.routerAlert;
    out.routerAlerts = this.routerAlerts;
    out.ingress = this.ingress;
    out.bytes = this.#view();
    return out;
  }

  /**
   * The header forward() goes by: the application's once it has one, else the parsed one
   * (decoded before `bytes` was handed out), else none yet: the bytes say it all.
   */
  static #headerOf(pkt: TappedPacket6): Ipv6Header | undefined {
    return pkt.#header ?? pkt.#parsed?.header;
  }

  /** forward()'s hop limit: the header's, validated. */
  static hopLimitOf(pkt: TappedPacket6): number {
    const h = TappedPacket6.#headerOf(pkt);
    if (h === undefined) return pkt.#data[pkt.#start + 7];
    return validateInteger(h.hopLimit, 'packet.header.hopLimit', 0, 255);
  }

  /** The bytes to send (hop limit still to be set), rebuilt only if something could have changed. */
  static wire(pkt: TappedPacket6, payload: Buffer | undefined): Buffer {
    if (payload === undefined && TappedPacket6.untouched(pkt)) {
      const out = Buffer.allocUnsafe(pkt.#end);
      pkt.#data.copy(out, 0, pkt.#start, pkt.#start + pkt.#end);
      return out;
    }
    const p = pkt.#full();
    if (payload === undefined) return serializePacket(p);
    // A copy of the view is not the parsed object, so serializePacket treats it as new and
    // recomputes lengths and checksums; the application's packet stays as it was.
    if (p.udp !== undefined) return serializePacket({ ...p, udp: { ...p.udp, data: payload } });
    return serializePacket({ ...p, payload, udp: undefined, icmpv6: undefined });
  }

  /** Where forward() sends the packet: its header's destination. */
  static destinationOf(pkt: TappedPacket6, cache: AddressCache): string {
    const h = TappedPacket6.#headerOf(pkt);
    return h === undefined ? cache.formatAt(pkt.#data, pkt.#start + 24) : h.destination;
  }

  /** Whether serializePacket would give back exactly the bytes that came. */
  static untouched(pkt: TappedPacket6): boolean {
    if (pkt.#exposed) return false;
    const h = pkt.#header;
    if (h === undefined) return true;
    const b = pkt.#data;
    const at = pkt.#start;
    return (
      typeof h === 'object' &&
      h !== null &&
      h.version === 6 &&
      h.trafficClass === (((b[at] & 0x0f) << 4) | (b[at + 1] >> 4)) &&
      h.flowLabel === (((b[at + 1] & 0x0f) << 16) | (b[at + 2] << 8) | b[at + 3]) &&
      h.source === pkt.#source &&
      h.destination === pkt.#destination
    );
  }
}

/** An IPv4 packet as a RouterAlertSocket emits it: every field decoded on arrival. */
class TappedPacket4 extends Tapped implements Ipv4RouterAlertPacket {
  family = 4 as const;
  header: Ipv4Header;
  routerAlert: number;
  readonly routerAlerts: readonly number[];
  payload: Buffer;
  ingress: InterfaceRef | null;
  bytes: Buffer;

  constructor(owner: object, header: Ipv4Header, routerAlerts: readonly number[], payload: Buffer, ingress: InterfaceRef | null, bytes: Buffer) {
    super(owner);
    this.header = header;
    this.routerAlert = routerAlerts[0];
    this.routerAlerts = Object.freeze(routerAlerts);
    this.payload = payload;
    this.ingress = ingress;
    this.bytes = bytes;
  }
}

/**
 * Events of a RouterAlertSocket: 'packet' for every tapped packet, 'warning' (code
 * IP6SOCK_NO_FORWARDING when the namespace does not forward), 'drain', 'error', 'close'.
 */
export interface RouterAlertSocketEvents<F extends Family = 6> extends SocketEvents {
  /** A tapped packet, held for this socket: forward() or drop() it. */
  packet: [packet: RouterAlertPacketOf<F>];
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
  /** @internal */
  declare readonly [eventMap]: Events<RouterAlertSocketEvents<F>>;

  /** The Router Alert value tapped (IPv6), or undefined (IPv4 taps every value). */
  readonly value: number | undefined;
  /** IPv4: the protocol tapped; IPv6: 255. */
  readonly protocol: number;
  /** Whether the socket sees only its own namespace's packets (always true for IPv4, whose chain is per namespace). */
  readonly isolate: boolean;
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
      const pkt = this.checkPending(packet);
      const payload = options === undefined ? undefined : forwardPayload(options);
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
    const icmp = this.icmp;
    this.icmp = undefined;
    if (icmp !== undefined) void icmp.close();
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
    let parsed: ReturnType<typeof parseIpv4>;
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
    return this.sendNative(bytes, destination, 0, 0, NO_CONTROL, this.lastContext).map(this.sent);
  }

  /** A packet whose hop limit (TTL) would reach 0: settled, counted, reported to its source. */
  private expired(pkt: TappedPacket6 | TappedPacket4): Promise<ForwardResult> {
    Tapped.settle(pkt);
    this.stats.hopLimitExceeded++;
    return this.trackedSend(this.timeExceeded(pkt));
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
      if (this.listenerCount('warning') > 0) (this as RouterAlertSocket<F>).emit('warning', warning);
      else process.emitWarning(warning.message, { type: warning.name, code: warning.code });
    });
  }
}

