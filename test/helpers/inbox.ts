// Datagrams a test takes one by one, in order, without missing any between two awaits.
import { MessageInfo, UdpSocket } from '../../lib';

export interface Got {
  data: string;
  info: MessageInfo;
}

/**
 * Buffers every datagram a socket delivers, in order, so a test can take them one by one
 * without missing any between two awaits.
 */
export class Inbox {
  readonly items: Got[] = [];
  private waiter: ((g: Got) => void) | undefined;
  /** Fails the pending next() at once: the socket closed, nothing more will come. */
  private abandon: (() => void) | undefined;

  constructor(sock: UdpSocket) {
    sock.on('message', (data: Buffer, info: MessageInfo) => {
      const got = { data: data.toString(), info };
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w(got);
      else this.items.push(got);
    });
    // A test that failed closes its socket; its pending next() must not keep a timer alive.
    sock.once('close', () => this.abandon?.());
  }

  /** The next datagram, or a rejection naming `what` after timeoutMs (or once the socket closed). */
  next(what: string, timeoutMs = 3000): Promise<Got> {
    const ready = this.items.shift();
    if (ready) return Promise.resolve(ready);
    const waiting = new Promise<Got>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer);
        this.waiter = undefined;
        this.abandon = undefined;
      };
      const timer = setTimeout(() => {
        settle();
        reject(new Error(`no datagram (${what}) within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (g) => {
        settle();
        resolve(g);
      };
      this.abandon = () => {
        settle();
        reject(new Error(`no datagram (${what}): the socket closed`));
      };
    });
    // Awaited, it still rejects; abandoned by a test that failed earlier, it is no second
    // (unhandled) failure.
    waiting.catch(() => undefined);
    return waiting;
  }
}
