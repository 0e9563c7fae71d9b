/**
 * The receive path's record reader seen from the outside: a batch nobody kept a view of is
 * written over by the next read (the pool is reused), one somebody kept is not, and a batch
 * stays readable for the rest of its listener even when the listener closes the socket.
 */
import { UdpSocket, MessageBatch } from '../../lib';
import { testRoot } from '../helpers/privileged';
import { nextEvent } from '../helpers/wire';

/** Sends one datagram to `rx` and waits for the 'batch' that carries it; `look` runs inside the listener. */
async function oneBatch<T>(tx: UdpSocket, rx: UdpSocket, text: string, look: (batch: MessageBatch) => T): Promise<T> {
  let seen: T | undefined;
  const listener = (batch: MessageBatch): void => {
    seen = look(batch);
  };
  rx.on('batch', listener);
  try {
    const got = nextEvent(rx, 'batch');
    await tx.send(text, { address: '::1', port: rx.address().port });
    await got;
  } finally {
    rx.off('batch', listener);
  }
  return seen as T;
}

testRoot('a batch nobody kept a view of is reused by the next read; a kept one is not', async () => {
  await using rx = new UdpSocket({ address: '::1' });
  await using tx = new UdpSocket();
  // Reading starts with the first listener and goes on while one is there.
  const keepReading = (): void => undefined;
  rx.on('batch', keepReading);
  // The first read fills the pool from its start; its listener reads only sizes.
  expect(await oneBatch(tx, rx, 'first', (b) => b.size(0))).toBe(5);
  // So the second read lands at the start again, and this listener keeps a view of it.
  const second = await oneBatch(tx, rx, 'second', (b) => b.data(0));
  expect(second.toString()).toBe('second');
  expect(second.byteOffset).toBe(0);
  // The third read must not overwrite the second's bytes.
  const third = await oneBatch(tx, rx, 'third!', (b) => b.data(0));
  expect(third.toString()).toBe('third!');
  expect(third.buffer === second.buffer ? third.byteOffset : 'another pool').not.toBe(0);
  expect(second.toString()).toBe('second');
  rx.off('batch', keepReading);
});

testRoot("a 'batch' listener that closes the socket still reads its batch to the end", async () => {
  const rx = new UdpSocket({ address: '::1' });
  await using tx = new UdpSocket();
  const read = await oneBatch(tx, rx, 'last words', (b) => {
    void rx.close();
    return { data: b.data(0).toString(), size: b.size(0), address: b.info(0).address };
  });
  expect(read).toEqual({ data: 'last words', size: 10, address: '::1' });
  await rx.close();
});
