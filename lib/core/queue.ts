/**
 * The FIFO behind every async iterator of the library (sockets, interface watchers): items
 * pushed while nobody waits are kept in order; end() finishes the iterator. Also the end of
 * their close sequence, which both share: ending the iterators and announcing 'close'.
 * @internal
 * @packageDocumentation
 */
import type { EventEmitter } from 'node:events';

/**
 * First in, first out, O(1) amortised per item. A read index, not Array#shift: shift copies
 * the whole array once it is large, which made draining 100,000 items quadratic (seconds
 * with the event loop blocked). The taken part is cut off once it is at least half of the
 * array; a taken slot is cleared at once, so it keeps nothing alive.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, taken out; undefined when empty. */
  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Empties the queue and returns what it held, oldest first. */
  drain(): T[] {
    const rest = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}

export class AsyncQueue<T> {
  private readonly items = new Fifo<T>();
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private done = false;

  /** Items waiting to be taken. */
  get length(): number {
    return this.items.length;
  }

  /** Hands `item` to a waiting reader or keeps it; returns how many are kept. */
  push(item: T): number {
    if (this.done) return 0;
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w({ value: item, done: false });
    } else this.items.push(item);
    return this.items.length;
  }

  /** Drops what is kept and finishes the iterator (a pending next() resolves done). */
  end(): void {
    this.done = true;
    this.items.drain();
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
  }

  /** The iterator; `onTake` runs after an item is taken, `onReturn` when the reader stops early. */
  iterator(onReturn: () => void, onTake?: () => void): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length > 0) {
          const value = this.items.shift() as T;
          onTake?.();
          return Promise.resolve({ value, done: false });
        }
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
      return: () => {
        this.end();
        onReturn();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Ends every iterator fed from `queues` and forgets them: what close() does to iterators. */
export function endAll<T>(queues: Set<AsyncQueue<T>>): void {
  for (const q of queues) q.end();
  queues.clear();
}

/**
 * The promise close() returns and the end of every close sequence: `announce()` emits
 * 'close' on the next tick, then resolves the promise. The promise exists before the
 * teardown runs, so the object already counts as closed while it tears down.
 */
export function closeSignal(emitter: EventEmitter): { promise: Promise<void>; announce(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return {
    promise,
    announce: () =>
      process.nextTick(() => {
        emitter.emit('close');
        resolve();
      }),
  };
}
