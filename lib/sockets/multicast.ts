/**
 * MulticastSocket: IPv6 and IPv4 multicast by interface index. Joins (any-source and
 * source-specific), source blocks, the multicast hop limit, loopback and outgoing
 * interface, with the library keeping its own account of every membership so that a
 * duplicate join, a leave of a group never joined, or a clash between an any-source and a
 * source-specific join is a clear coded error instead of a bare errno.
 *
 * Safe by default: IPV6_MULTICAST_ALL / IP_MULTICAST_ALL are turned off, so a socket
 * receives only the groups it joined, and (because the IPv6 kernel checks the group but not
 * the interface) datagrams for a group are delivered only from the interfaces this socket
 * joined it on.
 *
 * Interfaces come and go: from its first join the socket follows the links of its namespace
 * (lib/links/directory.ts, kept current by one shared rtnetlink watcher per namespace). Groups joined with
 * `interface: 'all'` are joined on every interface that appears or comes up, and memberships
 * on an interface that is removed are dropped, each change reported as a 'membership' event.
 * @packageDocumentation
 */
import * as net from 'node:net';
import { attempt, ErrorContext, interfaceLabel, interfaceRemovedError, invalidArgType, invalidArgValue, stateError, warn, withContext } from '../errors';
import type { InterfaceRef, InterfaceSpec } from '../links/types';
import { directoryOf, Follower, Following } from '../links/directory';
import { formatIpv6, isMulticast, parseIpv6 } from '../codec/ipv6addr';
import { constants } from '../core/native';
import type { RecordBatch } from '../core/records';
import { eventMap, Events, listenerThrew } from '../core/events';
import { UDP_SOCKET_OPTION_KEYS, UdpSocket, UdpSocketEvents, UdpSocketOptions } from './udp';
import { SocketStats } from './socket';
import {
  Family,
  optionKeys,
  validateBoolean,
  validateInteger,
  validateInterfaceName,
  validateObject,
  validateOptionalObject,
  validateOptionKeys,
  validateString,
} from '../validate';
import type { LinkEvent } from '../links/watcher';

/** Options of a MulticastSocket: everything a UdpSocket takes, plus the multicast settings. */
export interface MulticastSocketOptions extends UdpSocketOptions {
  /**
   * Deliver multicast sent by this host back to its own sockets (IPV6_MULTICAST_LOOP /
   * IP_MULTICAST_LOOP; kernel default true). A property of the SENDING socket: it does not
   * stop this socket from receiving what other local sockets send (see `ignoreOwn`).
   * Later: setMulticastLoopback().
   */
  multicastLoopback?: boolean;
  /**
   * Hop limit (TTL) of multicast datagrams sent, 0-255 (IPV6_MULTICAST_HOPS /
   * IP_MULTICAST_TTL; kernel default 1). `hopLimit` is the one of unicast datagrams.
   * Later: setMulticastHopLimit().
   */
  multicastHopLimit?: number;
  /**
   * Default outgoing interface for multicast (IPV6_MULTICAST_IF / IP_MULTICAST_IF by
   * index); a per-datagram `interface` in send() wins. Later: setMulticastInterface().
   */
  multicastInterface?: InterfaceSpec;
  /**
   * The kernel's IPV6_MULTICAST_ALL / IP_MULTICAST_ALL. Default false: the socket receives
   * only groups it joined itself, and only from the interfaces it joined them on. true
   * restores the kernel's default (a socket bound to the port also receives groups that
   * OTHER sockets of the namespace joined).
   */
  multicastAll?: boolean;
  /**
   * Drop received datagrams whose source is one of this host's own addresses (link-local
   * addresses count only on their own interface): a host does not hear itself, whatever the
   * sending socket's loopback setting. Default false. With it the socket follows its
   * namespace from the start (the shared link watcher keeps this host's addresses known).
   */
  ignoreOwn?: boolean;
  /**
   * As for UdpSocket; false needs `device`. Without each datagram's arrival interface the
   * socket cannot filter by membership itself, so it leaves that to the kernel: bound to
   * one device, with memberships only there (join() refuses any other interface) and
   * `multicastAll` false, the kernel delivers exactly the groups this socket joined (and,
   * with `source`, the sources it joined) that arrive on that device. `stats.notJoined`
   * then stays 0: such datagrams never reach the socket.
   */
  receivePacketInfo?: boolean;
}

/** Where (and for which source) to join or leave a group. */
export interface JoinOptions {
  /** An interface index or name, or 'all': every interface that is up and multicast-capable. */
  interface: InterfaceSpec | 'all';
  /** Source-specific membership (SSM, RFC 4607): receive the group only from this source. */
  source?: string;
  /** With `interface: 'all'`, include the loopback interface too. Default false. */
  includeLoopback?: boolean;
}

/** Which source a block or unblock is for, and where it applies. */
export interface BlockOptions {
  /** An interface index or name, or 'all': every interface the group is joined on. */
  interface: InterfaceSpec | 'all';
  /** The source to block (or unblock) on an any-source membership of the group. */
  source: string;
}

/** One membership this socket holds. */
export interface Membership {
  /** The group, in canonical text form. */
  group: string;
  interface: InterfaceRef;
  /** The one source of a source-specific membership. */
  source?: string;
  /** Sources blocked on an any-source membership (present only when some are). */
  blocked?: string[];
}

