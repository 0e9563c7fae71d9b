/**
 * The public shapes of the packets a RouterAlertSocket emits. Types only: the classes that
 * implement them (packet.ts) keep private fields that published declarations must not show.
 * @packageDocumentation
 */
import type { InterfaceRef } from '../../links/types';
import type { Ipv4Header } from '../../codec/ipv4';
import type { Ipv6Packet } from '../../codec/packet';
import type { Family } from '../../validate';

/**
 * An IPv6 packet tapped by a RouterAlertSocket: the parsed packet plus where it came from.
 *
 * `family`, `routerAlert` and `interface` are plain properties. The fields of the parsed
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
  /** The interface the packet arrived on (null when the kernel did not say). */
  interface: InterfaceRef | null;
  /** The whole packet as received (IPv6 header first). */
  bytes: Buffer;
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
  /** The interface the packet arrived on (null when the kernel did not say). */
  interface: InterfaceRef | null;
  /** The whole packet as received (IPv4 header first). */
  bytes: Buffer;
}

/** The packet type a RouterAlertSocket of family F delivers. */
export type RouterAlertPacketOf<F extends Family> = F extends 4 ? Ipv4RouterAlertPacket : RouterAlertPacket;
