/**
 * The interfaces of one network namespace as this process knows them: one directory per
 * namespace, shared by every socket of that namespace, which names interfaces (the arrival
 * interface of every received packet), resolves what callers give (an index, a name, the
 * zone of an address), and tells the objects that follow the namespace when an interface
 * goes away.
 *
 * One cache, one policy. While some object follows the namespace (a socket bound to a
 * device, a multicast socket that joined, an anycast group, a socket that ignores its own
 * addresses), the shared rtnetlink watcher (watcher.ts) keeps the cache current. A name or
 * an index the cache does not know is looked up in a fresh listing of the namespace, which
 * then replaces the cache: an interface added or renamed after a socket opened is found on
 * the next lookup, followed or not, and a lookup that hits costs a Map access. Nothing is
 * polled, nothing expires, and nobody following means no watcher and no fd held.
 *
 * Removals reach followers one way: follow() with a `removed` handler, called once per
 * removed interface for every follower, each on its own (one that throws costs the others
 * nothing). Followers are held weakly, so a socket dropped without close() can still be
 * collected; its following ends with it.
 * @internal
 * @packageDocumentation
 */
import type { EventEmitter } from 'node:events';
import { attempt, invalidArgType, noSuchInterface, warn, withContext } from '../errors';
import { isLinkLocalIpv6 } from '../codec/ipv6addr';
import { listenerThrew } from '../core/events';
import { native } from '../core/native';
import { linkFlags } from './rtnetlink';
import type { InterfaceFlags, InterfaceRef } from './types';
import { AddressEvent, LinkEvent, LinkSubscription, subscribeLinks, WatchedLink } from './watcher';
import { netnsPath, parseZone, validateInteger, validateInterfaceName } from '../validate';

/** What a follower hears; each handler is static (it gets its target), see follow(). */
export interface Follower<T> {
  /** An interface of the namespace was removed (`iface` with its last known name). */
  removed?(target: T, iface: InterfaceRef): void;
  /** Any other change of a link: added, up, down, changed (flags or name). */
  changed?(target: T, event: LinkEvent): void;
  /** An address was added or removed. */
  address?(target: T, event: AddressEvent): void;
}

/** One object's following of a namespace. */
export interface Following {
  /** True when this following started the watcher: the directory was listed just now. */
  readonly started: boolean;
  /** Stops the events; the last following of a namespace closes its watcher. Idempotent. */
  cancel(): void;
}

/** A link as the cache knows it; `flags` undefined when only its name is known. */
interface Known {
  readonly ref: InterfaceRef;
  readonly flags: InterfaceFlags | undefined;
}

interface FollowerEntry {
  readonly target: WeakRef<EventEmitter>;
  readonly follower: Follower<EventEmitter>;
}

/** Ends the following of objects collected without cancelling it. */
const abandoned = new FinalizationRegistry<() => void>((cancel) => cancel());

/** The directory of each namespace, by namespace path ('' for the process's own). */
const directories = new Map<string, WeakRef<InterfaceDirectory>>();
const forgotten = new FinalizationRegistry<string>((key) => {
  if (directories.get(key)?.deref() === undefined) directories.delete(key);
});

/**
 * The directory of `netns` (default: the caller's namespace), shared by every caller in
 * the process. Sockets keep theirs for life; an unused one is collected.
 */
export function directoryOf(netns: string | undefined): InterfaceDirectory {
  const key = netnsPath(netns) ?? '';
  let dir = directories.get(key)?.deref();
  if (dir === undefined) {
    dir = new InterfaceDirectory(netns);
    directories.set(key, new WeakRef(dir));
    forgotten.register(dir, key);
  }
  return dir;
}

/** See the module comment. Get one with directoryOf(). */
export class InterfaceDirectory {
  /** The namespace, as first given. */
  readonly netns: string | undefined;
  private readonly path: string | null;
  private byIndex = new Map<number, Known>();
  private byName = new Map<string, Known>();
  /** This host's addresses, while followed: `address` or, link-local, `address%index`, counted per interface holding it. */
  private readonly own = new Map<string, number>();
  private readonly followers = new Set<FollowerEntry>();
  private watch: LinkSubscription | undefined;

  constructor(netns: string | undefined) {
    this.netns = netns;
    this.path = netnsPath(netns);
  }

  /**
   * Resolves an index or a name to both, checking that the interface exists: from the
   * cache, else from a fresh listing. ENODEV (shaped as the kernel's) when there is none.
   * Bad specs are the coded argument errors, named `name`.
   */
  resolve(spec: unknown, name: string): InterfaceRef {
    const found = this.lookup(spec, name);
    // The caller's own object: what it keeps or hands out must not be the shared one.
    return { index: found.ref.index, name: found.ref.name };
  }

