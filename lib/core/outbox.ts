/**
 * The send path's batching: every datagram sent in one tick waits in an Outbox, then all of
 * them leave in one native call (one sendmmsg), straight from the caller's buffers. A
 * SendWaiter hears how each datagram went: one send()'s promise, or one sendMany()'s.
 * Datagrams that wait in the native backpressure queue carry an id; their results come
 * back as (id, result) pairs and WaitingSends finds each one's waiter by it.
 * @packageDocumentation
 */
import { ErrorContext, stateError, systemError, withContext } from '../errors';
import { layouts, SendPlanLayout } from './native';
import { byteLengthOf } from '../validate';

/**
 * Where the failure of a send goes when nobody handles its promise: the socket's 'error'
 * event (see SendPromise).
 */
export type UnobservedFailure = (err: Error) => void;

function ignore(): void {}

const promiseThen = Promise.prototype.then;

/**
 * The promise a send returns. It records whether anybody attached a handler (`then`,
 * `catch`, `finally`, `await`, Promise.all ...: each goes through `then`). When a send fails
 * and nobody has by the next tick after the failure is known, the error goes to
 * `unobserved` (the socket's 'error' event) instead of becoming an unhandled rejection: a
 * daemon that fires a send without awaiting it survives an ENETUNREACH as it would with
 * node:dgram, and without an 'error' listener it stops as node:dgram's does (an unhandled
 * 'error' event). The promise still rejects for whoever attaches later. Promises derived
 * from it (`.then(...)`) are plain promises.
 *
 * Kept cheap, as every send makes one: its fields are set in the constructor (one shape),
 * `then` calls the built-in directly, and the species is a data property.
 */
export class SendPromise<T> extends Promise<T> {
  /** A handler was attached. */
  private observed: boolean;
  /** Where a failure goes that nobody handles. */
  private unobserved: UnobservedFailure;
  private resolveNow: (value: T) => void;
  private rejectNow: (err: unknown) => void;

  constructor(executor: (resolve: (value: T | PromiseLike<T>) => void, reject: (reason?: unknown) => void) => void) {
    super(executor);
    this.observed = false;
    this.unobserved = ignore;
    this.resolveNow = ignore;
    this.rejectNow = ignore;
  }

  override then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.observed = true;
    return promiseThen.call(this, onfulfilled, onrejected) as Promise<R1 | R2>;
  }

  /** A pending send's promise; `unobserved` gets a failure nobody handles. */
  static pending<T>(unobserved: UnobservedFailure): SendPromise<T> {
    let resolve: (value: T) => void = ignore;
    let reject: (err: unknown) => void = ignore;
    const promise = new SendPromise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.unobserved = unobserved;
    promise.resolveNow = resolve;
    promise.rejectNow = reject;
    return promise;
  }

  /** The send went: resolves the promise. */
  succeed(value: T): void {
    this.resolveNow(value);
  }

  /** The send failed: rejects the promise, and routes the error if nobody handles it. */
  fail(err: unknown): void {
    if (!this.observed) {
      // Handled here, so that Node does not call it unhandled; whoever attaches a handler
      // later still gets the rejection.
      promiseThen.call(this, undefined, ignore);
      process.nextTick(() => {
        if (!this.observed) this.unobserved(err as Error);
      });
    }
    this.rejectNow(err);
  }

  /** `promise` as a SendPromise: its failure, if nobody handles it, goes to `unobserved`. */
  static adopt<T>(promise: Promise<T>, unobserved: UnobservedFailure): SendPromise<T> {
    const p = SendPromise.pending<T>(unobserved);
    promise.then(
      (value) => p.succeed(value),
      (err: unknown) => p.fail(err),
    );
    return p;
  }

  /** A send that failed before anything was queued (bad arguments, a closed socket). */
  static failed<T>(err: unknown, unobserved: UnobservedFailure): SendPromise<T> {
    const p = SendPromise.pending<T>(unobserved);
    p.fail(err);
    return p;
  }
}
// Promises derived from a SendPromise (then, catch, finally) are plain ones. A data property,
// not a getter: every then() looks it up.
Object.defineProperty(SendPromise, Symbol.species, { value: Promise });

/** Per-packet control data for a send, already resolved to kernel values. */
export interface SendControl {
  ifindex: number;
  source: string | null;
  hopLimit: number;
  trafficClass: number;
  hopByHop: Buffer | null;
}

export const NO_CONTROL: SendControl = Object.freeze({ ifindex: -1, source: null, hopLimit: -1, trafficClass: -1, hopByHop: null });

/** Told how its datagrams went. `slot` says which of the waiter's datagrams. */
export interface SendWaiter {
  /** The datagram left (`result` bytes) or the kernel refused it (a negative errno). */
  settle(slot: number, result: number): void;
  /** It never reached the kernel (the socket closed, the batch could not be handed over). */
  abandon(slot: number, err: Error): void;
}

/** The waiter of one send(): its promise. */
const bytesSent = (bytes: number): number => bytes;