/** Why the socket changed a membership by itself. */
export type MembershipChangeReason = 'interface-added' | 'interface-up' | 'interface-changed' | 'interface-removed';

/**
 * A membership the socket joined or dropped by itself, following its interfaces: a group
 * joined with `interface: 'all'` joined on an interface that appeared ('interface-added'),
 * came up ('interface-up') or became multicast-capable ('interface-changed'); any
 * membership on an interface that was removed ('interface-removed').
 */
export interface MembershipEvent {
  type: 'joined' | 'left';
  group: string;
  interface: InterfaceRef;
  /** The source of a source-specific membership. */
  source?: string;
  reason: MembershipChangeReason;
}

/**
 * A MulticastSocket's counters: a socket's, and the datagrams its own filters removed after
 * the kernel delivered them (counted in `received` too, as datagrams the class dropped).
 */
export interface MulticastSocketStats extends SocketStats {
  /**
   * Dropped: sent to a group this socket did not join on the arrival interface, or from a
   * source its membership there excludes (only with multicastAll false).
   */
  notJoined: number;
  /** Dropped: from one of this host's own addresses (only with ignoreOwn). */
  own: number;
}

const MULTICAST_KEYS = optionKeys<MulticastSocketOptions>({
  ...UDP_SOCKET_OPTION_KEYS,
  multicastLoopback: true,
  multicastHopLimit: true,
  multicastInterface: true,
  multicastAll: true,
  ignoreOwn: true,
});
const JOIN_KEYS = optionKeys<JoinOptions>({ interface: true, source: true, includeLoopback: true });
const BLOCK_KEYS = optionKeys<BlockOptions>({ interface: true, source: true });

/** Bookkeeping of one (group, interface): any-source with blocked sources, or source-specific with sources. */
interface GroupState {
  group: string;
  iface: InterfaceRef;
  mode: 'any' | 'source';
  /** 'any': blocked sources; 'source': the joined sources. */
  sources: Set<string>;
}

/**
 * A group joined with `interface: 'all'`: joined on every interface that qualifies, now and
 * later, except those left explicitly (`excluded`, by index) while they exist.
 */
interface AllSpec {
  group: string;
  source: string | undefined;
  includeLoopback: boolean;
  excluded: Set<number>;
}

/** Errno -> what it means for a membership call, so the message says what to do. */
function membershipHint(code: string, family: Family, withSource: boolean): string | undefined {
  switch (code) {
    case 'ENOBUFS':
      return family === 4
        ? withSource
          ? 'too many groups on this socket (net.ipv4.igmp_max_memberships, default 20) or sources on this group (net.ipv4.igmp_max_msf, default 10)'
          : 'too many groups on this socket: net.ipv4.igmp_max_memberships (default 20) is the limit per socket'
        : 'too many sources on this group: net.ipv6.mld_max_msf (default 64) is the limit per group and socket';
    case 'ENOMEM':
      return 'out of socket option memory: every membership and source is charged to net.core.optmem_max';
    case 'EINVAL':
      return 'the kernel refused it: not a multicast group, a source filter on a group not joined, or a source-specific join of a group joined for any source with blocked sources';
    case 'ENODEV':
      return "the interface does not exist in the socket's namespace (or went away)";
    case 'EADDRINUSE':
      return 'the kernel already holds this membership for the socket';
    case 'EADDRNOTAVAIL':
      return 'the kernel holds no such membership for the socket';
    default:
      return undefined;
  }
}

/** Canonical text of a valid address, so bookkeeping keys match what received datagrams show. */
function canonical(address: string, family: Family): string {
  return family === 6 ? formatIpv6(parseIpv6(address)) : address;
}

/** The options a MulticastSocket adds, validated before any socket exists. */
interface ParsedOptions {
  loopback?: boolean;
  hopLimit?: number;
  outgoing?: InterfaceRef;
  multicastAll: boolean;
  ignoreOwn: boolean;
  packetInfo: boolean;
}

function parseOptions(opts: Partial<MulticastSocketOptions>): ParsedOptions {
  const parsed: ParsedOptions = {
    multicastAll: opts.multicastAll === undefined ? false : validateBoolean(opts.multicastAll, 'options.multicastAll'),
    ignoreOwn: opts.ignoreOwn === undefined ? false : validateBoolean(opts.ignoreOwn, 'options.ignoreOwn'),
    packetInfo: opts.receivePacketInfo !== false,
  };
  if (!parsed.packetInfo && opts.device === undefined) {
    throw invalidArgValue(
      'options.receivePacketInfo',
      false,
      'needs options.device: without the arrival interface of each datagram, only a socket bound to one device can keep a membership to the interface it was joined on',
    );
  }
  if (opts.multicastLoopback !== undefined) parsed.loopback = validateBoolean(opts.multicastLoopback, 'options.multicastLoopback');
  if (opts.multicastHopLimit !== undefined) parsed.hopLimit = validateInteger(opts.multicastHopLimit, 'options.multicastHopLimit', 0, 255);
  if (opts.multicastInterface !== undefined) parsed.outgoing = directoryOf(opts.netns).resolve(opts.multicastInterface, 'options.multicastInterface');
  return parsed;
}

