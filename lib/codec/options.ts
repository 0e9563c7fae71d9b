/**
 * The option types of hop-by-hop and destination options headers: their numbers, the
 * registered router alert values and the shapes of decoded options. Types and constants
 * only, so that the encoder's input snapshots and the codec can both use them.
 * @packageDocumentation
 */

/** Option type numbers this codec knows (IANA "Destination Options and Hop-by-Hop Options"). */
export const optionTypes = Object.freeze({
  /** One byte of padding, no length byte. */
  PAD1: 0,
  /** `length` bytes of zero padding. */
  PADN: 1,
  /** RFC 2711 Router Alert, 16-bit value, alignment 2n+0. */
  ROUTER_ALERT: 5,
  /** RFC 2675 Jumbo Payload, 32-bit length, alignment 4n+2. */
  JUMBO_PAYLOAD: 0xc2,
} as const);

/**
 * Router Alert values registered with IANA (RFC 2711, RFC 3175 ...). MLD uses 0, RSVP 1.
 * Linux delivers only forwarded packets to router-alert sockets; MLD (always multicast,
 * link-local) never reaches them.
 */
export const routerAlertValues = Object.freeze({
  /** Multicast Listener Discovery message. */
  MLD: 0,
  /** RSVP message. */
  RSVP: 1,
  /** Active Networks message. */
  ACTIVE_NETWORKS: 2,
} as const);

/** One of the named {@link routerAlertValues}; any 16-bit value is valid on the wire. */
export type RouterAlertValue = (typeof routerAlertValues)[keyof typeof routerAlertValues];

/**
 * What a node that does not recognise an option must do, from the option type's two high
 * bits (RFC 8200 §4.2).
 */
export const optionActions = Object.freeze({
  /** 00: skip the option and continue processing the header. */
  SKIP: 0,
  /** 01: discard the packet. */
  DISCARD: 1,
  /** 10: discard and send ICMPv6 Parameter Problem, code 2, even to a multicast destination. */
  DISCARD_ICMP: 2,
  /** 11: discard and send ICMPv6 Parameter Problem, code 2, unless the destination is multicast. */
  DISCARD_ICMP_UNLESS_MULTICAST: 3,
} as const);

/** The action bits of an option type (see {@link optionActions}). */
export type OptionAction = 0 | 1 | 2 | 3;

/** Router Alert option (RFC 2711): routers on the path should look at this packet. */
export interface RouterAlertOption {
  type: 5;
  name: 'routerAlert';
  /** 16-bit value saying what kind of message this is (see {@link routerAlertValues}). */
  routerAlert: number;
}

/** Jumbo Payload option (RFC 2675): the packet's real payload length, over 65,535. */
export interface JumboPayloadOption {
  type: 0xc2;
  name: 'jumboPayload';
  /** Length of the packet after the IPv6 header, hop-by-hop header included (> 65,535). */
  jumboPayloadLength: number;
}

/**
 * Any other option, kept as raw bytes. `action` and `mayChange` are decoded from `type` for
 * convenience; `encode` writes only `type` and `data` and ignores them.
 */
export interface UnknownOption {
  type: number;
  name: 'unknown';
  /** Option data, without the type and length bytes. Decoded options are views into the input. */
  data: Buffer;
  /** Top two bits of `type`: what a node that does not know the option does. */
  action: OptionAction;
  /** Third-highest bit of `type`: the data may change en route (and is zeroed for AH). */
  mayChange: boolean;
}

/** A decoded or to-be-encoded option. Discriminate on `name`. Padding is never an option. */
export type HopByHopOption = RouterAlertOption | JumboPayloadOption | UnknownOption;
