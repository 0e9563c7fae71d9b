/**
 * Interfaces come and go: a watcher on the kernel's rtnetlink notifications (a
 * NETLINK_ROUTE socket bound to RTMGRP_LINK, RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR,
 * opened inside the namespace and read on the event loop like any ip6sock socket) that
 * reports links appearing, going up or down, changing and going away, and addresses being
 * added and removed. No polling: the kernel pushes every change.
 *
 * The watcher keeps the state it has seen (links by index, addresses), so it reports
 * changes, not messages: the kernel repeats RTM_NEWLINK for many reasons (statistics,
 * carrier, MTU) and RTM_NEWADDR for lifetime updates; only a real difference becomes an
 * event.
 *
 * Overrun: when changes come faster than they are read, the kernel drops notifications and
 * the next read fails with ENOBUFS. The watcher then opens a fresh netlink socket, lists
 * the interfaces again, emits the differences to what it had seen as ordinary events, and
 * emits 'resync'. Why a fresh socket rather than a dump on the old one: the old socket's
 * queue still holds notifications older than the drop, and applied after a fresh listing
 * they would turn it back into a stale state; a new socket's queue starts after its own
 * listing, so every event it delivers is newer than the list. Changes that cancelled out
 * while events were lost (a link deleted and re-created with the same index) cannot be
 * seen that way; they look like no change.
 *
 * Listeners cannot hurt the watcher: the state of a whole read is applied before any
 * listener runs, and each listener is called on its own, so one that throws (its error is
 * raised as an uncaught exception on the next tick) costs neither the other listeners nor
 * later events. The watcher sockets share to follow their namespace also heals itself:
 * after any failure (no fd left for the fresh socket, ...) it retries with backoff and
 * resyncs, and each subscriber gets a warning.
 * @packageDocumentation
 */
import { AsyncQueue, closeSignal, endAll } from '../core/queue';
import { emitEach, EmitterEvents, eventMap, Events, listenerThrew, TypedEmitter } from '../core/events';
import * as fs from 'node:fs';
import { attempt, CodedError, invalidArgType, withContext } from '../errors';
import type { InterfaceFlags, InterfaceRef, NamespaceOptions } from './types';
import { formatIpv6, parseIpv6 } from '../codec/ipv6addr';
import { AddressMessage, LinkMessage, linkFlags, parseMessages } from './rtnetlink';
import { constants, native, NativeSocket } from '../core/native';
import { RecordBatch } from '../core/records';
import { netnsPath, optionKeys, validateInteger, validateOptionalObject, validateOptionKeys, validateSignal } from '../validate';

/** Options of interfaces.watch(). */
export interface WatchOptions extends NamespaceOptions {
  /** Aborting closes the watcher. */
  signal?: AbortSignal;
  /**
   * SO_RCVBUF of the netlink socket in bytes (the kernel doubles it and applies a minimum).
   * A bigger buffer overruns less often when many changes come at once.
   */
  receiveBufferSize?: number;
}

/** What happened to a link. 'up'/'down' are the administrative state (IFF_UP); 'changed' is any other reported flag or the name. */
export type LinkChange = 'added' | 'removed' | 'up' | 'down' | 'changed';

/** A link appeared, went up or down, changed, or went away. */
export interface LinkEvent {
  kind: 'link';
  type: LinkChange;
  index: number;
  name: string;
  /** The link's flags after the change. */
  flags: InterfaceFlags;
}

/** An address was added to or removed from an interface. */
export interface AddressEvent {
  kind: 'address';
  type: 'added' | 'removed';
  /** The interface's index. */
  index: number;
  /** The interface's name ('' if the link was never seen). */
  name: string;
  /** Canonical text, no zone. */
  address: string;
  prefixLength: number;
  family: 4 | 6;
}

/** What the async iterator yields: link and address events, told apart by `kind`. */
export type InterfaceEvent = LinkEvent | AddressEvent;

/** A link as the watcher currently knows it. */
export interface WatchedLink extends InterfaceRef {
  flags: InterfaceFlags;
}

/** An address as the watcher currently knows it. */
export interface WatchedAddress {
  index: number;
  name: string;
  address: string;
  prefixLength: number;
  family: 4 | 6;
}

interface LinkState {
  index: number;
  name: string;
  bits: number;
}