/**
 * Events of a MulticastSocket: a UdpSocket's, and 'membership' for every membership joined
 * or left by the socket itself (following interfaces for 'all', an interface removed).
 * A failure to follow an interface is a 'warning'.
 */
export interface MulticastSocketEvents extends UdpSocketEvents {
  membership: [event: MembershipEvent];
}

/**
 * A UDP socket for IPv6 (`family: 6`, default) or IPv4 multicast. Opens and binds at
 * construction; joins by interface index or name (or 'all'); reports on every datagram the
 * arrival interface, the group it was sent to and its hop limit (inherited 'message' event
 * and async iterator); sends with a per-packet interface and hop limit (inherited send()).
 *
 * ```ts
 * const sock = new MulticastSocket({ port: 7017, reuseAddr: true, multicastHopLimit: 1, multicastLoopback: false });
 * sock.join('ff02::13', { interface: 'all' });
 * sock.on('message', (data, info) => console.log(info.interface?.name, info.address, data));
 * await sock.send(msg, { address: 'ff02::13', port: 7017, interface: 'eth0' });
 * ```
 */
export class MulticastSocket extends UdpSocket {
  /** @internal */
  declare readonly [eventMap]: Events<MulticastSocketEvents>;

  /** Receive counters, with the datagrams this socket's own filters removed (see MulticastSocketStats). */
  override readonly stats: MulticastSocketStats = this.countersWith({ notJoined: 0, own: 0 });

  /** key `${group}%${ifindex}` -> state. */
  private readonly groups = new Map<string, GroupState>();
  private readonly multicastAll: boolean;
  /** ignoreOwn: the socket follows its namespace from the start, so the directory knows this host's addresses. */
  private readonly ignoreOwn: boolean;
  /** receivePacketInfo: without it, memberships stay on the bound device (see the option). */
  private readonly packetInfo: boolean;
  /** What setMulticastInterface() last set: IPv4's getsockopt reports an address, not an index. */
  private outgoing: InterfaceRef | null = null;
  /** Groups joined with 'all', followed onto interfaces as they come. */
  private readonly allSpecs: AllSpec[] = [];
  /** Link events of the namespace, from the first join to close. */
  private links: Following | undefined;

  /** Opens, configures and binds the socket; throws a coded error on any failure (nothing is left open). */
  constructor(options: MulticastSocketOptions = {}) {
    const opts = validateOptionalObject<MulticastSocketOptions>(options, 'options');
    validateOptionKeys(opts, MULTICAST_KEYS, 'options');
    const parsed = parseOptions(opts);
    super(opts);
    this.multicastAll = parsed.multicastAll;
    this.packetInfo = parsed.packetInfo;
    this.ignoreOwn = parsed.ignoreOwn;
    try {
      // The directory knows this host's addresses while followed, kept current by the
      // watcher: no listing per datagram from a stranger.
      if (parsed.ignoreOwn) this.followLinks();
      const c = constants();
      // Bound already (UdpSocket binds in its constructor): a datagram for a group some other
      // socket joined can slip into the queue in between; the per-interface membership
      // filter in admits() drops it, so "only what it joined" holds from the first datagram.
      if (this.family === 6) this.setInt(c.IPPROTO_IPV6, c.IPV6_MULTICAST_ALL, parsed.multicastAll ? 1 : 0, 'IPV6_MULTICAST_ALL');
      else this.setInt(c.IPPROTO_IP, c.IP_MULTICAST_ALL, parsed.multicastAll ? 1 : 0, 'IP_MULTICAST_ALL');
      if (parsed.loopback !== undefined) this.setMulticastLoopback(parsed.loopback);
      if (parsed.hopLimit !== undefined) this.setMulticastHopLimit(parsed.hopLimit);
      if (parsed.outgoing !== undefined) this.setMulticastInterface(parsed.outgoing.index);
    } catch (err) {
      void this.close();
      throw err;
    }
  }

