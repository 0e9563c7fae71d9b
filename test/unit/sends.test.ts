// The send path's bookkeeping without a socket: queued sends found by id whatever the order
// of their results, the promise that routes a failure nobody handles, and the layouts the
// addon must export for lib/ to load.
import { checkLayouts, layouts } from '../../lib/core/native';
import { Outbox, NO_CONTROL, SendGroup, SendPromise, SingleSend, WaitingSends } from '../../lib/core/outbox';
import { RecordBatch } from '../../lib/core/records';

/** Waits until every tick and microtask queued so far has run. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const noContext = {};

describe('WaitingSends', () => {
  test('settles each waiting send by its id, in whatever order the results come', async () => {
    const waiting = new WaitingSends();
    const sends = [7, 8, 9].map((id) => {
      const s = new SingleSend(noContext, () => {
        throw new Error('no failure expected');
      });
      waiting.push(id, s, 0);
      return s.promise;
    });
    expect(waiting.length).toBe(3);
    // Out of order, with an id nobody waits for (abandoned at close) in the middle.
    expect(waiting.settle(Int32Array.from([9, 30, 12345, 1, 7, 10]))).toBe(2);
    expect(waiting.length).toBe(1);
    expect(waiting.settle(Int32Array.from([8, 20]))).toBe(1);
    expect(waiting.length).toBe(0);
    await expect(Promise.all(sends)).resolves.toEqual([10, 20, 30]);
  });

  test("keeps a sendMany's slots apart, and abandonAll() fails what is left, oldest first", async () => {
    const waiting = new WaitingSends();
    const group = new SendGroup(3, (slot) => ({ port: slot }), () => undefined);
    waiting.push(100, group, 0);
    waiting.push(101, group, 1);
    waiting.push(102, group, 2);
    waiting.settle(Int32Array.from([102, 3, 100, 1]));
    const order: number[] = [];
    const tracker = { settle: (): void => undefined, abandon: (slot: number): void => void order.push(slot) };
    waiting.push(5, tracker, 4);
    waiting.push(3, tracker, 2);
    waiting.abandonAll(new Error('closed'));
    expect(order).toEqual([4, 2]);
    await expect(group.promise).rejects.toThrow('closed');
    expect(waiting.length).toBe(0);
  });
});

describe('SendPromise', () => {
  test('a failure nobody handles goes to the sink, once, and the promise still rejects for a late handler', async () => {
    const routed: Error[] = [];
    const failure = new Error('ENETUNREACH');
    const p = SendPromise.failed<number>(failure, (err) => routed.push(err));
    await settled();
    expect(routed).toEqual([failure]);
    await expect(p).rejects.toBe(failure);
    expect(routed).toHaveLength(1);
  });

  test.each([
    ['await', (p: Promise<number>) => (async () => await p)().catch(() => 0)],
    ['catch', (p: Promise<number>) => p.catch(() => 0)],
    ['then', (p: Promise<number>) => p.then(() => 1, () => 0)],
    ['Promise.all', (p: Promise<number>) => Promise.all([p]).catch(() => 0)],
    ['try/await', async (p: Promise<number>) => {
      try {
        return await p;
      } catch {
        return 0;
      }
    }],
  ])('a handler attached with %s keeps the failure from the sink', async (_how, attach) => {
    const routed: Error[] = [];
    const promise = SendPromise.pending<number>((err) => routed.push(err));
    const reject = (err: Error): void => promise.fail(err);
    const handled = attach(promise);
    reject(new Error('refused'));
    await expect(handled).resolves.toBe(0);
    await settled();
    expect(routed).toEqual([]);
  });

  test('a handler attached in the same tick as the failure, after it, still counts', async () => {
    const routed: Error[] = [];
    const promise = SendPromise.pending<number>((err) => routed.push(err));
    const reject = (err: Error): void => promise.fail(err);
    reject(new Error('refused'));
    const handled = promise.catch(() => 'caught');
    await settled();
    expect(routed).toEqual([]);
    await expect(handled).resolves.toBe('caught');
  });

  test("adopt() and a SingleSend's outcome hand the result on with the same routing, and a handler keeps it from the sink", async () => {
    const routed: Error[] = [];
    const sink = (err: Error): number => routed.push(err);
    const failure = new Error('ENETUNREACH');
    const adopted = SendPromise.adopt(Promise.reject(failure), sink);
    const refused = new SingleSend<string>({ address: '[2001:db8::2]:9' }, sink, (n) => `sent ${n}`);
    refused.settle(0, -101);
    await settled();
    expect(routed).toHaveLength(2);
    // adopt() settles a turn later than a settled send: compare as a set.
    expect(routed).toContain(failure);
    expect(routed.find((err) => err !== failure)).toMatchObject({ code: 'ENETUNREACH', address: '[2001:db8::2]:9' });
    await expect(adopted).rejects.toBe(failure);
    await expect(refused.promise).rejects.toMatchObject({ code: 'ENETUNREACH' });
    // The outcome is applied when the send settles: one promise per datagram, not two.
    const sent = new SingleSend<string>({}, sink, (n) => `sent ${n}`);
    sent.settle(0, 21);
    await expect(sent.promise).resolves.toBe('sent 21');
    const thrower = new SingleSend<number>({}, sink, () => {
      throw new Error('outcome threw');
    });
    const caught = thrower.promise.catch((err: Error) => err.message);
    thrower.settle(0, 1);
    await expect(caught).resolves.toBe('outcome threw');
    await settled();
    expect(routed).toHaveLength(2);
  });

  test('a success never reaches the sink; derived promises are plain promises', async () => {
    const routed: Error[] = [];
    const promise = SendPromise.pending<number>((err) => routed.push(err));
    const resolve = (n: number): void => promise.succeed(n);
    const derived = promise.then((n) => n + 1);
    expect(derived).not.toBeInstanceOf(SendPromise);
    expect(promise).toBeInstanceOf(Promise);
    resolve(41);
    await expect(derived).resolves.toBe(42);
    await settled();
    expect(routed).toEqual([]);
  });
});

describe('Outbox', () => {
  test('gives every datagram its own id in its plan entry', () => {
    const box = new Outbox();
    const waiter = { settle: (): void => undefined, abandon: (): void => undefined };
    for (let i = 0; i < 100; i++) box.add(Buffer.from('x'), '2001:db8::1', 9, 0, NO_CONTROL, waiter, 0);
    const ids = new Set(Array.from({ length: box.count }, (_, i) => box.id(i)));
    expect(ids.size).toBe(100);
    const plan = layouts().sendPlan;
    expect(box.plan[3 * plan.fields + plan.id]).toBe(box.id(3));
  });
});

describe('layouts', () => {
  const good = (): { record: Record<string, number>; sendPlan: Record<string, number>; sendQueued: number } => JSON.parse(JSON.stringify(layouts())) as never;

  test('the addon exports every record and send-plan field lib/ reads', () => {
    expect(checkLayouts(good())).toEqual(layouts());
    expect(layouts().sendQueued).toBe(-(2 ** 31));
  });

  test.each([
    ['a record field missing', (l: ReturnType<typeof good>) => delete l.record.hopLimit, /layouts\.record\.hopLimit is missing/],
    ['the send plan id missing', (l: ReturnType<typeof good>) => delete l.sendPlan.id, /layouts\.sendPlan\.id is missing/],
    ['a field past the record', (l: ReturnType<typeof good>) => (l.record.source = l.record.size), /layouts\.record\.source lies outside the size/],
    ['no queued marker', (l: ReturnType<typeof good>) => (l.sendQueued = 0), /layouts\.sendQueued is missing/],
    ['no record at all', (l: ReturnType<typeof good>) => delete (l as Partial<typeof l>).record, /layouts\.record is missing/],
  ])('refuses to load with %s', (_what, spoil, message) => {
    const l = good();
    spoil(l);
    expect(() => checkLayouts(l)).toThrow(message);
    expect(() => checkLayouts(undefined)).toThrow(/layouts are missing/);
  });
});

describe('RecordBatch', () => {
  test('reads every field in host byte order, and says whether a view of the data was handed out', () => {
    const r = layouts().record;
    const meta = Buffer.alloc(2 * r.size);
    const data = Buffer.from('hello, world!!');
    // Written as the native side writes them: host-order integers through typed arrays.
    const words = new Int32Array(meta.buffer, meta.byteOffset, meta.length >> 2);
    const halves = new Uint16Array(meta.buffer, meta.byteOffset, meta.length >> 1);
    const at = r.size;
    words[(at + r.dataOffset) / 4] = 7;
    words[(at + r.dataLength) / 4] = 5;
    words[(at + r.ifindex) / 4] = 3;
    words[(at + r.hopLimit) / 4] = 64;
    words[(at + r.tclass) / 4] = -1;
    words[(at + r.scopeId) / 4] = -2;
    words[(at + r.hasDestination) / 4] = 1;
    halves[(at + r.family) / 2] = 6;
    halves[(at + r.port) / 2] = 40000;
    meta[at + r.destination] = 0xff;
    meta[at + r.destination + 1] = 0x02;
    meta[at + r.destination + 15] = 0x01;
    const batch = new RecordBatch().load(2, data, meta);
    expect([batch.count, batch.dataOffset(1), batch.dataLength(1), batch.ifindex(1), batch.hopLimit(1), batch.tclass(1)]).toEqual([2, 7, 5, 3, 64, -1]);
    expect([batch.family(1), batch.port(1), batch.scopeId(1), batch.truncated(1), batch.hopByHop(1)]).toEqual([6, 40000, 2 ** 32 - 2, false, null]);
    expect(batch.hasDestination(0)).toBe(false);
    expect(batch.destinationIs(1, Buffer.from('ff020000000000000000000000000001', 'hex'))).toBe(true);
    expect(batch.destinationIs(1, Buffer.from('ff020000000000000000000000000002', 'hex'))).toBe(false);
    expect(batch.released).toBe(true);
    expect(batch.payload(1).toString()).toBe('world');
    expect(batch.released).toBe(false);
    expect(batch.load(2, data, meta).released).toBe(true);
    const rest = batch.rest(1);
    expect(rest.count).toBe(1);
    expect(rest.meta.equals(meta.subarray(r.size))).toBe(true);
    expect(batch.released).toBe(false);
  });
});