function watchedLink(l: LinkState): WatchedLink {
  return { index: l.index, name: l.name, flags: linkFlags(l.bits) };
}

interface AddressState {
  index: number;
  family: 4 | 6;
  address: string;
  prefixLength: number;
}

/** The first retry of a healing watcher after a failure, and the longest wait between retries (ms). */
const RETRY_FIRST = 50;
const RETRY_MAX = 5000;

/** Netlink messages read per system call, and the most bytes one datagram may take (a dump part is at most 32 KiB). */
const BATCH = 8;
const SLOT = 65536;

/** An fd on the namespace at `path`, so it can be entered again whatever happens to its name. */
function openNamespace(path: string, netns: string | undefined): number {
  try {
    return fs.openSync(path, 'r');
  } catch (err) {
    const missing = (err as Partial<CodedError>).code === 'ENOENT';
    throw withContext(err, { netns, hint: missing ? `there is no network namespace ${netns} (ip netns list shows the names)` : undefined });
  }
}


function addressKey(index: number, address: string, prefixLength: number): string {
  return `${index}|${address}/${prefixLength}`;
}

/** Events of an InterfaceWatcher. */
export interface InterfaceWatcherEvents extends EmitterEvents {
  /** A link appeared, went up or down, changed or went away. */
  link: [event: LinkEvent];
  /** An address was added or removed. */
  address: [event: AddressEvent];
  /** After an overrun: the differences were emitted as events, the state is current again. */
  resync: [];
  /** A failure of the watcher itself; it closes when it cannot go on. */
  error: [err: Error];
  /** The watcher closed. */
  close: [];
}

const WATCH_KEYS = optionKeys<WatchOptions>({ netns: true, signal: true, receiveBufferSize: true });

/**
 * Watches the interfaces of a namespace. Create it with interfaces.watch(). Events:
 * 'link' (LinkEvent), 'address' (AddressEvent), 'resync' (after an overrun, once the
 * differences have been emitted), 'error' (a failure of the watcher itself; it closes
 * when it cannot go on), 'close'.
 */
export class InterfaceWatcher extends TypedEmitter implements AsyncIterable<InterfaceEvent> {
  /** @internal */
  declare readonly [eventMap]: Events<InterfaceWatcherEvents>;

  /** The namespace watched, as given. */
  readonly netns: string | undefined;

