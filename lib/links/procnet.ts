/**
 * Readers for the kernel's per-namespace tables under /proc/net, read from inside the
 * namespace: /proc/net/anycast6 (anycast joins) and /proc/net/igmp6 (IPv6 multicast
 * memberships). Lines that do not parse are skipped, never guessed at.
 * @packageDocumentation
 */
import { attempt, invalidArgValue } from '../errors';
import { formatIpv6 } from '../codec/ipv6addr';
import type { InterfaceRef } from './types';
import { native } from '../core/native';
import { netnsPath } from '../validate';

/** The text of /proc/net/NAME inside `netns` (default: the caller's namespace). */
export function readNetFile(name: string, netns?: string): string {
  if (!/^[a-z0-9_]+$/.test(name)) throw invalidArgValue('name', name, 'must name a file in /proc/net');
  const path = netnsPath(netns);
  return attempt({ netns }, () => native().netFile(path, name));
}

/** One line of /proc/net/anycast6 or /proc/net/igmp6. */
export interface AddressTableEntry {
  interface: InterfaceRef;
  /** The anycast or multicast address, in canonical text form. */
  address: string;
  /** How many joins hold it (anycast: sockets and the kernel; igmp6: the users count). */
  users: number;
}

/** Parses `ifindex ifname 32-hex-digit-address users ...` lines (anycast6 and igmp6 share the start). */
export function parseAddressTable(text: string): AddressTableEntry[] {
  const entries: AddressTableEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[0]) || !/^[0-9a-f]{32}$/i.test(f[2]) || !/^\d+$/.test(f[3])) continue;
    const index = Number(f[0]);
    const users = Number(f[3]);
    // Digits alone are not enough: 30 of them make a float, not an ifindex or a count.
    if (index < 1 || index > 0x7fffffff || !Number.isSafeInteger(users)) continue;
    entries.push({
      interface: { index, name: f[1] },
      address: formatIpv6(Buffer.from(f[2], 'hex')),
      users,
    });
  }
  return entries;
}

/** Anycast addresses joined in the namespace (by any socket, or by the kernel on routers). */
export function anycast6(netns?: string): AddressTableEntry[] {
  return parseAddressTable(readNetFile('anycast6', netns));
}

/** IPv6 multicast groups joined in the namespace. */
export function igmp6(netns?: string): AddressTableEntry[] {
  return parseAddressTable(readNetFile('igmp6', netns));
}
