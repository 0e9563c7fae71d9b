/**
 * The base every ip6sock socket class extends: one native socket, events ('error',
 * 'close', and the subclass's message event), an async iterator, promise-returning sends
 * with visible backpressure, and one ordered, idempotent close.
 * @packageDocumentation
 */
import * as os from 'node:os';
import { inspect } from 'node:util';
import { attempt, closedError, ErrorContext, interfaceRemovedError, withContext } from '../errors';
import { eventMap, EmitterEvents, Events, listenerThrew, TypedEmitter } from '../core/events';
import { AddressCache } from '../codec/ipv6addr';
import { Outbox, SendControl, SendPromise, SendWaiter, SingleSend, UnobservedFailure, WaitingSends } from '../core/outbox';
import { AsyncQueue, closeSignal, endAll } from '../core/queue';
import type { InterfaceRef } from '../links/types';
import { directoryOf, Follower, Following, InterfaceDirectory } from '../links/directory';
import { layouts, native, NativeSocket } from '../core/native';
import { RecordBatch } from '../core/records';
import { Family, netnsPath, OptionKeyList, validateInteger, validateInterfaceName, validateOptionalObject, validateSignal, validateString } from '../validate';

/** Options every socket class takes. */
export interface SocketOptions {
  /** Open the socket inside this network namespace (a name under /run/netns, or a path). */
  netns?: string;
  /**
   * Bind the socket to this device (SO_BINDTODEVICE): receive only from it, send only on it.
   * If the device is removed, the socket emits 'error' (code ENODEV): bound to a device
   * that no longer exists it can neither send nor receive, and it says so rather than go
   * silent.
   */
  device?: string;
  /** Aborting closes the socket. */
  signal?: AbortSignal;
  /** Most datagrams read per system call (recvmmsg). Default 32. */
  batchSize?: number;
  /** Largest datagram accepted whole; longer ones arrive truncated (info.truncated). Default 65535. */
  maxMessageSize?: number;
  /** SO_RCVBUF in bytes. */
  receiveBufferSize?: number;
  /** SO_SNDBUF in bytes. */
  sendBufferSize?: number;
  /** How many received items an async iterator buffers before reading pauses. Default 1024. */
  iteratorHighWaterMark?: number;
}

/** The keys of SocketOptions, for the option lists of the classes (see optionKeys()). */
export const SOCKET_OPTION_KEYS: OptionKeyList<SocketOptions> = {
  netns: true,
  device: true,
  signal: true,
  batchSize: true,
  maxMessageSize: true,
  receiveBufferSize: true,
  sendBufferSize: true,
  iteratorHighWaterMark: true,
};

/** Events every socket emits; each class adds its own (its receive event first). */
export interface SocketEvents extends EmitterEvents {
  /** A failure of the socket (a failed read, the removal of its `device`). */
  error: [err: Error];
  /** The socket closed: emitted once, after the fd was closed. */
  close: [];
  /** The backpressure queue emptied: every send waiting in it has left. */
  drain: [];
  /** A problem that does not stop the socket; without a listener it becomes a process warning. */
  warning: [warning: Error];
}

/** Kernel identity of the socket: what the native constructor needs. */
export interface SocketKind {
  family: Family;
  type: number;
  protocol: number;
}

/** Counters a socket keeps about what it received. */
export interface SocketStats {
  /**
   * Datagrams or packets delivered to JavaScript (to a listener or an iterator, or dropped
   * on purpose and counted as such by the class). Datagrams a read took from the kernel
   * after the last reader went away are not counted until a new reader gets them.
   */
  received: number;
  /**
   * Datagrams the kernel dropped because the receive buffer was full: its drop counter
   * (SO_MEMINFO), read when asked, so drops show even if nothing arrived after them.
   */
  kernelDrops: number;
  /** Datagrams longer than maxMessageSize (delivered truncated). */
  truncated: number;
}

// What subclasses need to describe a send.
export { NO_CONTROL, type SendControl } from '../core/outbox';

/**
 * Base class. `M` is what the async iterator yields; `messageEvent` names the event that
 * carries it ('message' for datagram sockets, 'packet' for router-alert taps).
 */