  /**
   * Joins `group` on one interface, or on every interface that is up and multicast-capable
   * (`'all'`; loopback only with `includeLoopback`). With `source`, the membership is
   * source-specific. Returns the memberships added. Throws ERR_MULTICAST_ALREADY_JOINED for
   * a membership this socket holds (with 'all', interfaces already joined are skipped and
   * an empty list means nothing was missing), ERR_MULTICAST_SOURCE_CONFLICT when an
   * any-source and a source-specific membership of the group would meet on one interface,
   * ERR_MULTICAST_NO_INTERFACE when 'all' finds no interface. If one of several joins
   * fails, the ones this call made are undone before the error is thrown.
   *
   * With 'all' the group keeps following the interfaces: it is joined on every interface
   * that later appears or comes up (and qualifies), each reported as a 'membership' event
   * (a join that fails there is a 'warning', never an error). Whatever the interface, a
   * membership on an interface that is removed is dropped and reported as a 'membership'
   * event; if the interface was named here (not reached through 'all') the socket also
   * emits 'error' with code ENODEV. A link going down needs nothing: the kernel keeps
   * memberships across down and up.
   */
  join(group: string, options: JoinOptions): Membership[] {
    this.assertOpen();
    const g = this.groupAddress(group);
    const opts = validateObject<JoinOptions>(options, 'options');
    validateOptionKeys(opts, JOIN_KEYS, 'options');
    const source = opts.source === undefined ? undefined : this.sourceAddress(opts.source, g);
    const includeLoopback = opts.includeLoopback === undefined ? false : validateBoolean(opts.includeLoopback, 'options.includeLoopback');
    const all = opts.interface === 'all';
    // Before 'all' lists the interfaces, so no change after the listing goes unseen.
    const listedNow = this.followLinks();
    const named = all ? undefined : this.directory.resolve(opts.interface, 'options.interface');
    if (!this.packetInfo && named?.index !== this.deviceIndex) throw this.offDevice(opts.interface);
    const targets = named === undefined ? this.allInterfaces(includeLoopback, listedNow) : [named];

    // Decide everything before the first system call, so a refusal changes nothing.
    const todo: InterfaceRef[] = [];
    for (const iface of targets) {
      const plan = this.joinPlan(g, iface, source);
      if (plan instanceof Error) throw plan;
      if (plan === 'join') todo.push(iface);
      else if (!all) {
        throw stateError(
          'ERR_MULTICAST_ALREADY_JOINED',
          `${this.describeMembership(g, iface, source)} is already joined on this socket (the kernel would say ${source === undefined ? 'EADDRINUSE' : 'EADDRNOTAVAIL'})`,
        );
      }
    }

    const added: Membership[] = [];
    try {
      for (const iface of todo) {
        this.membershipCall(source === undefined ? 'MCAST_JOIN_GROUP' : 'MCAST_JOIN_SOURCE_GROUP', g, iface, source);
        this.record(g, iface, source);
        added.push(source === undefined ? { group: g, interface: { ...iface } } : { group: g, interface: { ...iface }, source });
      }
    } catch (err) {
      for (const m of added.reverse()) this.undo(m);
      throw err;
    }
    if (all) {
      const spec = this.allSpecs.find((a) => a.group === g && a.source === source);
      if (spec === undefined) this.allSpecs.push({ group: g, source, includeLoopback, excluded: new Set() });
      else spec.includeLoopback ||= includeLoopback;
    } else {
      // Joined again by name: no longer an exception to an 'all' join of the group.
      for (const spec of this.allSpecs) if (spec.group === g && spec.source === source) spec.excluded.delete(targets[0].index);
    }
    return added;
  }

  /**
   * Leaves what join() with the same options joined: the any-source membership, or with
   * `source` that one source. `'all'` leaves the group on every interface this socket holds
   * it on (also interfaces that have gone down or away since), loopback included whatever
   * `includeLoopback` says (it is checked to be a boolean, as for join()). Returns the
   * memberships removed; ERR_MULTICAST_NOT_JOINED if there were none.
   */
  leave(group: string, options: JoinOptions): Membership[] {
    this.assertOpen();
    const g = this.groupAddress(group);
    const opts = validateObject<JoinOptions>(options, 'options');
    validateOptionKeys(opts, JOIN_KEYS, 'options');
    if (opts.includeLoopback !== undefined) validateBoolean(opts.includeLoopback, 'options.includeLoopback');
    const source = opts.source === undefined ? undefined : this.sourceAddress(opts.source, g);
    const removed = this.leaveHeld(g, opts.interface, source);
    for (let i = this.allSpecs.length - 1; i >= 0; i--) {
      const spec = this.allSpecs[i];
      if (spec.group !== g || spec.source !== source) continue;
      // 'all' ends the following; one interface becomes an exception to it while it exists.
      if (opts.interface === 'all') this.allSpecs.splice(i, 1);
      else for (const m of removed) spec.excluded.add(m.interface.index);
    }
    return removed;
  }

  /** leave() without the 'all' bookkeeping (also the rollback of a failed join). */
  private leaveHeld(g: string, spec: InterfaceSpec | 'all', source: string | undefined): Membership[] {
    const states = this.held(g, spec).filter((s) => (source === undefined ? s.mode === 'any' : s.mode === 'source' && s.sources.has(source)));
    if (states.length === 0) throw this.notJoined(g, spec, source);
    const removed: Membership[] = [];
    for (const s of states) {
      this.membershipCall(source === undefined ? 'MCAST_LEAVE_GROUP' : 'MCAST_LEAVE_SOURCE_GROUP', g, s.iface, source);
      // Leaving the last source drops the group in the kernel too (ip6_mc_source / ip_mc_source).
      if (source === undefined) this.deleteGroup(this.key(g, s.iface.index));
      else {
        s.sources.delete(source);
        if (s.sources.size === 0) this.deleteGroup(this.key(g, s.iface.index));
      }
      removed.push(source === undefined ? { group: g, interface: { ...s.iface } } : { group: g, interface: { ...s.iface }, source });
    }
    return removed;
  }

  /**
   * Stops receiving `options.source` on an any-source membership of `group` on
   * `options.interface` (MCAST_BLOCK_SOURCE). ERR_MULTICAST_NOT_JOINED without an
   * any-source membership there, ERR_MULTICAST_SOURCE_CONFLICT on a source-specific one,
   * ERR_MULTICAST_ALREADY_BLOCKED if the source is blocked already.
   */
  block(group: string, options: BlockOptions): void {
    this.sourceFilter('block', group, options);
  }

  /** Undoes block() (MCAST_UNBLOCK_SOURCE); ERR_MULTICAST_NOT_BLOCKED if the source was not blocked. */
  unblock(group: string, options: BlockOptions): void {
    this.sourceFilter('unblock', group, options);
  }

