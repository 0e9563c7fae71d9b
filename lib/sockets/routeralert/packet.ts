/**
 * The packets a RouterAlertSocket emits: the IPv6 one a lazy view over the received bytes
 * (decoded on first read, forwarded as a copy of its bytes while untouched), the IPv4 one
 * decoded on arrival, and the private mark by which forward() and drop() know their own.
 * @packageDocumentation
 */
import { inspect } from 'node:util';
import type { InterfaceRef } from '../../links/types';
import { AddressCache, formatIpv6 } from '../../codec/ipv6addr';
import { extensionHeaderLength, isExtensionHeader, isRouterAlertAt, nextOption } from '../../codec/extensions';
import type { Ipv4Header } from '../../codec/ipv4';
import {
  parsePacket,
  serializePacket,
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
import { validateInteger } from '../../validate';
import type { Ipv4RouterAlertPacket, RouterAlertPacket } from './types';

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
  const hbhEnd = hbh + extensionHeaderLength(0, b[hbh + 1]);
  if (hbhEnd > end) return -1;
  let routerAlert = -1;
  for (let off = hbh + 2; off < hbhEnd; ) {
    const next = nextOption(b, off, hbhEnd);
    if (next < 0) return -1;
    // A jumbo payload option: the full parser's case.
    if (b[off] === 0xc2) return -1;
    // The first one counts, as in findRouterAlert.
    if (routerAlert < 0 && isRouterAlertAt(b, off, next)) routerAlert = (b[off + 2] << 8) | b[off + 3];
    off = next;
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
  const hbhEnd = Math.min(hbh + extensionHeaderLength(0, b[hbh + 1]), start + length);
  for (let off = hbh + 2; off < hbhEnd; ) {
    const next = nextOption(b, off, hbhEnd);
    if (next < 0) break;
    if (isRouterAlertAt(b, off, next)) values.push((b[off + 2] << 8) | b[off + 3]);
    off = next;
  }
  return values;
}

/** Tapped.stateOf: not a packet of this socket, waiting for forward() or drop(), or done. */
export const FOREIGN = 0;
export const PENDING = 1;
export const HANDLED = 2;

/**
 * What every tapped packet carries privately: the socket that emitted it (its token) and
 * whether it was forwarded or dropped. Private fields, so a copy of a packet, or an object
 * made to look like one, is not taken for it.
 */
export abstract class Tapped {
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
export class TappedPacket6 extends Tapped implements RouterAlertPacket {
  family = 6 as const;
  routerAlert: number;
  interface: InterfaceRef | null;

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

  constructor(owner: object, data: Buffer, start: number, length: number, routerAlert: number, arrival: InterfaceRef | null, parsed: Ipv6Packet | undefined) {
    super(owner);
    this.routerAlert = routerAlert;
    this.interface = arrival;
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
    out.interface = this.interface;
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
export class TappedPacket4 extends Tapped implements Ipv4RouterAlertPacket {
  family = 4 as const;
  header: Ipv4Header;
  routerAlert: number;
  readonly routerAlerts: readonly number[];
  payload: Buffer;
  interface: InterfaceRef | null;
  bytes: Buffer;

  constructor(owner: object, header: Ipv4Header, routerAlerts: readonly number[], payload: Buffer, arrival: InterfaceRef | null, bytes: Buffer) {
    super(owner);
    this.header = header;
    this.routerAlert = routerAlerts[0];
    this.routerAlerts = Object.freeze(routerAlerts);
    this.payload = payload;
    this.interface = arrival;
    this.bytes = bytes;
  }
}