  private handle: NativeSocket;
  /** Where the netlink socket is (re)opened: the namespace held open by nsFd, or null for ours. */
  private readonly path: string | null;
  private readonly nsFd: number | undefined;
  private readonly receiveBufferSize: number | undefined;
  private links = new Map<number, LinkState>();
  private addrs = new Map<string, AddressState>();
  private readonly queues = new Set<AsyncQueue<InterfaceEvent>>();
  /** Reads each batch of netlink messages the socket delivers. */
  private readonly records = new RecordBatch();
  private refed = true;
  /** Events of the read being applied: emitted once its state is all applied. */
  private pending: InterfaceEvent[] = [];
  /**
   * Set for the watcher sockets share: called with a failure the watcher then recovers from
   * by itself (retrying with backoff), instead of closing with 'error'.
   */
  private readonly heal: ((err: Error) => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = 0;
  private closing: Promise<void> | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => void this.close();

  /** Use interfaces.watch(). Throws coded errors for bad options, an unknown namespace, or a failed socket. */
  constructor(options?: WatchOptions, /** @internal */ heal?: (err: Error) => void) {
    super();
    this.heal = heal;
    const opts = validateOptionalObject<WatchOptions>(options, 'options');
    validateOptionKeys(opts, WATCH_KEYS, 'options');
    const path = netnsPath(opts.netns, 'options.netns');
    this.signal = validateSignal(opts.signal, 'options.signal');
    this.receiveBufferSize =
      opts.receiveBufferSize === undefined ? undefined : validateInteger(opts.receiveBufferSize, 'options.receiveBufferSize', 1, 0x7fffffff);
    this.netns = opts.netns;
    // Hold the namespace itself, not its name: a watcher that must reopen its socket after
    // an overrun still finds the namespace after `ip netns delete` removed the name (the
    // namespace lives on while anything in it is open, this watcher included). libuv opens
    // every file close-on-exec.
    this.nsFd = path === null ? undefined : openNamespace(path, opts.netns);
    this.path = this.nsFd === undefined ? null : `/proc/self/fd/${this.nsFd}`;
    let handle: NativeSocket | undefined;
    try {
      handle = this.open();
      const fresh = this.snapshot();
      this.links = fresh.links;
      this.addrs = fresh.addrs;
    } catch (err) {
      handle?.close();
      if (this.nsFd !== undefined) fs.closeSync(this.nsFd);
      throw err;
    }
    this.handle = handle;
    if (this.signal) {
      if (this.signal.aborted) process.nextTick(this.onAbort);
      else this.signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** The links as last reported, by index. Empty once closed. */
  list(): WatchedLink[] {
    if (this.closed) return [];
    return [...this.links.values()].sort((a, b) => a.index - b.index).map(watchedLink);
  }

  /**
   * One link as list() shows it, by index or name: a lookup in what the watcher knows, no
   * system call. Undefined when no link has that index or name (or once closed).
   */
  link(spec: number | string): WatchedLink | undefined {
    if (typeof spec !== 'number' && typeof spec !== 'string') throw invalidArgType('spec', 'an interface index (number) or name (string)', spec);
    if (this.closed) return undefined;
    if (typeof spec === 'number') {
      const l = this.links.get(spec);
      return l === undefined ? undefined : watchedLink(l);
    }
    for (const l of this.links.values()) if (l.name === spec) return watchedLink(l);
    return undefined;
  }

  /** Keep the event loop alive while the watcher is open (the default). */
  ref(): this {
    this.refed = true;
    if (!this.closed) this.handle.ref();
    return this;
  }

  /** Let the process exit even while the watcher is open. */
  unref(): this {
    this.refed = false;
    if (!this.closed) this.handle.unref();
    return this;
  }

  /** Stops watching: closes the netlink socket, ends iterators, emits 'close' and resolves. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const ending = closeSignal(this);
    this.closing = ending.promise;
    clearTimeout(this.retryTimer);
    this.pending.length = 0;
    this.handle.close();
    // The handle, a wrapped native object, is collected late: it must not keep this watcher.
    this.handle.onmessages = undefined;
    if (this.nsFd !== undefined) fs.closeSync(this.nsFd);
    this.signal?.removeEventListener('abort', this.onAbort);
    endAll(this.queues);
    ending.announce();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Yields every link and address event until the watcher closes. */
  [Symbol.asyncIterator](): AsyncIterator<InterfaceEvent> {
    const q = new AsyncQueue<InterfaceEvent>();
    if (this.closed) q.end();
    else this.queues.add(q);
    return q.iterator(() => this.queues.delete(q));
  }

  /** The addresses as last reported. Empty once closed. */
  addresses(): WatchedAddress[] {
    if (this.closed) return [];
    return [...this.addrs.values()].map((a) => ({ ...a, name: this.links.get(a.index)?.name ?? '' }));
  }

  /** A bound, reading netlink socket in the namespace. */
  private open(): NativeSocket {
    const c = constants();
    const context = { netns: this.netns };
    const handle = attempt(context, () => new (native().Socket)(c.AF_NETLINK, c.SOCK_RAW, c.NETLINK_ROUTE, this.path, null));
    try {
      const size = this.receiveBufferSize;
      if (size !== undefined) attempt({ ...context, option: 'SO_RCVBUF' }, () => handle.setInt(c.SOL_SOCKET, c.SO_RCVBUF, size));
      attempt(context, () => handle.bindNetlink(c.RTMGRP_LINK | c.RTMGRP_IPV4_IFADDR | c.RTMGRP_IPV6_IFADDR));
      handle.onmessages = (count, data, meta, error) => this.onMessages(handle, count, data, meta, error);
      handle.startReceive(BATCH, SLOT);
      if (!this.refed) handle.unref();
    } catch (err) {
      handle.close();
      throw err;
    }
    return handle;
  }

  /**
   * The interfaces as they are now (getifaddrs inside the namespace). Called after the
   * socket is bound, so every later change arrives as a notification.
   */
  private snapshot(): { links: Map<number, LinkState>; addrs: Map<string, AddressState> } {
    const raw = attempt({ netns: this.netns }, () => native().interfaces(this.path));
    const links = new Map<number, LinkState>();
    const byName = new Map<string, number>();
    for (const l of raw.links) {
      links.set(l.index, { index: l.index, name: l.name, bits: l.flags });
      byName.set(l.name, l.index);
    }
    const addrs = new Map<string, AddressState>();
    for (const a of raw.addresses) {
      // IPv4 addresses carry their label, which may be an alias ("eth0:1").
      const colon = a.name.indexOf(':');
      const index = byName.get(a.name) ?? (colon > 0 ? byName.get(a.name.slice(0, colon)) : undefined);
      if (index === undefined) continue;
      const address = a.family === 6 ? formatIpv6(parseIpv6(a.address.split('%')[0])) : a.address;
      addrs.set(addressKey(index, address, a.prefixLength), { index, family: a.family, address, prefixLength: a.prefixLength });
    }
    return { links, addrs };
  }

  private onMessages(handle: NativeSocket, count: number, data: Buffer | undefined, meta: Buffer | undefined, error?: Error): void {
    // A socket replaced by resync() may still deliver the rest of a batch.
    if (handle !== this.handle || this.closed) return;
    try {
      this.apply(handle, count, data, meta, error);
    } finally {
      this.flushResync();
    }
  }

  /** flush(), with the 'resync' of a resync that happened since the last one. */
  private flushResync(): void {
    const resynced = this.resynced;
    this.resynced = false;
    this.flush(resynced);
  }

  /** Applies one read to the state; its events wait in `pending`. */
  private apply(handle: NativeSocket, count: number, data: Buffer | undefined, meta: Buffer | undefined, error?: Error): void {
    if (error) {
      if ((error as CodedError).code === 'ENOBUFS') this.resync();
      else this.fail(withContext(error, { netns: this.netns }) as Error);
      return;
    }
    if (data === undefined || meta === undefined) return;
    const records = this.records.load(count, data, meta);
    for (let i = 0; i < count; i++) {
      // A notification cut short is lost like an overrun.
      if (records.truncated(i)) {
        this.resync();
        return;
      }
      let messages;
      try {
        messages = parseMessages(records.payload(i));
      } catch {
        this.resync();
        return;
      }
      for (const m of messages) {
        if (m.kind === 'link') this.applyLink(m);
        else if (m.kind === 'address') this.applyAddress(m);
        // NLMSG_DONE / NLMSG_ERROR answer requests; this socket sends none.
        if (handle !== this.handle || this.closed) return;
      }
    }
  }

  private applyLink(m: LinkMessage): void {
    const prev = this.links.get(m.index);
    if (m.deleted) {
      if (prev === undefined) return;
      // The kernel sends RTM_DELADDR for the addresses first; anything left goes with the link.
      for (const [key, a] of this.addrs) {
        if (a.index === m.index) {
          this.addrs.delete(key);
          this.emitAddress('removed', a);
        }
      }
      this.links.delete(m.index);
      this.emitLink('removed', { index: m.index, name: m.name || prev.name, bits: m.flags });
      return;
    }
    const next: LinkState = { index: m.index, name: m.name || (prev?.name ?? ''), bits: m.flags };
    this.links.set(m.index, next);
    if (prev === undefined) {
      this.emitLink('added', next);
      return;
    }
    const c = constants();
    const reported = c.IFF_UP | c.IFF_RUNNING | c.IFF_MULTICAST | c.IFF_LOOPBACK | c.IFF_BROADCAST | c.IFF_POINTOPOINT;
    const changed = prev.bits ^ next.bits;
    if ((changed & c.IFF_UP) !== 0) this.emitLink((next.bits & c.IFF_UP) !== 0 ? 'up' : 'down', next);
    else if ((changed & reported) !== 0 || prev.name !== next.name) this.emitLink('changed', next);
  }

  private applyAddress(m: AddressMessage): void {
    const key = addressKey(m.index, m.address, m.prefixLength);
    const known = this.addrs.get(key);
    if (m.deleted) {
      if (known === undefined) return;
      this.addrs.delete(key);
      this.emitAddress('removed', known);
    } else if (known === undefined) {
      const a: AddressState = { index: m.index, family: m.family, address: m.address, prefixLength: m.prefixLength };
      this.addrs.set(key, a);
      this.emitAddress('added', a);
    }
  }

  private emitLink(type: LinkChange, l: LinkState): void {
    this.pending.push({ kind: 'link', type, index: l.index, name: l.name, flags: linkFlags(l.bits) });
  }

  private emitAddress(type: 'added' | 'removed', a: AddressState): void {
    this.pending.push({ kind: 'address', type, index: a.index, name: this.links.get(a.index)?.name ?? '', address: a.address, prefixLength: a.prefixLength, family: a.family });
  }

  /**
   * Emits the events of what was just applied, in order, each to every iterator and then
   * to each listener on its own (emitEach): a listener that throws costs nothing else. A
   * 'resync' (`resynced`) comes after the differences it found.
   */
  private flush(resynced = false): void {
    const events = this.pending;
    if (events.length === 0 && !resynced) return;
    this.pending = [];
    for (const event of events) {
      if (this.closed) return;
      for (const q of this.queues) q.push(event);
      emitEach(this, event.kind, event);
    }
    if (resynced && !this.closed) emitEach(this, 'resync');
  }

  /**
   * After an overrun: a fresh socket, a fresh list, and the differences to what was seen,
   * applied through the same code as notifications (so they come out as the same events).
   */
  private resync(): void {
    this.handle.onmessages = undefined;
    this.handle.close();
    let fresh;
    try {
      this.handle = this.open();
      fresh = this.snapshot();
    } catch (err) {
      // A socket opened before the listing failed must not deliver on its own.
      this.handle.onmessages = undefined;
      this.handle.close();
      this.fail(withContext(err, { netns: this.netns }) as Error);
      return;
    }
    this.retryDelay = 0;
    for (const l of [...this.links.values()]) {
      if (!fresh.links.has(l.index)) this.applyLink({ kind: 'link', deleted: true, index: l.index, name: l.name, flags: l.bits });
    }
    for (const [key, a] of [...this.addrs]) {
      if (!fresh.addrs.has(key)) this.applyAddress({ kind: 'address', deleted: true, ...a });
    }
    for (const l of fresh.links.values()) this.applyLink({ kind: 'link', deleted: false, index: l.index, name: l.name, flags: l.bits });
    for (const a of fresh.addrs.values()) this.applyAddress({ kind: 'address', deleted: false, ...a });
    this.resynced = true;
  }

  /** A resync happened during the read being applied: 'resync' follows its events. */
  private resynced = false;

  /**
   * A failure the watcher cannot go on from: 'error', then close; or, for a healing watcher,
   * a warning to its owner and a retry (a fresh socket, a listing, the differences) after a
   * backoff, as many times as it takes.
   */
  private fail(err: Error): void {
    if (this.heal !== undefined && !this.closed) {
      this.handle.onmessages = undefined;
      this.handle.close();
      const first = this.retryDelay === 0;
      this.retryDelay = first ? RETRY_FIRST : Math.min(this.retryDelay * 2, RETRY_MAX);
      this.retryTimer = setTimeout(() => this.retry(), this.retryDelay).unref();
      // One warning per outage, not one per retry.
      if (first) {
        try {
          this.heal(err);
        } catch (e) {
          listenerThrew(e);
        }
      }
      return;
    }
    void this.close();
    (this as InterfaceWatcher).emit('error', err);
  }

  private retry(): void {
    this.retryTimer = undefined;
    if (this.closed) return;
    try {
      this.resync();
    } finally {
      this.flushResync();
    }
  }
}

/**
 * Watches the links and addresses of a namespace (default: the caller's) through rtnetlink.
 * The watcher starts at once (its list() is the state now) and reports every later change
 * as 'link' and 'address' events, or through `for await`. Needs no privilege in the
 * caller's own namespace; another namespace needs what entering it needs (CAP_SYS_ADMIN).
 *
 * ```ts
 * await using watcher = interfaces.watch({ netns: 'acp' });
 * watcher.on('link', (e) => console.log(e.type, e.name, e.index, e.flags.up));
 * for await (const e of watcher) if (e.kind === 'address') console.log(e.type, e.address);
 * ```
 */
export function watch(options?: WatchOptions): InterfaceWatcher {
  return new InterfaceWatcher(options);
}

// ---------------------------------------------------------------------------------------
// One shared watcher per namespace, for the namespace's interface directory (directory.ts),
// through which sockets follow their namespace.

interface SharedWatcher {
  readonly watcher: InterfaceWatcher;
  users: number;
  /** Each subscriber's onError, told when the watcher fails (it then heals by itself). */
  readonly troubled: Set<(err: Error) => void>;
}

const sharedWatchers = new Map<string, SharedWatcher>();

/** Cancels the subscriptions of sockets that were collected without being closed. */
const collected = new FinalizationRegistry<() => void>((cancel) => cancel());

/** @internal One object's subscription to the link events of its namespace. */
export interface LinkSubscription {
  /** The shared watcher: its list() is the namespace as last reported. */
  readonly watcher: InterfaceWatcher;
  /** True when this subscription started the watcher: its list() is then a listing taken just now. */
  readonly started: boolean;
  /** Stops the events. Idempotent. */
  cancel(): void;
}

/**
 * @internal
 * Delivers the link events of `netns` to `target` through a watcher shared by every
 * subscriber in that namespace (one netlink socket per namespace, unreferenced: it never
 * keeps the process alive by itself), and its address events too when `onAddress` is
 * given. The watcher holds `target` weakly, so a socket dropped without close() can still
 * be collected; `onLink`, `onError` and `onAddress` must therefore not close over it (pass
 * module-level or static functions). `onError` hears of a failure of the watcher, which
 * then heals by itself (retries with backoff and resyncs, so the events missed in between
 * come as differences). Each subscriber's callbacks run on their own: one that throws
 * silences no other. Throws what opening the watcher throws (ENOENT for an unknown
 * namespace, ...).
 */
export function subscribeLinks<T extends object>(
  netns: string | undefined,
  target: T,
  onLink: (target: T, event: LinkEvent) => void,
  onError: (target: T, err: Error) => void,
  onAddress?: (target: T, event: AddressEvent) => void,
): LinkSubscription {
  const key = netnsPath(netns) ?? '';
  let shared = sharedWatchers.get(key);
  let started = false;
  if (shared === undefined || shared.watcher.closed) {
    started = true;
    const troubled = new Set<(err: Error) => void>();
    // Healing: sockets cannot restart a watcher they share, so it restarts itself after any
    // failure (an overrun met with no fd free, a failed read) and resyncs; until then each
    // subscriber gets a warning.
    const heal = (err: Error): void => {
      for (const tell of [...troubled]) {
        try {
          tell(err);
        } catch (e) {
          listenerThrew(e);
        }
      }
    };
    const created: SharedWatcher = { watcher: new InterfaceWatcher({ netns }, heal).unref(), users: 0, troubled };
    // One listener pair per subscribed socket: any number is expected, not a leak.
    created.watcher.setMaxListeners(0);
    created.watcher.once('close', () => {
      if (sharedWatchers.get(key) === created) sharedWatchers.delete(key);
    });
    sharedWatchers.set(key, created);
    shared = created;
  }
  const entry = shared;
  const weak = new WeakRef(target);
  const linkListener = (event: LinkEvent): void => {
    const t = weak.deref();
    if (t !== undefined) onLink(t, event);
  };
  const errorListener = (err: Error): void => {
    const t = weak.deref();
    if (t !== undefined) onError(t, err);
  };
  const addressListener =
    onAddress === undefined
      ? undefined
      : (event: AddressEvent): void => {
          const t = weak.deref();
          if (t !== undefined) onAddress(t, event);
        };
  entry.watcher.on('link', linkListener);
  // Not expected from a healing watcher; kept so that nothing it emits goes unheard.
  entry.watcher.on('error', errorListener);
  entry.troubled.add(errorListener);
  if (addressListener !== undefined) entry.watcher.on('address', addressListener);
  entry.users++;
  let active = true;
  const cancel = (): void => {
    if (!active) return;
    active = false;
    entry.watcher.off('link', linkListener);
    entry.watcher.off('error', errorListener);
    entry.troubled.delete(errorListener);
    if (addressListener !== undefined) entry.watcher.off('address', addressListener);
    if (--entry.users === 0) void entry.watcher.close();
  };
  const token = {};
  collected.register(target, cancel, token);
  return {
    watcher: entry.watcher,
    started,
    cancel: () => {
      collected.unregister(token);
      cancel();
    },
  };
}