export class SingleSend<T = number> implements SendWaiter {
  readonly promise: SendPromise<T>;

  /**
   * `outcome` turns the bytes sent into what the promise resolves with (a forward's
   * result): applied when the send settles, so a caller that reports something other than
   * the byte count costs no second promise per datagram.
   */
  constructor(
    private readonly context: ErrorContext,
    unobserved: UnobservedFailure,
    private readonly outcome: (bytes: number) => T = bytesSent as (bytes: number) => T,
  ) {
    this.promise = SendPromise.pending<T>(unobserved);
  }

  settle(_slot: number, result: number): void {
    if (result < 0) {
      this.promise.fail(withContext(errnoError(result), this.context));
      return;
    }
    let value: T;
    try {
      value = this.outcome(result);
    } catch (err) {
      this.promise.fail(err);
      return;
    }
    this.promise.succeed(value);
  }

  abandon(_slot: number, err: Error): void {
    this.promise.fail(err);
  }
}

/**
 * The waiter of a sendMany(): one promise for all of its datagrams, resolved with the bytes
 * of each once every one has gone, or rejected with the failure of the earliest that failed
 * (the others still leave). `contextOf` describes a datagram for its error, only if one fails.
 */
export class SendGroup implements SendWaiter {
  readonly promise: SendPromise<number[]>;
  private readonly results: number[];
  private left: number;
  private failedSlot = Infinity;
  private failure: Error | undefined;

  constructor(
    count: number,
    private readonly contextOf: (slot: number) => ErrorContext,
    unobserved: UnobservedFailure,
  ) {
    this.results = new Array<number>(count).fill(0);
    this.left = count;
    this.promise = SendPromise.pending<number[]>(unobserved);
    if (count === 0) this.promise.succeed(this.results);
  }

  settle(slot: number, result: number): void {
    if (result >= 0) this.results[slot] = result;
    else this.fail(slot, () => withContext(errnoError(result), this.contextOf(slot)) as Error);
    this.done();
  }

  abandon(slot: number, err: Error): void {
    this.fail(slot, () => err);
    this.done();
  }

  private fail(slot: number, error: () => Error): void {
    if (slot < this.failedSlot) {
      this.failedSlot = slot;
      this.failure = error();
    }
  }

  private done(): void {
    if (--this.left > 0) return;
    if (this.failure !== undefined) this.promise.fail(this.failure);
    else this.promise.succeed(this.results);
  }
}

/**
 * Who waits for each datagram of the native backpressure queue, by the id its plan entry
 * carried: the native side reports (id, result) pairs (onsent), so a result finds its
 * waiter whatever order either side keeps. A Map keeps insertion order, so abandonAll()
 * still fails them oldest first.
 */
export class WaitingSends {
  private readonly waiters = new Map<number, SendWaiter>();
  /** The slot of each waiting datagram whose slot is not 0 (sendMany's). */
  private readonly slots = new Map<number, number>();

  /** Sends still waiting. */
  get length(): number {
    return this.waiters.size;
  }

  push(id: number, waiter: SendWaiter, slot: number): void {
    this.waiters.set(id, waiter);
    if (slot !== 0) this.slots.set(id, slot);
  }

  /**
   * Settles the waiting sends named in `pairs` ((id, result) after each other); returns how
   * many it settled. An id nobody waits for (abandoned at close) is skipped.
   */
  settle(pairs: Int32Array): number {
    // One waiter that throws (a sendMany's error context reads the caller's objects) must not
    // leave the others of the batch waiting for results that were already delivered.
    let thrown: { err: unknown } | undefined;
    let settled = 0;
    for (let k = 0; k + 1 < pairs.length; k += 2) {
      const id = pairs[k];
      const waiter = this.waiters.get(id);
      if (waiter === undefined) continue;
      this.waiters.delete(id);
      let slot = 0;
      if (this.slots.size > 0) {
        slot = this.slots.get(id) ?? 0;
        this.slots.delete(id);
      }
      settled++;
      try {
        waiter.settle(slot, pairs[k + 1]);
      } catch (err) {
        thrown ??= { err };
      }
    }
    if (thrown !== undefined) throw thrown.err;
    return settled;
  }

  /** Fails every waiting send with `err` (the socket closed) and empties the queue. */
  abandonAll(err: Error): void {
    const waiting = [...this.waiters];
    const slots = new Map(this.slots);
    this.waiters.clear();
    this.slots.clear();
    for (const [id, waiter] of waiting) waiter.abandon(slots.get(id) ?? 0, err);
  }
}

/**
 * The datagrams of this tick, in the form the native sendBatch takes: the buffers, a plan
 * of layouts.sendPlan.fields int32 each, and the strings and headers the plan refers to.
 * Arrays are reused from tick to tick, so a steady stream of sends allocates nothing here.
 * Each datagram gets an id of its own (in its plan entry), which names it if it has to wait
 * in the native queue.
 */