  /**
   * resolve() for a one-off question (the public interfaces.* lookups): unless the watcher
   * keeps the cache current, the answer comes from a fresh listing, so an interface deleted
   * and re-created under its name (a new index) since the last lookup is answered as it is
   * now. Sockets use resolve(): their next miss refreshes, and a send to a gone index is
   * the kernel's ENODEV.
   */
  resolveNow(spec: unknown, name: string): InterfaceRef {
    const found = this.lookup(spec, name, this.watch === undefined);
    return { index: found.ref.index, name: found.ref.name };
  }

  /**
   * The index for an interface given per packet: an index goes to the kernel as it is (an
   * unknown one fails the send with ENODEV, as the kernel says), a name is resolved.
   */
  index(spec: unknown, name: string): number {
    if (typeof spec === 'number') return validateInteger(spec, name, 1, 0x7fffffff);
    return this.lookup(spec, name).ref.index;
  }

  /** The scope id of an address's zone ('eth0' or '2'), checked to exist; 0 without zone. */
  scopeId(zone: string | undefined, name: string): number {
    return zone === undefined ? 0 : this.resolve(parseZone(zone, name), name).index;
  }

  /**
   * `{ index, name }` of a received packet's interface: one frozen object per interface,
   * shared, so naming the arrival interface of every packet costs a Map lookup. Never
   * throws (it runs on the receive path): an index it cannot name has name ''. `ask`
   * names an index in the asking socket's own namespace, for when the namespace cannot be
   * listed by its name any more (the name was deleted while the socket lives).
   */
  ref(index: number, ask?: (index: number) => string): InterfaceRef {
    const known = this.byIndex.get(index);
    if (known !== undefined) return known.ref;
    try {
      this.refresh();
    } catch {
      const name = ask === undefined ? '' : safely(ask, index);
      if (name === '') return Object.freeze({ index, name });
      this.learn(index, name, undefined);
    }
    return this.byIndex.get(index)?.ref ?? Object.freeze({ index, name: '' });
  }

  /**
   * The links of the namespace now, with their flags: a fresh listing (which also renews
   * the cache), or right after a following started the watcher, the listing it just took.
   */
  list(listedNow = false): WatchedLink[] {
    if (!(listedNow && this.watch !== undefined)) this.refresh();
    const links: WatchedLink[] = [];
    for (const k of this.byIndex.values()) if (k.flags !== undefined) links.push({ index: k.ref.index, name: k.ref.name, flags: k.flags });
    return links.sort((a, b) => a.index - b.index);
  }

  /** A link as the cache knows it (flags included), or undefined. No listing. */
  known(index: number): WatchedLink | undefined {
    const k = this.byIndex.get(index);
    return k === undefined || k.flags === undefined ? undefined : { index, name: k.ref.name, flags: k.flags };
  }

  /**
   * True if `address` (canonical text, no zone) is one of this host's, link-local ones only
   * on `ifindex`. Known only while followed (the watcher's view): follow first.
   */
  isOwnAddress(address: string, ifindex: number): boolean {
    return this.own.has(ownKey(address, ifindex));
  }

  /**
   * Starts following the namespace: `follower`'s handlers are called with `target` for
   * every change, starting the shared watcher if this is the first following. Handlers
   * must not close over `target` (pass static functions): the directory holds it weakly.
   * A failure of the watcher (which then heals by itself) is a warning on `target`.
   * Throws what opening the watcher throws (ENOENT for an unknown namespace, ...).
   */
  follow<T extends EventEmitter>(target: T, follower: Follower<T>): Following {
    let started = false;
    if (this.watch === undefined) {
      this.watch = subscribeLinks(this.netns, this, InterfaceDirectory.onLink, InterfaceDirectory.onWatchError, InterfaceDirectory.onAddress);
      started = this.watch.started;
      this.adopt();
    }
    const entry: FollowerEntry = { target: new WeakRef(target), follower: follower as Follower<EventEmitter> };
    this.followers.add(entry);
    let active = true;
    const token = {};
    const cancel = (): void => {
      if (!active) return;
      active = false;
      this.followers.delete(entry);
      if (this.followers.size === 0) this.unwatch();
    };
    abandoned.register(target, cancel, token);
    return {
      started,
      cancel: () => {
        abandoned.unregister(token);
        cancel();
      },
    };
  }

  // -------------------------------------------------------------------------------------

  /** An interface from the cache, else from a fresh listing; checked only on a miss (a hit is a name or index the kernel gave). */
  private lookup(spec: unknown, name: string, fresh = false): Known {
    if (typeof spec !== 'number' && typeof spec !== 'string') throw invalidArgType(name, 'an interface index (number) or name (string)', spec);
    const hit = fresh ? undefined : this.find(spec);
    if (hit !== undefined) return hit;
    if (typeof spec === 'number') validateInteger(spec, name, 1, 0x7fffffff);
    else validateInterfaceName(spec, name);
    this.refresh();
    const found = this.find(spec);
    if (found === undefined) throw noSuchInterface(spec, this.netns);
    return found;
  }

