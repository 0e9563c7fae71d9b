/**
 * The words every part of ip6sock uses for interfaces: plain types, importing nothing, so
 * that the codecs, the rtnetlink parser, the watcher and the sockets can share them without
 * importing one another.
 * @packageDocumentation
 */
/** Where to look: a network namespace name (under /run/netns) or path; default the caller's. */
export interface NamespaceOptions {
  netns?: string;
}

/** An interface as given by the caller: its index, its name, or (where allowed) 'all'. */
export type InterfaceSpec = number | string;

/** An interface identified both ways, as reported on every received packet. */
export interface InterfaceRef {
  index: number;
  name: string;
}

export interface InterfaceAddress {
  address: string;
  prefixLength: number;
  family: 4 | 6;
  /** Scope id (the interface index) for link-local IPv6 addresses, else 0. */
  scopeId: number;
}

export interface InterfaceFlags {
  up: boolean;
  running: boolean;
  multicast: boolean;
  loopback: boolean;
  broadcast: boolean;
  pointToPoint: boolean;
}

export interface NetworkInterface extends InterfaceRef {
  flags: InterfaceFlags;
  /** IPv6 link-local addresses (fe80::/10). */
  linkLocal: InterfaceAddress[];
  /** Other IPv6 unicast addresses (global and unique-local), loopback excluded. */
  global: InterfaceAddress[];
  /** IPv4 addresses. */
  ipv4: InterfaceAddress[];
  /** Every address, in the kernel's order. */
  addresses: InterfaceAddress[];
}
