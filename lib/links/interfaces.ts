/**
 * "Who am I": the interfaces of a host (or of a network namespace), their indexes, flags,
 * link-local and global addresses, and the source address the kernel would pick for a
 * destination, and watch() to hear about every change as it happens. Every function takes
 * `{ netns }`.
 * @packageDocumentation
 */
import { attempt } from '../errors';
import { directoryOf } from './directory';
import { isLinkLocalIpv6 } from '../codec/ipv6addr';
import { linkFlags } from './rtnetlink';
import { constants, native } from '../core/native';
import { optionKeys, validateOptionKeys, netnsPath, splitZone, validateAddress, validateInteger, validateInterfaceName, validateOptionalObject, validateString } from '../validate';
import * as net from 'node:net';

export { watch, InterfaceWatcher } from './watcher';
export type { WatchOptions, LinkChange, LinkEvent, AddressEvent, InterfaceEvent, WatchedLink, WatchedAddress } from './watcher';

export type { NamespaceOptions, InterfaceSpec, InterfaceRef, InterfaceAddress, InterfaceFlags, NetworkInterface } from './types';
import type { NamespaceOptions, InterfaceRef, InterfaceSpec, NetworkInterface, InterfaceAddress } from './types';

/** Lists the interfaces of the namespace, each with its flags and addresses. */
const NAMESPACE_KEYS = optionKeys<NamespaceOptions>({ netns: true });
const SOURCE_FOR_KEYS = optionKeys<SourceForOptions>({ netns: true, interface: true });

export function list(options?: NamespaceOptions): NetworkInterface[] {
  const opts = validateOptionalObject<NamespaceOptions>(options, 'options');
  validateOptionKeys(opts, NAMESPACE_KEYS, 'options');
  const ns = netnsPath(opts.netns);
  const raw = attempt({ netns: opts.netns }, () => native().interfaces(ns));
  const byName = new Map<string, NetworkInterface>();
  const result = raw.links.map((l) => {
    const entry: NetworkInterface = { index: l.index, name: l.name, flags: linkFlags(l.flags), linkLocal: [], global: [], ipv4: [], addresses: [] };
    byName.set(l.name, entry);
    return entry;
  });
  for (const a of raw.addresses) {
    const entry = byName.get(a.name);
    if (!entry) continue;
    const addr: InterfaceAddress = { address: a.address, prefixLength: a.prefixLength, family: a.family, scopeId: a.scopeId };
    entry.addresses.push(addr);
    if (a.family === 4) entry.ipv4.push(addr);
    else if (isLinkLocalIpv6(a.address)) entry.linkLocal.push(addr);
    else if (a.address !== '::1') entry.global.push(addr);
  }
  return result;
}

/** The index of the interface named `name`; ENODEV-coded error if there is none. */
export function nameToIndex(name: string, options?: NamespaceOptions): number {
  validateInterfaceName(validateString(name, 'name'), 'name');
  const opts = validateOptionalObject<NamespaceOptions>(options, 'options');
  validateOptionKeys(opts, NAMESPACE_KEYS, 'options');
  return directoryOf(opts.netns).resolveNow(name, 'name').index;
}

/** The name of the interface with index `index`; ENODEV-coded error if there is none. */
export function indexToName(index: number, options?: NamespaceOptions): string {
  validateInteger(index, 'index', 1, 0x7fffffff);
  const opts = validateOptionalObject<NamespaceOptions>(options, 'options');
  validateOptionKeys(opts, NAMESPACE_KEYS, 'options');
  return directoryOf(opts.netns).resolveNow(index, 'index').name;
}

/**
 * Resolves an index or a name (not 'all') to both, checking that the interface exists.
 * Answered by the namespace's interface directory: what this process already knows, else
 * a fresh listing.
 */
export function resolve(spec: unknown, name: string, netns?: string): InterfaceRef {
  return directoryOf(netns).resolveNow(spec, name);
}

export interface SourceForOptions extends NamespaceOptions {
  /** Interface for a link-local or multicast destination (or give it as 'fe80::1%eth0'). */
  interface?: InterfaceSpec;
}

/**
 * The source address the kernel would pick to reach `destination`: a UDP socket is
 * connected (no packet leaves) and asked for its local address.
 */
export function sourceFor(destination: string, options?: SourceForOptions): string {
  const opts = validateOptionalObject<SourceForOptions>(options, 'options');
  validateOptionKeys(opts, SOURCE_FOR_KEYS, 'options');
  const family = typeof destination === 'string' && net.isIPv4(destination) ? 4 : 6;
  const dest = validateAddress(destination, 'destination', family);
  const directory = directoryOf(opts.netns);
  const scopeId =
    dest.zone !== undefined ? directory.scopeId(dest.zone, 'destination zone') : opts.interface !== undefined ? directory.resolve(opts.interface, 'options.interface').index : 0;
  const ns = netnsPath(opts.netns);
  const c = constants();
  const sock = attempt({ netns: opts.netns }, () => new (native().Socket)(family, c.SOCK_DGRAM, 0, ns, null));
  try {
    return attempt({ address: splitZone(destination).address, netns: opts.netns }, () => {
      sock.connect(dest.address, 9, scopeId);
      return sock.localAddress().address;
    });
  } finally {
    sock.close();
  }
}