export class Outbox {
  /** Datagrams waiting. */
  count = 0;
  /** Where each field of a plan entry is (from the addon). */
  readonly layout: SendPlanLayout = layouts().sendPlan;
  readonly data: Uint8Array[] = [];
  plan = new Int32Array(this.layout.fields * 64);
  readonly refs: Array<string | Uint8Array> = [];
  readonly waiters: SendWaiter[] = [];
  readonly slots: number[] = [];
  /** Bytes each datagram spanned when it was sent: checked again just before it leaves. */
  private readonly lengths: number[] = [];
  // Consecutive datagrams mostly share their destination and source: one ref serves all.
  private lastAddress: string | undefined;
  private lastAddressRef = -1;
  private lastSource: string | undefined;
  private lastSourceRef = -1;
  /** The id of the next datagram: 0 .. 2^31-1, then around again. */
  private nextId = 0;

  add(data: Uint8Array, address: string | null, port: number, scopeId: number, ctl: SendControl, waiter: SendWaiter, slot: number): void {
    const i = this.count;
    const L = this.layout;
    const at = i * L.fields;
    if (at + L.fields > this.plan.length) {
      const grown = new Int32Array(this.plan.length * 2);
      grown.set(this.plan);
      this.plan = grown;
    }
    const plan = this.plan;
    plan[at + L.addressRef] = address === null ? -1 : this.addressRef(address);
    plan[at + L.port] = port;
    plan[at + L.scopeId] = scopeId;
    plan[at + L.ifindex] = ctl.ifindex;
    plan[at + L.sourceRef] = ctl.source === null ? -1 : this.sourceRef(ctl.source);
    plan[at + L.hopLimit] = ctl.hopLimit;
    plan[at + L.tclass] = ctl.trafficClass;
    plan[at + L.hopOptsRef] = ctl.hopByHop === null ? -1 : this.refs.push(ctl.hopByHop) - 1;
    plan[at + L.id] = this.nextId;
    this.nextId = (this.nextId + 1) & 0x7fffffff;
    this.data[i] = data;
    this.lengths[i] = byteLengthOf(data);
    this.waiters[i] = waiter;
    this.slots[i] = slot;
    this.count = i + 1;
  }

  /**
   * Takes out the datagrams whose bytes changed length since they were sent (their ArrayBuffer
   * was detached, or resized, in the same tick), failing each one's waiter with
   * ERR_INVALID_STATE: the native layer would send what the view spans now (0 bytes once
   * detached), which is not what the caller sent. One length read per datagram.
   */
  dropChanged(): void {
    const n = this.count;
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const now = byteLengthOf(this.data[i]);
      if (now !== this.lengths[i]) {
        this.waiters[i].abandon(this.slots[i], changedError(this.lengths[i], now));
        continue;
      }
      if (kept !== i) {
        const fields = this.layout.fields;
        this.plan.copyWithin(kept * fields, i * fields, (i + 1) * fields);
        this.data[kept] = this.data[i];
        this.lengths[kept] = this.lengths[i];
        this.waiters[kept] = this.waiters[i];
        this.slots[kept] = this.slots[i];
      }
      kept++;
    }
    this.truncate(kept);
  }

  /** Forgets the datagrams added after the first `count` (refs they added are harmless). */
  truncate(count: number): void {
    if (count >= this.count) return;
    this.count = count;
    this.data.length = count;
    this.lengths.length = count;
    this.waiters.length = count;
    this.slots.length = count;
  }

  /** Datagram `i`'s result after sendBatch: bytes, a negative errno, or layouts.sendQueued. */
  result(i: number): number {
    return this.plan[i * this.layout.fields + this.layout.result];
  }

  /** Datagram `i`'s id. */
  id(i: number): number {
    return this.plan[i * this.layout.fields + this.layout.id];
  }

  /** Empties the box after a flush (and lets go of the buffers it held). */
  clear(): void {
    this.truncate(0);
    this.refs.length = 0;
    this.lastAddress = undefined;
    this.lastSource = undefined;
  }

  private addressRef(address: string): number {
    if (address !== this.lastAddress) {
      this.lastAddress = address;
      this.lastAddressRef = this.refs.push(address) - 1;
    }
    return this.lastAddressRef;
  }

  private sourceRef(source: string): number {
    if (source !== this.lastSource) {
      this.lastSource = source;
      this.lastSourceRef = this.refs.push(source) - 1;
    }
    return this.lastSourceRef;
  }
}

/** A system error for a negative errno reported by a send, named as Node names its own. */
function errnoError(negErrno: number): Error {
  return systemError(negErrno, 'sendmsg');
}

/** A datagram whose bytes changed between send() and the moment it was to leave. */
function changedError(was: number, now: number): Error {
  const what = now === 0 ? 'its ArrayBuffer was detached (transferred) or shrunk' : 'its ArrayBuffer was resized';
  return stateError('ERR_INVALID_STATE', `Invalid state: the data of this send spanned ${was} bytes when it was sent and ${now} when it was to leave (${what} before the send went out); nothing was sent`);
}
