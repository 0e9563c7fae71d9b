// The FIFO behind the async iterators and the waiting sends: order kept across the
// compactions that keep it O(1) per item.
import { AsyncQueue, Fifo } from '../../lib/core/queue';

describe('Fifo', () => {
  test('keeps order through interleaved pushes and shifts, across compactions', () => {
    const q = new Fifo<number>();
    const out: number[] = [];
    let next = 0;
    // Uneven rounds so that the read index crosses the compaction threshold mid-array.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 300; i++) q.push(next++);
      for (let i = 0; i < 250; i++) out.push(q.shift() as number);
    }
    expect(q.length).toBe(50 * 50);
    out.push(...q.drain());
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(q.length).toBe(0);
    expect(q.shift()).toBeUndefined();
  });

  test('an empty queue shifts undefined and drains nothing; it works again after', () => {
    const q = new Fifo<string>();
    expect(q.shift()).toBeUndefined();
    expect(q.drain()).toEqual([]);
    q.push('a');
    q.push('b');
    expect(q.shift()).toBe('a');
    expect(q.drain()).toEqual(['b']);
    q.push('c');
    expect([q.length, q.shift(), q.length]).toEqual([1, 'c', 0]);
  });
});

describe('AsyncQueue', () => {
  test('10,000 items kept while nobody reads come out in order, then end() finishes', async () => {
    const q = new AsyncQueue<number>();
    for (let i = 0; i < 10_000; i++) q.push(i);
    const it = q.iterator(() => undefined);
    const got: number[] = [];
    for (let i = 0; i < 10_000; i++) got.push((await it.next()).value as number);
    expect(got).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
    const pending = it.next();
    q.end();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(q.push(1)).toBe(0);
  });
});
