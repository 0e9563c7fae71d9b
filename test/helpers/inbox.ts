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

  constructor(sock: UdpSocket) {
    sock.on('message', (data: Buffer, info: MessageInfo) => {
      const got = { data: data.toString(), info };
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w(got);
      else this.items.push(got);
    });
  }

  /** The next datagram, or a rejection naming `what` after timeoutMs. */
  next(what: string, timeoutMs = 3000): Promise<Got> {
    const ready = this.items.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no datagram (${what}) within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (g) => {
        clearTimeout(timer);
        resolve(g);
      };
    });
  }
}