  private find(spec: number | string): Known | undefined {
    return typeof spec === 'number' ? this.byIndex.get(spec) : this.byName.get(spec);
  }

  /** A fresh listing replaces the cache (what it does not show is gone). */
  private refresh(): void {
    const raw = attempt({ netns: this.netns }, () => native().interfaces(this.path));
    this.replace(raw.links.map((l) => ({ index: l.index, name: l.name, flags: linkFlags(l.flags) })));
  }

  /** The watcher's state (a listing it took when it started, then kept current) becomes the cache. */
  private adopt(): void {
    const watcher = this.watch?.watcher;
    if (watcher === undefined) return;
    this.replace(watcher.list());
    this.own.clear();
    for (const a of watcher.addresses()) this.countAddress(a.address, a.index, 1);
  }

  private replace(links: readonly WatchedLink[]): void {
    const before = this.byIndex;
    this.byIndex = new Map();
    this.byName = new Map();
    for (const l of links) {
      // The same interface keeps the same object: received packets share it.
      const old = before.get(l.index)?.ref;
      this.learn(l.index, l.name, l.flags, old !== undefined && old.name === l.name ? old : undefined);
    }
  }

  private learn(index: number, name: string, flags: InterfaceFlags | undefined, ref: InterfaceRef = Object.freeze({ index, name })): void {
    const previous = this.byIndex.get(index);
    if (previous !== undefined && this.byName.get(previous.ref.name) === previous) this.byName.delete(previous.ref.name);
    const known: Known = { ref: previous !== undefined && previous.ref.name === name ? previous.ref : ref, flags };
    this.byIndex.set(index, known);
    if (name !== '') this.byName.set(name, known);
  }

  private forget(index: number): InterfaceRef | undefined {
    const known = this.byIndex.get(index);
    if (known === undefined) return undefined;
    this.byIndex.delete(index);
    if (this.byName.get(known.ref.name) === known) this.byName.delete(known.ref.name);
    return known.ref;
  }

  private countAddress(address: string, index: number, by: 1 | -1): void {
    const key = ownKey(address, index);
    const n = (this.own.get(key) ?? 0) + by;
    if (n > 0) this.own.set(key, n);
    else this.own.delete(key);
  }

  private unwatch(): void {
    this.watch?.cancel();
    this.watch = undefined;
    // Nobody keeps addresses current any more: none are known rather than stale ones.
    this.own.clear();
  }

  /** Every live follower, in the order they came, with its target (a copy: handlers may cancel). */
  private live(): Array<{ target: EventEmitter; follower: Follower<EventEmitter> }> {
    const out: Array<{ target: EventEmitter; follower: Follower<EventEmitter> }> = [];
    for (const entry of this.followers) {
      const target = entry.target.deref();
      if (target !== undefined) out.push({ target, follower: entry.follower });
    }
    return out;
  }

  // Static, so that the shared watcher's listeners do not hold the directory (see subscribeLinks).
  private static onLink(dir: InterfaceDirectory, event: LinkEvent): void {
    let removed: InterfaceRef | undefined;
    if (event.type === 'removed') {
      const last = dir.forget(event.index);
      removed = { index: event.index, name: event.name || (last?.name ?? '') };
    } else {
      dir.learn(event.index, event.name, event.flags);
    }
    for (const { target, follower } of dir.live()) {
      try {
        if (removed !== undefined) follower.removed?.(target, removed);
        else follower.changed?.(target, event);
      } catch (err) {
        listenerThrew(err);
      }
    }
  }

  private static onAddress(dir: InterfaceDirectory, event: AddressEvent): void {
    dir.countAddress(event.address, event.index, event.type === 'added' ? 1 : -1);
    for (const { target, follower } of dir.live()) {
      try {
        follower.address?.(target, event);
      } catch (err) {
        listenerThrew(err);
      }
    }
  }

  private static onWatchError(dir: InterfaceDirectory, err: Error): void {
    const failure = withContext(err, { netns: dir.netns }) as Error;
    for (const { target } of dir.live()) {
      try {
        warn(target, failure);
      } catch (e) {
        listenerThrew(e);
      }
    }
  }
}

/**
 * How the own-address set keys an address (canonical text, as the watcher and the record
 * decoder both give it): a link-local address means something only on its link (fe80::2
 * on eth0 is ours while fe80::2 on eth1 may be a neighbour's); others belong to the host.
 */
function ownKey(address: string, index: number): string {
  return isLinkLocalIpv6(address) ? `${address}%${index}` : address;
}

function safely(ask: (index: number) => string, index: number): string {
  try {
    return ask(index);
  } catch {
    return '';
  }
}
