/**
 * The send path's batching: every datagram sent in one tick waits in an Outbox, then all of
 * them leave in one native call (one sendmmsg), straight from the caller's buffers. A
 * SendWaiter hears how each datagram went: one send()'s promise, or one sendMany()'s.
 * @packageDocumentation
 */
import { ErrorContext, stateError, systemError, withContext } from '../errors';
import { SendPlan } from './native';
import { Fifo } from './queue';
import { byteLengthOf } from '../validate';

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
export class SingleSend implements SendWaiter {
  readonly promise: Promise<number>;
  private resolve!: (bytes: number) => void;
  private reject!: (err: Error) => void;

  constructor(private readonly context: ErrorContext) {
    this.promise = new Promise<number>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  settle(_slot: number, result: number): void {
    if (result >= 0) this.resolve(result);
    else this.reject(withContext(errnoError(result), this.context) as Error);
  }

  abandon(_slot: number, err: Error): void {
    this.reject(err);
  }
}

/**
 * The waiter of a sendMany(): one promise for all of its datagrams, resolved with the bytes
 * of each once every one has gone, or rejected with the failure of the earliest that failed
 * (the others still leave). `contextOf` describes a datagram for its error, only if one fails.
 */
export class SendGroup implements SendWaiter {
  readonly promise: Promise<number[]>;
  private resolve!: (bytes: number[]) => void;
  private reject!: (err: Error) => void;
  private readonly results: number[];
  private left: number;
  private failedSlot = Infinity;
  private failure: Error | undefined;

  constructor(
    count: number,
    private readonly contextOf: (slot: number) => ErrorContext,
  ) {
    this.results = new Array<number>(count).fill(0);
    this.left = count;
    this.promise = new Promise<number[]>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (count === 0) this.resolve(this.results);
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
    if (this.failure !== undefined) this.reject(this.failure);
    else this.resolve(this.results);
  }
}

/**
 * Who waits for each datagram of the native backpressure queue, oldest first. The native
 * queue is first in, first out and reports its datagrams in that order (onsent), so the
 * n-th result belongs to the n-th waiter here; each is taken in O(1) (see Fifo).
 */
export class WaitingSends {
  private readonly waiters = new Fifo<SendWaiter>();
  private readonly slots = new Fifo<number>();

  /** Sends still waiting. */
  get length(): number {
    return this.waiters.length;
  }

  push(waiter: SendWaiter, slot: number): void {
    this.waiters.push(waiter);
    this.slots.push(slot);
  }

  /** Settles the oldest waiting sends with `results`, in order; returns how many it settled. */
  settle(results: Int32Array): number {
    const n = Math.min(results.length, this.length);
    // One waiter that throws (a sendMany's error context reads the caller's objects) must not
    // leave the others of the batch waiting for results that were already delivered.
    let thrown: { err: unknown } | undefined;
    for (let i = 0; i < n; i++) {
      const waiter = this.waiters.shift() as SendWaiter;
      const slot = this.slots.shift() as number;
      try {
        waiter.settle(slot, results[i]);
      } catch (err) {
        thrown ??= { err };
      }
    }
    if (thrown !== undefined) throw thrown.err;
    return n;
  }

  /** Fails every waiting send with `err` (the socket closed) and empties the queue. */
  abandonAll(err: Error): void {
    const waiters = this.waiters.drain();
    const slots = this.slots.drain();
    for (let i = 0; i < waiters.length; i++) waiters[i].abandon(slots[i], err);
  }
}

/**
 * The datagrams of this tick, in the form the native sendBatch takes: the buffers, a plan
 * of SendPlan.fields int32 each, and the strings and headers the plan refers to. Arrays are
 * reused from tick to tick, so a steady stream of sends allocates nothing here.
 */
export class Outbox {
  /** Datagrams waiting. */
  count = 0;
  readonly data: Uint8Array[] = [];
  plan = new Int32Array(SendPlan.fields * 64);
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

  add(data: Uint8Array, address: string | null, port: number, scopeId: number, ctl: SendControl, waiter: SendWaiter, slot: number): void {
    const i = this.count;
    const at = i * SendPlan.fields;
    if (at + SendPlan.fields > this.plan.length) {
      const grown = new Int32Array(this.plan.length * 2);
      grown.set(this.plan);
      this.plan = grown;
    }
    const plan = this.plan;
    plan[at + SendPlan.addressRef] = address === null ? -1 : this.addressRef(address);
    plan[at + SendPlan.port] = port;
    plan[at + SendPlan.scopeId] = scopeId;
    plan[at + SendPlan.ifindex] = ctl.ifindex;
    plan[at + SendPlan.sourceRef] = ctl.source === null ? -1 : this.sourceRef(ctl.source);
    plan[at + SendPlan.hopLimit] = ctl.hopLimit;
    plan[at + SendPlan.tclass] = ctl.trafficClass;
    plan[at + SendPlan.hopOptsRef] = ctl.hopByHop === null ? -1 : this.refs.push(ctl.hopByHop) - 1;
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
        this.plan.copyWithin(kept * SendPlan.fields, i * SendPlan.fields, (i + 1) * SendPlan.fields);
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
