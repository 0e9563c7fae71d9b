/**
 * What this host (or a namespace of it) allows: kernel settings under /proc/sys/net and
 * the capabilities of this process. `ip6sock doctor` is built on it; daemons can check
 * the same things before they start.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import { attempt, Capability, invalidArgValue } from './errors';
import { native } from './core/native';
import type { NamespaceOptions } from './links/types';
import { netnsPath, optionKeys, validateOptionalObject, validateOptionKeys, validateString } from './validate';

const NAMESPACE_KEYS = optionKeys<NamespaceOptions>({ netns: true });

/**
 * The value of a sysctl under net/ inside the namespace, e.g. `sysctl('ipv6/conf/all/forwarding')`
 * (dots work too: 'ipv6.conf.all.forwarding'), trimmed.
 */
export function sysctl(name: string, options?: NamespaceOptions): string {
  validateString(name, 'name');
  const opts = validateOptionalObject<NamespaceOptions>(options, 'options');
  validateOptionKeys(opts, NAMESPACE_KEYS, 'options');
  const path = name.replace(/^net[./]/, '').replace(/\./g, '/');
  if (!/^[A-Za-z0-9_/-]+$/.test(path) || path.split('/').includes('..')) throw invalidArgValue('name', name, 'must name a sysctl under net/');
  return attempt({ netns: opts.netns }, () => native().sysctl(netnsPath(opts.netns), path)).trim();
}

/** Whether IPv6 forwarding is on in the namespace (router-alert taps see only forwarded packets). */
export function forwarding(options?: NamespaceOptions): boolean {
  return sysctl('ipv6/conf/all/forwarding', options) === '1';
}

/** Capability numbers from linux/capability.h. */
const CAPABILITY_BITS: Record<Capability, number> = { CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_SYS_ADMIN: 21 };

/** The effective capabilities of this process that matter to ip6sock. */
export function capabilities(): Record<Capability, boolean> {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  const bits = BigInt(`0x${match ? match[1] : '0'}`);
  const result = {} as Record<Capability, boolean>;
  for (const [name, bit] of Object.entries(CAPABILITY_BITS) as Array<[Capability, number]>) {
    result[name] = (bits & (1n << BigInt(bit))) !== 0n;
  }
  return result;
}