export abstract class BaseSocket<M> extends TypedEmitter implements AsyncIterable<M> {
  // Type only, as in every class: its events. Within a class, `this` may be any subclass,
  // whose events TypeScript cannot list, so the class emits through its own type
  // (`(this as BaseSocket<M>).emit(...)`): a cast that costs nothing.
  /** @internal */
  declare readonly [eventMap]: Events<SocketEvents>;
  /** Address family of the socket: 6 or 4. */
  readonly family: Family;
  /** The namespace the socket lives in, as given. */
  readonly netns: string | undefined;
  /** Receive counters. */
  readonly stats: SocketStats = this.countersWith({});

  protected readonly handle: NativeSocket;
  /** The interfaces of the socket's namespace: names, indexes, zones, removals. */
  protected readonly directory: InterfaceDirectory;
  protected readonly sourceCache = new AddressCache();
  protected readonly destinationCache = new AddressCache();

  private readonly batchSize: number;
  private readonly slotSize: number;
  private readonly highWaterMark: number;
  /** Datagrams sent in this tick: they leave together in one sendmmsg at its end. */
  private readonly outbox = new Outbox();
  private readonly flushOutbox = (): void => this.flush();
  /** Who waits for each datagram in the native backpressure queue, by its id. */
  private readonly waiting = new WaitingSends();
  /** sendBatch's result for a datagram that went to the backpressure queue. */
  private readonly sendQueued = layouts().sendQueued;
  private readonly queues = new Set<AsyncQueue<M>>();
  /** The reader of every batch this socket receives (one, reused). */
  private readonly records = new RecordBatch();
  /** Inside dispatch(): a close() from a listener leaves the batch readable until it returns. */
  private dispatching = false;
  private receiving = false;
  private paused = false;
  /**
   * Datagrams a read took from the kernel after the socket's last reader went away (a
   * once() listener fired, a `for await` broke out): kept in order for the next reader,
   * as the kernel keeps what it was not asked for.
   */
  private heldRecords: { count: number; data: Buffer; meta: Buffer } | undefined;
  private readonly deliverHeld = (): void => this.releaseHeld();
  private closing: Promise<void> | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => void this.close();
  /**
   * The index of the `device` option's interface (0 for none): the kernel's own, so a rename
   * or a new device of the same name does not confuse it.
   */
  protected readonly deviceIndex: number = 0;
  /** The `device` option's interface, while its removal is watched for. */
  private boundDevice: { iface: InterfaceRef; watch: Following } | undefined;
  /** Names an interface in the socket's own namespace (SIOCGIFNAME), for the directory's last resort. */
  private readonly askKernel = (index: number): string => (this.closed ? '' : this.handle.interfaceName(index));