  /** Every membership this socket holds, by interface index then group. Empty once closed. */
  memberships(): Membership[] {
    const out: Membership[] = [];
    const states = [...this.groups.values()].sort((a, b) => a.iface.index - b.iface.index || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
    for (const s of states) {
      if (s.mode === 'source') {
        for (const source of s.sources) out.push({ group: s.group, interface: { ...s.iface }, source });
      } else {
        const m: Membership = { group: s.group, interface: { ...s.iface } };
        if (s.sources.size > 0) m.blocked = [...s.sources];
        out.push(m);
      }
    }
    return out;
  }

  /**
   * Sets the default outgoing interface for multicast (a per-packet `interface` in send()
   * still wins). `null` goes back to the kernel's route lookup.
   */
  setMulticastInterface(spec: InterfaceSpec | null): void {
    this.assertOpen();
    const iface = spec === null ? null : this.directory.resolve(spec, 'multicastInterface');
    const c = constants();
    const index = iface === null ? 0 : iface.index;
    const context: ErrorContext = { option: this.family === 6 ? 'IPV6_MULTICAST_IF' : 'IP_MULTICAST_IF', netns: this.netns };
    if (iface !== null) context.interface = interfaceLabel(iface);
    attempt(context, () => {
      if (this.family === 6) this.handle.setInt(c.IPPROTO_IPV6, c.IPV6_MULTICAST_IF, index);
      else this.handle.ipMreqn(c.IP_MULTICAST_IF, null, null, index);
    });
    this.outgoing = iface;
  }

  /**
   * The default outgoing multicast interface, or null for route lookup. IPv6 asks the
   * kernel; IPv4's getsockopt reports an address rather than an index, so there it is
   * what setMulticastInterface() set.
   */
  getMulticastInterface(): InterfaceRef | null {
    this.assertOpen();
    if (this.family === 4) return this.outgoing === null ? null : { ...this.outgoing };
    const c = constants();
    const index = this.getInt(c.IPPROTO_IPV6, c.IPV6_MULTICAST_IF, 'IPV6_MULTICAST_IF');
    return index === 0 ? null : { index, name: this.names.name(index) };
  }

  /**
   * Sets the hop limit (TTL) of multicast datagrams this socket sends, 0-255 (the
   * `multicastHopLimit` option); setHopLimit() sets the one of unicast datagrams.
   */
  setMulticastHopLimit(hopLimit: number): void {
    this.assertOpen();
    const value = validateInteger(hopLimit, 'multicastHopLimit', 0, 255);
    const c = constants();
    if (this.family === 6) this.setInt(c.IPPROTO_IPV6, c.IPV6_MULTICAST_HOPS, value, 'IPV6_MULTICAST_HOPS');
    else this.setInt(c.IPPROTO_IP, c.IP_MULTICAST_TTL, value, 'IP_MULTICAST_TTL');
  }

  /** The multicast hop limit (TTL) as the kernel has it (default 1). */
  getMulticastHopLimit(): number {
    this.assertOpen();
    const c = constants();
    return this.family === 6
      ? this.getInt(c.IPPROTO_IPV6, c.IPV6_MULTICAST_HOPS, 'IPV6_MULTICAST_HOPS')
      : this.getInt(c.IPPROTO_IP, c.IP_MULTICAST_TTL, 'IP_MULTICAST_TTL');
  }

  /**
   * Whether multicast this socket sends is looped back to this host's sockets (a
   * sender-side setting; the `multicastLoopback` option).
   */
  setMulticastLoopback(loopback: boolean): void {
    this.assertOpen();
    const value = validateBoolean(loopback, 'multicastLoopback') ? 1 : 0;
    const c = constants();
    if (this.family === 6) this.setInt(c.IPPROTO_IPV6, c.IPV6_MULTICAST_LOOP, value, 'IPV6_MULTICAST_LOOP');
    else this.setInt(c.IPPROTO_IP, c.IP_MULTICAST_LOOP, value, 'IP_MULTICAST_LOOP');
  }

  /** The multicast loopback setting as the kernel has it (default true). */
  getMulticastLoopback(): boolean {
    this.assertOpen();
    const c = constants();
    const value =
      this.family === 6
        ? this.getInt(c.IPPROTO_IPV6, c.IPV6_MULTICAST_LOOP, 'IPV6_MULTICAST_LOOP')
        : this.getInt(c.IPPROTO_IP, c.IP_MULTICAST_LOOP, 'IP_MULTICAST_LOOP');
    return value !== 0;
  }

  /** The fd's close drops every membership in the kernel; forget them here too. */
  protected override beforeClose(): void {
    // Also reached from UdpSocket's constructor when binding fails, before this class's
    // fields exist.
    if (this.groups !== undefined) this.groups.clear();
    if (this.allSpecs !== undefined) this.allSpecs.length = 0;
    this.links?.cancel();
    this.links = undefined;
  }

  /**
   * Starts following the namespace's links (once per socket; throws what opening the watcher
   * throws). True when that started the link watcher, whose view is then a listing taken just now.
   */
  private followLinks(): boolean {
    if (this.links !== undefined) return false;
    this.links = this.directory.follow(this, MulticastSocket.membershipFollower);
    return this.links.started;
  }

  // Static, so that the directory does not hold the socket (see InterfaceDirectory.follow).
  private static readonly membershipFollower: Follower<MulticastSocket> = {
    removed: (sock, iface) => sock.interfaceRemoved(iface),
    changed: (sock, event) => sock.followLink(event),
  };

  private followLink(event: LinkEvent): void {
    if (this.closed) return;
    const iface: InterfaceRef = { index: event.index, name: event.name };
    // The bookkeeping is by index; a rename only changes what is reported.
    for (const s of this.groups.values()) if (s.iface.index === iface.index) s.iface.name = iface.name;
    // Down needs nothing: the kernel keeps memberships (and reports them again) across down and up.
    if (event.type === 'down' || !event.flags.up) return;
    const reason: MembershipChangeReason = event.type === 'added' ? 'interface-added' : event.type === 'up' ? 'interface-up' : 'interface-changed';
    for (const spec of [...this.allSpecs]) {
      if (spec.excluded.has(iface.index)) continue;
      if (event.flags.loopback ? !spec.includeLoopback : !event.flags.multicast) continue;
      const plan = this.joinPlan(spec.group, iface, spec.source);
      if (plan === 'held') continue;
      if (plan instanceof Error) {
        warn(this, plan);
        continue;
      }
      try {
        this.membershipCall(spec.source === undefined ? 'MCAST_JOIN_GROUP' : 'MCAST_JOIN_SOURCE_GROUP', spec.group, iface, spec.source);
      } catch (err) {
        warn(this, err as Error);
        continue;
      }
      this.record(spec.group, iface, spec.source);
      this.emitMembership('joined', spec.group, iface, spec.source, reason);
      if (this.closed) return;
    }
  }

  /**
   * Drops every membership on a removed interface. The kernel forgets the device's groups
   * but keeps the socket's own record of each membership (verified: a join on a new device
   * that reuses the index then fails with EADDRINUSE and receives nothing), so each is left
   * here too; leaving succeeds with the device gone.
   */
  private interfaceRemoved(iface: InterfaceRef): void {
    if (this.closed) return;
    const c = constants();
    const named: string[] = [];
    for (const state of [...this.groups.values()]) {
      if (state.iface.index !== iface.index) continue;
      try {
        this.handle.groupReq(c.MCAST_LEAVE_GROUP, iface.index, state.group, null);
      } catch {
        // Not held by the kernel after all: nothing to undo.
      }
      this.deleteGroup(this.key(state.group, iface.index));
      const sources = state.mode === 'source' ? [...state.sources] : [undefined];
      for (const source of sources) {
        if (!this.allSpecs.some((a) => a.group === state.group && a.source === source && !a.excluded.has(iface.index))) {
          named.push(source === undefined ? state.group : `${state.group} from source ${source}`);
        }
        this.emitMembership('left', state.group, { ...iface, name: iface.name || state.iface.name }, source, 'interface-removed');
        if (this.closed) return;
      }
    }
    for (const spec of this.allSpecs) spec.excluded.delete(iface.index);
    if (named.length > 0) {
      const what = named.length === 1 ? `membership ${named[0]}` : `memberships ${named.join(', ')}`;
      (this as MulticastSocket).emit('error', interfaceRemovedError(iface, this.netns, `the socket's ${what}, joined on it by name, ended with it`));
    }
  }

  private emitMembership(type: 'joined' | 'left', group: string, iface: InterfaceRef, source: string | undefined, reason: MembershipChangeReason): void {
    const event: MembershipEvent = { type, group, interface: { ...iface }, reason };
    if (source !== undefined) event.source = source;
    // Called from the shared link watcher, in the middle of this socket's bookkeeping: a
    // listener that throws must cost neither the rest of it nor the watcher's other events.
    try {
      (this as MulticastSocket).emit('membership', event);
    } catch (err) {
      listenerThrew(err);
    }
  }

  /** What joining `group` (for `source`) on `iface` takes: a join, nothing ('held'), or it conflicts. */
  private joinPlan(group: string, iface: InterfaceRef, source: string | undefined): 'join' | 'held' | Error {
    const state = this.groups.get(this.key(group, iface.index));
    if (state === undefined) return 'join';
    if (source === undefined ? state.mode === 'source' : state.mode === 'any') return this.conflict(state, source);
    return source === undefined || state.sources.has(source) ? 'held' : 'join';
  }

  /**
   * UdpSocket's dispatch plus this socket's filters. Kept as one loop so a dropped datagram
   * never reaches an event listener or an iterator.
   */
  protected override admits(records: RecordBatch, i: number): boolean {
    if (this.multicastAll && !this.ignoreOwn) return true;
    const ifindex = records.ifindex(i);
    if (ifindex <= 0) return true;
    const destination = this.multicastAll ? null : this.recordDestination(records, i);
    // Without PKTINFO (destination null) the kernel did the filtering.
    let state: GroupState | undefined;
    if (destination !== null && this.isGroup(destination)) {
      // The IPv6 kernel matches a socket's memberships by group only (inet6_mc_check), so a
      // group joined on eth0 also arrives from eth1 when anything else on the host joined it
      // there, and only the first membership's source filter is consulted. IPv4 checks the
      // interface; doing it here for both makes a membership mean the same everywhere.
      state = this.receivedState(destination, ifindex);
      if (state === undefined) {
        this.stats.notJoined++;
        return false;
      }
    }
    // The source matters only to a source list (joined or blocked sources) or to ignoreOwn.
    if (!this.ignoreOwn && (state === undefined || (state.mode === 'any' && state.sources.size === 0))) return true;
    const source = this.recordSource(records, i);
    // 'source': deliver only the joined sources; 'any': deliver all but the blocked ones.
    if (state !== undefined && (state.mode === 'source') !== state.sources.has(source)) {
      this.stats.notJoined++;
      return false;
    }
    if (this.ignoreOwn && this.directory.isOwnAddress(source, ifindex)) {
      this.stats.own++;
      return false;
    }
    return true;
  }

  /** A join elsewhere than the bound device, refused with receivePacketInfo false. */
  private offDevice(spec: unknown): Error {
    const device = this.names.ref(this.deviceIndex);
    return invalidArgValue(
      'options.interface',
      spec,
      `must be ${interfaceLabel(device)}, the device this socket is bound to: with receivePacketInfo false the kernel tells arrivals apart by that device alone`,
    );
  }

  private key(group: string, ifindex: number): string {
    return `${group}%${ifindex}`;
  }

  // The previous datagram's destination, whether it is a group, its arrival interface and
  // the membership it matched: a stream repeats them, and the decoder hands back the very
  // same destination string. Any change to the memberships forgets them (setGroup/deleteGroup).
  private lastDestination = '';
  private lastIsGroup = false;
  private lastIfindex = -1;
  private lastState: GroupState | undefined;

  private isGroup(destination: string): boolean {
    if (destination !== this.lastDestination) {
      this.lastDestination = destination;
      this.lastIsGroup = isMulticast(destination);
      this.lastIfindex = -1;
    }
    return this.lastIsGroup;
  }

  /** The membership of a received datagram's group (the destination isGroup() saw last) on `ifindex`. */
  private receivedState(group: string, ifindex: number): GroupState | undefined {
    if (ifindex !== this.lastIfindex) {
      this.lastIfindex = ifindex;
      this.lastState = this.groups.get(this.key(group, ifindex));
    }
    return this.lastState;
  }

  private setGroup(key: string, state: GroupState): void {
    this.groups.set(key, state);
    this.lastIfindex = -1;
  }

  private deleteGroup(key: string): void {
    this.groups.delete(key);
    this.lastIfindex = -1;
  }

  private record(group: string, iface: InterfaceRef, source: string | undefined): void {
    const key = this.key(group, iface.index);
    const state = this.groups.get(key);
    if (state !== undefined && source !== undefined) state.sources.add(source);
    else {
      this.setGroup(key, {
        group,
        iface: { ...iface },
        mode: source === undefined ? 'any' : 'source',
        sources: new Set(source === undefined ? [] : [source]),
      });
    }
  }

  /** Best-effort rollback of a join made earlier in the same call. */
  private undo(m: Membership): void {
    try {
      this.leaveHeld(m.group, m.interface.index, m.source);
    } catch {
      // The join's own error is the one to report; closing the socket drops the rest.
    }
  }

  /** Validates a group: a multicast address of this socket's family, no zone; canonical text. */
  private groupAddress(value: unknown, name = 'group'): string {
    const text = validateString(value, name);
    if (text.includes('%')) throw invalidArgValue(name, value, 'must not carry a zone: name the interface in options.interface');
    const family = net.isIP(text);
    if (family === 0) throw invalidArgValue(name, value, `must be an IPv${this.family} multicast address`);
    if (family !== this.family) throw invalidArgValue(name, value, `is an IPv${family} address but the socket is IPv${this.family}`);
    if (!isMulticast(text)) {
      throw invalidArgValue(name, value, `is not a multicast address (${this.family === 6 ? 'ff00::/8' : '224.0.0.0/4'})`);
    }
    return canonical(text, this.family);
  }

  /** Validates a source for `group`: a unicast address of the group's family, no zone. */
  private sourceAddress(value: unknown, group: string, name = 'options.source'): string {
    const text = validateString(value, name);
    if (text.includes('%')) throw invalidArgValue(name, value, 'must not carry a zone: name the interface in options.interface');
    const family = net.isIP(text);
    if (family === 0) throw invalidArgValue(name, value, `must be an IPv${this.family} unicast address`);
    if (family !== this.family) throw invalidArgValue(name, value, `is an IPv${family} address but the group ${group} is IPv${this.family}`);
    const c = canonical(text, this.family);
    if (isMulticast(c) || c === '::' || c === '0.0.0.0') throw invalidArgValue(name, value, 'must be a unicast address');
    return c;
  }

  /**
   * Interfaces 'all' means: up and multicast-capable, loopback only when asked. From a fresh
   * listing, as the link watcher's view may lag behind a change it has not read yet; a
   * watcher started within this very call has just made such a listing, so its view serves
   * (and saves a second netlink dump).
   */
  private allInterfaces(includeLoopback: boolean, listedNow: boolean): InterfaceRef[] {
    const found = this.directory
      .list(listedNow)
      .filter((i) => i.flags.up && (i.flags.loopback ? includeLoopback : i.flags.multicast))
      .sort((a, b) => a.index - b.index)
      .map((i) => ({ index: i.index, name: i.name }));
    if (found.length === 0) {
      const where = this.netns === undefined ? '' : ` in netns ${this.netns}`;
      throw stateError('ERR_MULTICAST_NO_INTERFACE', `no interface is up and multicast-capable${where}`);
    }
    return found;
  }

  /**
   * The memberships of `group` this socket holds on `spec` (an index, a name, or 'all'),
   * matched against the bookkeeping rather than the live interface list so that a group can
   * be left on an interface that has gone away.
   */
  private held(group: string, spec: unknown): GroupState[] {
    const matches = this.interfaceMatcher(spec, 'options.interface');
    return [...this.groups.values()].filter((s) => s.group === group && matches(s.iface));
  }

  private interfaceMatcher(spec: unknown, name: string): (iface: InterfaceRef) => boolean {
    if (spec === 'all') return () => true;
    if (typeof spec === 'number') {
      validateInteger(spec, name, 1, 0x7fffffff);
      return (iface) => iface.index === spec;
    }
    if (typeof spec === 'string') {
      validateInterfaceName(spec, name);
      return (iface) => iface.name === spec;
    }
    throw invalidArgType(name, "an interface index (number), name (string) or 'all'", spec);
  }

  /** ERR_MULTICAST_NOT_JOINED, or ENODEV when the named interface does not exist at all. */
  private notJoined(group: string, spec: InterfaceSpec | 'all', source: string | undefined): Error {
    if (spec !== 'all') {
      try {
        this.directory.resolve(spec, 'options.interface');
      } catch (err) {
        return err as Error;
      }
    }
    const where = spec === 'all' ? 'any interface' : `interface ${spec}`;
    const what = source === undefined ? `${group} (any source)` : `${group} from source ${source}`;
    let message = `${what} is not joined on ${where} of this socket`;
    const other = this.held(group, spec);
    if (other.length > 0) {
      message += other[0].mode === 'source' ? `; it is joined source-specifically: leave each source (${[...other[0].sources].join(', ')})` : '; it is joined for any source: leave without a source';
    }
    return stateError('ERR_MULTICAST_NOT_JOINED', message);
  }

  /**
   * Why refuse rather than pass it on: the kernel answers an any-source join after a
   * source-specific one with EADDRINUSE, but a source-specific join after an any-source one
   * with no blocked sources SUCCEEDS and silently turns the membership into a
   * source-specific one (ip6_mc_source / ip_mc_source "allow mode switches for empty-set
   * filters"; EINVAL once a source is blocked): the socket would stop hearing the group.
   */
  private conflict(state: GroupState, source: string | undefined): Error {
    const held = state.mode === 'any' ? 'for any source' : `source-specifically (${[...state.sources].join(', ')})`;
    const wanted = source === undefined ? 'an any-source join' : `a source-specific join (source ${source})`;
    return stateError(
      'ERR_MULTICAST_SOURCE_CONFLICT',
      `${state.group} is joined ${held} on ${interfaceLabel(state.iface)}; ${wanted} of the same group on the same interface conflicts with it: leave first`,
    );
  }

  private describeMembership(group: string, iface: InterfaceRef, source: string | undefined): string {
    return `${group}${source === undefined ? '' : ` from source ${source}`} on ${interfaceLabel(iface)}`;
  }

  /** One MCAST_* call with group_req / group_source_req, its errno explained. */
  private membershipCall(option: string, group: string, iface: InterfaceRef, source: string | undefined): void {
    const c = constants();
    try {
      this.handle.groupReq(c[option], iface.index, group, source ?? null);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const hint = typeof code === 'string' ? membershipHint(code, this.family, source !== undefined) : undefined;
      throw withContext(err, { option, address: source === undefined ? group : `${group} from ${source}`, interface: interfaceLabel(iface), netns: this.netns, hint });
    }
  }

  private sourceFilter(op: 'block' | 'unblock', group: string, options: BlockOptions): void {
    this.assertOpen();
    const g = this.groupAddress(group);
    const opts = validateObject<BlockOptions>(options, 'options');
    validateOptionKeys(opts, BLOCK_KEYS, 'options');
    const s = this.sourceAddress(opts.source, g);
    const states = this.held(g, opts.interface);
    if (states.length === 0) throw this.notJoined(g, opts.interface, undefined);
    for (const state of states) {
      if (state.mode === 'source') {
        throw stateError(
          'ERR_MULTICAST_SOURCE_CONFLICT',
          `${g} is joined source-specifically on ${interfaceLabel(state.iface)}: ${op} applies to any-source memberships (leave or join sources instead)`,
        );
      }
      if (op === 'block' && state.sources.has(s)) throw stateError('ERR_MULTICAST_ALREADY_BLOCKED', `${s} is already blocked for ${g} on ${interfaceLabel(state.iface)}`);
      if (op === 'unblock' && !state.sources.has(s)) throw stateError('ERR_MULTICAST_NOT_BLOCKED', `${s} is not blocked for ${g} on ${interfaceLabel(state.iface)}`);
    }
    for (const state of states) {
      this.membershipCall(op === 'block' ? 'MCAST_BLOCK_SOURCE' : 'MCAST_UNBLOCK_SOURCE', g, state.iface, s);
      if (op === 'block') state.sources.add(s);
      else state.sources.delete(s);
    }
  }
}
