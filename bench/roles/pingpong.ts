/**
 * Child roles "echo" and "ping": round-trip latency, one datagram in flight.
 *
 *   echo --impl ip6sock|dgram --port P
 *       answers every datagram to its sender.
 *   ping --impl ip6sock|dgram --dst ADDR --port P --size B
 *       command "ping N TIMEOUT_MS" -> {"count":..,"lost":..,"rttNs":[...],"rssKb":..}:
 *       N round trips one after the other, each request carrying its 4-byte sequence number;
 *       the clock runs from just before send() to the matching reply's event.
 * @packageDocumentation
 */
import * as dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { UdpSocket } from '../../lib/sockets/udp';
import { readyDgram, rssKb, serve } from '../protocol';

export async function echo(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { impl: { type: 'string' }, port: { type: 'string' }, 'max-seconds': { type: 'string', default: '900' } },
  });
  const port = Number(values.port);
  let close: () => Promise<void>;
  switch (values.impl) {
    case 'ip6sock': {
      const sock = new UdpSocket({ port });
      sock.on('message', (data, info) => {
        sock.send(data, { address: info.address, port: info.port }).catch(() => {
          /* a lost answer shows up as a lost ping */
        });
      });
      close = () => sock.close();
      break;
    }
    case 'dgram': {
      const sock = dgram.createSocket({ type: 'udp6' });
      sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
      close = await readyDgram(sock, port);
      break;
    }
    default:
      throw new Error(`echo: unknown --impl ${String(values.impl)}`);
  }
  serve({}, {}, close, Number(values['max-seconds']));
}

export async function ping(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      impl: { type: 'string' },
      dst: { type: 'string' },
      port: { type: 'string' },
      size: { type: 'string', default: '64' },
      'max-seconds': { type: 'string', default: '900' },
    },
  });
  const dst = values.dst ?? '';
  const port = Number(values.port);
  const payload = Buffer.alloc(Math.max(4, Number(values.size)), 0x5a);

  // The request waiting for its answer; the receive handler settles it.
  let waiting: { seq: number; resolve: (answered: boolean) => void } | undefined;
  const onReply = (data: Buffer): void => {
    if (waiting !== undefined && data.length >= 4 && data.readUInt32LE(0) === waiting.seq) {
      const w = waiting;
      waiting = undefined;
      w.resolve(true);
    }
  };
  let send: () => void;
  let close: () => Promise<void>;
  switch (values.impl) {
    case 'ip6sock': {
      const sock = new UdpSocket();
      sock.connect(dst, port);
      sock.on('message', onReply);
      send = () => {
        sock.send(payload).catch(() => {
          /* counted as lost when no answer comes */
        });
      };
      close = () => sock.close();
      break;
    }
    case 'dgram': {
      const sock = dgram.createSocket({ type: 'udp6' });
      sock.on('message', onReply);
      close = await readyDgram(sock, port, dst);
      send = () => sock.send(payload);
      break;
    }
    default:
      throw new Error(`ping: unknown --impl ${String(values.impl)}`);
  }

  serve(
    {},
    {
      ping: async ([count, timeout]) => {
        const n = Number(count);
        const timeoutMs = Number(timeout);
        const rttNs: number[] = [];
        let lost = 0;
        for (let seq = 0; seq < n; seq++) {
          payload.writeUInt32LE(seq, 0);
          let timer: NodeJS.Timeout | undefined;
          // Promise and timer exist before the clock starts: only the round trip is timed.
          const answered = new Promise<boolean>((resolve) => {
            waiting = { seq, resolve };
            timer = setTimeout(() => {
              waiting = undefined;
              resolve(false);
            }, timeoutMs);
          });
          const t0 = process.hrtime.bigint();
          send();
          const ok = await answered;
          const t1 = process.hrtime.bigint();
          clearTimeout(timer);
          if (ok) rttNs.push(Number(t1 - t0));
          else lost++;
        }
        return { count: rttNs.length, lost, rssKb: rssKb(), rttNs };
      },
    },
    close,
    Number(values['max-seconds']),
  );
}