  protected constructor(
    kind: SocketKind,
    options: SocketOptions,
    private readonly messageEvent: string,
  ) {
    super();
    const opts = validateOptionalObject<SocketOptions>(options, 'options');
    this.family = kind.family;
    this.netns = opts.netns;
    const ns = netnsPath(opts.netns);
    const device = opts.device === undefined ? null : validateInterfaceName(validateString(opts.device, 'options.device'), 'options.device');
    this.signal = validateSignal(opts.signal, 'options.signal');
    this.batchSize = opts.batchSize === undefined ? 32 : validateInteger(opts.batchSize, 'options.batchSize', 1, 1024);
    this.slotSize = opts.maxMessageSize === undefined ? 65535 : validateInteger(opts.maxMessageSize, 'options.maxMessageSize', 1, 16 * 1024 * 1024);
    this.highWaterMark = opts.iteratorHighWaterMark === undefined ? 1024 : validateInteger(opts.iteratorHighWaterMark, 'options.iteratorHighWaterMark', 1, 1 << 24);
    const rcvbuf = opts.receiveBufferSize === undefined ? undefined : validateInteger(opts.receiveBufferSize, 'options.receiveBufferSize', 1, 0x7fffffff);
    const sndbuf = opts.sendBufferSize === undefined ? undefined : validateInteger(opts.sendBufferSize, 'options.sendBufferSize', 1, 0x7fffffff);
    this.directory = directoryOf(opts.netns);

    const context: ErrorContext = { netns: opts.netns };
    if (device !== null) context.interface = device;
    this.handle = attempt(context, () => new (native().Socket)(kind.family, kind.type, kind.protocol, ns, device));
    this.handle.onsent = (results) => this.onSent(results);
    this.handle.onmessages = (count, data, meta, error) => this.onMessages(count, data, meta, error);
    try {
      const c = native().constants;
      if (rcvbuf !== undefined) this.setInt(c.SOL_SOCKET, c.SO_RCVBUF, rcvbuf, 'SO_RCVBUF');
      if (sndbuf !== undefined) this.setInt(c.SOL_SOCKET, c.SO_SNDBUF, sndbuf, 'SO_SNDBUF');
      if (device !== null) {
        this.deviceIndex = this.getInt(c.SOL_SOCKET, c.SO_BINDTOIFINDEX, 'SO_BINDTOIFINDEX');
        this.watchDevice(device);
      }
    } catch (err) {
      this.boundDevice?.watch.cancel();
      this.handle.close();
      throw err;
    }

    // Reading starts when somebody listens: until then datagrams wait in the kernel's
    // buffer, and a socket nobody reads from can be garbage-collected (its fd closed).
    // And it stops when the last reader goes: a socket nobody listens to is collectable again.
    (this as BaseSocket<M>).on('newListener', (event) => {
      if (this.isReceiveEvent(event)) this.startReceiving();
    });
    (this as BaseSocket<M>).on('removeListener', (event) => {
      if (this.isReceiveEvent(event)) this.stopReceivingIfUnread();
    });
    if (this.signal) {
      if (this.signal.aborted) process.nextTick(this.onAbort);
      else this.signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Sends waiting in the native queue because the kernel's send buffer was full. */
  get queuedSends(): number {
    return this.closed ? 0 : this.handle.queued;
  }

  /** The local address, port and family. */
  address(): { address: string; port: number; family: Family } {
    this.assertOpen();
    const a = attempt({}, () => this.handle.localAddress());
    return { address: this.withZone(a.address, a.scopeId), port: a.port, family: this.family };
  }

  /** Keep the event loop alive while this socket is open (the default). */
  ref(): this {
    if (!this.closed) this.handle.ref();
    return this;
  }

  /** Let the process exit even while this socket is open. */
  unref(): this {
    if (!this.closed) this.handle.unref();
    return this;
  }

  /**
   * Closes the socket: stops reading, closes the fd (which drops every membership the
   * kernel holds for it), fails queued sends, ends iterators, then emits 'close' and
   * resolves. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    // Sends made before close() in the same tick still leave.
    this.flush();
    const ending = closeSignal(this);
    this.closing = ending.promise;
    try {
      this.beforeClose();
    } finally {
      this.boundDevice?.watch.cancel();
      this.boundDevice = undefined;
      this.dropsAtClose = this.readKernelDrops();
      this.handle.close();
      this.releaseHandle();
      this.receiving = false;
      this.heldRecords = undefined;
      this.signal?.removeEventListener('abort', this.onAbort);
      this.waiting.abandonAll(closedError('socket'));
      endAll(this.queues);
      ending.announce();
    }
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * After the native close(): the handle no longer reaches this object (its callbacks
   * would keep the whole socket alive for as long as the handle, which the garbage
   * collector frees late, being a wrapped native object), and nothing here keeps the
   * records buffer the native side just gave back.
   */
  private releaseHandle(): void {
    this.handle.onmessages = undefined;
    this.handle.onsent = undefined;
    if (!this.dispatching) this.records.clear();
  }

  /** Yields every received item until the socket closes. Reading pauses while the consumer lags. */
  [Symbol.asyncIterator](): AsyncIterator<M> {
    const q = new AsyncQueue<M>();
    if (this.closed) q.end();
    else {
      this.queues.add(q);
      this.startReceiving();
    }
    return q.iterator(
      () => {
        this.queues.delete(q);
        this.stopReceivingIfUnread();
        this.maybeResume();
      },
      () => this.maybeResume(),
    );
  }

  /** Watches for the removal of the `device` the socket is bound to. */
  private watchDevice(device: string): void {
    const c = native().constants;
    this.boundDevice = { iface: { index: this.deviceIndex, name: device }, watch: this.directory.follow(this, BaseSocket.deviceFollower) };
    // Removed between SO_BINDTODEVICE and the watcher's start, the device would never be
    // reported: the kernel names the bound index's device for SO_BINDTODEVICE, ENODEV if none.
    try {
      this.handle.getBuffer(c.SOL_SOCKET, c.SO_BINDTODEVICE, 16);
    } catch {
      process.nextTick(() => this.deviceRemoved(this.boundDevice?.iface));
    }
  }

  // Static, so that the directory does not hold the socket (see InterfaceDirectory.follow).
  private static readonly deviceFollower: Follower<BaseSocket<unknown>> = {
    removed: (sock, iface) => sock.deviceRemoved(iface),
  };

  private deviceRemoved(iface: InterfaceRef | undefined): void {
    const bound = this.boundDevice;
    if (bound === undefined || iface === undefined || iface.index !== bound.iface.index || this.closed) return;
    bound.watch.cancel();
    this.boundDevice = undefined;
    // Named as it was last known: it may have been renamed since the socket opened.
    const removed = { index: bound.iface.index, name: iface.name || bound.iface.name };
    (this as BaseSocket<M>).emit('error', interfaceRemovedError(removed, this.netns, 'this socket is bound to it (device option) and can neither send nor receive any more; close it'));
  }

  /**
   * Names interfaces for what the socket reports (arrival interfaces, zones): from the
   * directory, which asks this socket's own namespace as a last resort. `ref()` gives one
   * shared frozen object per interface; neither throws.
   */
  protected readonly names = {
    ref: (index: number): InterfaceRef => this.directory.ref(index, this.askKernel),
    name: (index: number): string => this.directory.ref(index, this.askKernel).name,
  };

  /** True for an event whose listeners receive datagrams (reading starts with the first). */
  protected isReceiveEvent(event: string | symbol): boolean {
    return event === this.messageEvent;
  }

  /** Somebody listens to a receive event (a lagging iterator alone does not keep reading). */
  protected hasReceiveListeners(): boolean {
    return this.listenerCount(this.messageEvent) > 0;
  }

  /** Subclass hook: undo bookkeeping before the fd closes (must not throw for closed kernel state). */
  protected beforeClose(): void {}

  /**
   * Subclass hook: turn one native batch into events, reading it through `records` (valid
   * only during the call). Whether the native side may reuse the batch's data is for
   * `records` to say: its accessors that hand out views of the data mark it kept.
   */
  protected abstract dispatch(records: RecordBatch): void;

  /**
   * The loop every dispatcher shares: calls `each(i)` for each record in order while the
   * socket reads. A listener that throws costs only its own call: the error is raised on the
   * next tick (listenerThrew) and delivery resumes with the next record. The try wraps the
   * loop, not each record, so it costs nothing until a listener throws. Records left when
   * the last reader went away (or the socket closed) are kept for the next reader
   * (holdRest); returns true when every record went to `each`.
   */
  protected forEachRecord(records: RecordBatch, each: (i: number) => void): boolean {
    const count = records.count;
    let i = 0;
    while (i < count) {
      try {
        for (; i < count; i++) {
          if (!this.receiving) break;
          each(i);
        }
        break;
      } catch (err) {
        listenerThrew(err);
        i++;
      }
    }
    if (i < count) {
      this.holdRest(i, records);
      return false;
    }
    return true;
  }

  protected assertOpen(): void {
    if (this.closed) throw closedError('socket');
  }

  /** Starts reading from the kernel (idempotent); what a read kept for later comes first. */
  protected startReceiving(): void {
    if (this.receiving || this.closed) return;
    this.receiving = true;
    // On the next tick: 'newListener' runs before the listener is added.
    if (this.heldRecords !== undefined) process.nextTick(this.deliverHeld);
    else this.readFromKernel();
  }

  /** The last reader went away: stop reading, so datagrams wait in the kernel again. */
  private stopReceivingIfUnread(): void {
    if (!this.receiving || this.closed || this.queues.size > 0 || this.hasReceiveListeners()) return;
    this.receiving = false;
    this.paused = false;
    this.handle.stopReceive();
  }

  /**
   * A dispatch loop found no reader left at record `from`: keeps the rest for the next
   * reader (and out of stats.received until then). The records are copied (the native side
   * reuses them for its next read); the data is marked kept, so it is not reused.
   */
  private holdRest(from: number, records: RecordBatch): void {
    if (this.closed || from >= records.count) return;
    this.stats.received -= records.count - from;
    // Nothing is held here: reading stopped when the last reader went, and releaseHeld()
    // takes what was held before it delivers it.
    this.heldRecords = records.rest(from);
  }

  private releaseHeld(): void {
    const held = this.heldRecords;
    if (held === undefined || !this.receiving || this.closed) return;
    this.heldRecords = undefined;
    this.onMessages(held.count, held.data, held.meta);
    if (this.receiving && !this.closed) this.readFromKernel();
  }

  private readFromKernel(): void {
    this.paused = false;
    this.handle.startReceive(this.batchSize, this.slotSize, this.deviceIndex);
  }

  /** Hands a received item to async iterators. */
  protected pushToIterators(item: M): void {
    if (this.queues.size === 0) return;
    let full = false;
    for (const q of this.queues) if (q.push(item) >= this.highWaterMark) full = true;
    if (full && !this.paused && !this.hasReceiveListeners()) {
      // Nobody but a lagging iterator reads: leave the rest in the kernel's buffer.
      this.paused = true;
      this.handle.stopReceive();
    }
  }

  protected get hasIterators(): boolean {
    return this.queues.size > 0;
  }

  /** setsockopt(int) with the option's name in any error. */
  protected setInt(level: number, name: number, value: number, option: string): void {
    attempt({ option, netns: this.netns }, () => this.handle.setInt(level, name, value));
  }

  protected getInt(level: number, name: number, option: string): number {
    return attempt({ option, netns: this.netns }, () => this.handle.getInt(level, name));
  }

  /** Appends `%zone` to a link-local IPv6 address. */
  protected withZone(address: string, scopeId: number): string {
    if (scopeId === 0 || this.family !== 6) return address;
    const name = this.names.name(scopeId);
    return `${address}%${name || scopeId}`;
  }

  /** Counts a truncation if record `i`'s datagram was cut (once per record). */
  protected countRecord(records: RecordBatch, i: number): void {
    if (records.truncated(i)) this.stats.truncated++;
  }

  /**
   * The receive counters with a subclass's own. kernelDrops is a getter that asks the
   * kernel, which costs the receive path nothing (a per-datagram SO_RXQ_OVFL control
   * message would, for every datagram after the first drop) and is never behind.
   */
  protected countersWith<T extends object>(more: T): SocketStats & T {
    const counters = { received: 0, truncated: 0, ...more };
    Object.defineProperties(counters, {
      kernelDrops: { enumerable: true, get: () => (this.closed ? this.dropsAtClose : this.readKernelDrops()) },
      // console.log shows the number, not [Getter].
      [inspect.custom]: { value: (): object => ({ ...counters }) },
    });
    return counters as SocketStats & T;
  }

  /** The socket's drop counter, SK_MEMINFO_DROPS of SO_MEMINFO (Linux 4.12). */
  private readKernelDrops(): number {
    const c = native().constants;
    try {
      // u32 fields in host byte order.
      const info = this.handle.getBuffer(c.SOL_SOCKET, c.SO_MEMINFO, c.SK_MEMINFO_VARS * 4);
      const at = c.SK_MEMINFO_DROPS * 4;
      return os.endianness() === 'LE' ? info.readUInt32LE(at) : info.readUInt32BE(at);
    } catch {
      return this.dropsAtClose;
    }
  }

  /** kernelDrops as it was when the socket closed. */
  private dropsAtClose = 0;

  /**
   * Where a failed send goes when nobody handles its promise (see SendPromise): 'error',
   * as node:dgram does (without a listener, an unhandled 'error' event). A closed socket
   * emits nothing more: a send it abandoned at close() fails only its promise.
   */
  protected readonly unobservedSendFailure: UnobservedFailure = (err) => {
    if (!this.closed) (this as BaseSocket<M>).emit('error', err);
  };

  /** The promise of a send that failed before it was queued (bad arguments, closed). */
  protected failedSend<T>(err: unknown): SendPromise<T> {
    return SendPromise.failed<T>(err, this.unobservedSendFailure);
  }

  /** `promise` (a send's outcome computed some other way) with the same failure routing. */
  protected trackedSend<T>(promise: Promise<T>): SendPromise<T> {
    return SendPromise.adopt(promise, this.unobservedSendFailure);
  }

  /**
   * Sends one datagram; resolves with the bytes sent. When the kernel's buffer is full the
   * datagram waits in order in the native queue, and the promise resolves once it leaves.
   */
  protected sendNative(data: Buffer, address: string | null, port: number, scopeId: number, ctl: SendControl, context: ErrorContext): SendPromise<number>;
  /** The same, resolving with `outcome(bytes sent)` instead of the byte count. */
  protected sendNative<T>(data: Buffer, address: string | null, port: number, scopeId: number, ctl: SendControl, context: ErrorContext, outcome: (bytes: number) => T): SendPromise<T>;
  protected sendNative<T>(data: Buffer, address: string | null, port: number, scopeId: number, ctl: SendControl, context: ErrorContext, outcome?: (bytes: number) => T): SendPromise<T | number> {
    if (this.closed) return this.failedSend(closedError('socket'));
    const waiter = new SingleSend<T | number>(context, this.unobservedSendFailure, outcome);
    this.queueSend(data, address, port, scopeId, ctl, waiter, 0);
    return waiter.promise;
  }

  /**
   * Adds a datagram to this tick's batch. The first of a tick schedules one flush for all:
   * a loop of sends costs one sendmmsg, and one crossing into native code, not one each.
   */
  protected queueSend(data: Buffer, address: string | null, port: number, scopeId: number, ctl: SendControl, waiter: SendWaiter, slot: number): void {
    if (this.outbox.count === 0) queueMicrotask(this.flushOutbox);
    this.outbox.add(data, address, port, scopeId, ctl, waiter, slot);
  }

  /** How many datagrams this tick's batch holds, for unsendAfter(). */
  protected get sendMark(): number {
    return this.outbox.count;
  }

  /** Takes back the datagrams queued since `mark` (a batch that failed validation half way). */
  protected unsendAfter(mark: number): void {
    this.outbox.truncate(mark);
  }

  /** Sends this tick's datagrams (one sendmmsg) and tells their waiters how each went. */
  private flush(): void {
    const box = this.outbox;
    if (box.count === 0) return;
    // A view detached or resized since its send() call fails alone, before anything leaves.
    box.dropChanged();
    const count = box.count;
    let failure: Error | undefined = this.closed ? closedError('socket') : undefined;
    if (failure === undefined && count > 0) {
      try {
        this.handle.sendBatch(box.data, box.plan, box.refs, count);
      } catch (err) {
        failure = withContext(err, { netns: this.netns }) as Error;
      }
    }
    const { waiters, slots } = box;
    const queued = this.sendQueued;
    for (let i = 0; i < count; i++) {
      if (failure !== undefined) {
        waiters[i].abandon(slots[i], failure);
        continue;
      }
      const r = box.result(i);
      if (r === queued) this.waiting.push(box.id(i), waiters[i], slots[i]);
      else waiters[i].settle(slots[i], r);
    }
    box.clear();
  }

  /** Results of queued sends, as (id, result) pairs. */
  private onSent(results: Int32Array): void {
    this.waiting.settle(results);
    if (this.waiting.length === 0) (this as BaseSocket<M>).emit('drain');
  }

  /**
   * One native batch. Returns the batch's `released` (no view of its data outlived the
   * call) to the native side, which then writes the next batch over the same bytes.
   */
  private onMessages(count: number, data: Buffer | undefined, meta: Buffer | undefined, error?: Error): boolean {
    if (error) {
      (this as BaseSocket<M>).emit('error', withContext(error, { netns: this.netns }) as Error);
      return false;
    }
    if (data === undefined || meta === undefined || this.closed) return false;
    this.stats.received += count;
    const records = this.records.load(count, data, meta);
    this.dispatching = true;
    try {
      this.dispatch(records);
    } finally {
      this.dispatching = false;
    }
    const released = records.released;
    if (this.closed) records.clear();
    return released;
  }

  private maybeResume(): void {
    if (!this.paused || this.closed) return;
    for (const q of this.queues) if (q.length >= this.highWaterMark) return;
    this.readFromKernel();
  }
}
