/**
 * Child role "receiver": one socket that counts every datagram it gets, the way an
 * application would receive them (a 'message' listener that looks at the data).
 *
 *   receiver --impl ip6sock|ip6sock-multicast|ip6sock-multicast-batch|dgram --port P
 *            [--group G --ifname IF] [--rcvbuf BYTES] [--lean]
 *
 * ip6sock: UdpSocket bound to [::]:P (unicast). ip6sock-multicast: MulticastSocket joined to
 * G on IF. ip6sock-multicast-batch: the same with a 'batch' listener, which takes each read's
 * datagrams in one call and looks at each one's size. dgram: node:dgram udp6 bound to
 * [::]:P, with addMembership(G, '::%IF') for a group.
 * --rcvbuf: SO_RCVBUF (receiveBufferSize / recvBufferSize), the same for every implementation.
 * --lean (ip6sock-multicast*): bound to IF (device) with receivePacketInfo and receiveHopLimit
 * false, so the kernel hands over payload and source only, as the C receiver asks.
 * @packageDocumentation
 */
import * as dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { UdpSocket } from '../../lib/sockets/udp';
import { multicastSocket } from '../ip6sock';
import { Counter, counterHandlers, readyDgram, serve } from '../protocol';

export async function receiver(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      impl: { type: 'string' },
      port: { type: 'string' },
      group: { type: 'string' },
      ifname: { type: 'string' },
      rcvbuf: { type: 'string' },
      lean: { type: 'boolean', default: false },
      'max-seconds': { type: 'string', default: '900' },
    },
  });
  const port = Number(values.port);
  const receiveBufferSize = values.rcvbuf === undefined ? undefined : Number(values.rcvbuf);
  const counter = new Counter();
  const onData = (data: Buffer): void => counter.add(data.length);
  let close: () => Promise<void>;
  let kernelDrops: () => number | null = () => null;

  switch (values.impl) {
    case 'ip6sock': {
      const sock = new UdpSocket({ port, receiveBufferSize });
      sock.on('message', onData);
      close = () => sock.close();
      kernelDrops = () => sock.stats.kernelDrops;
      break;
    }
    case 'ip6sock-multicast':
    case 'ip6sock-multicast-batch': {
      const found = multicastSocket();
      if (!found.ok) throw new Error(found.reason);
      if (values.group === undefined || values.ifname === undefined) throw new Error('--group and --ifname are required');
      const lean = values.lean ? { device: values.ifname, receivePacketInfo: false, receiveHopLimit: false } : {};
      const sock = new found.value({ port, receiveBufferSize, ...lean });
      sock.join(values.group, { interface: values.ifname });
      if (values.impl === 'ip6sock-multicast') sock.on('message', onData);
      else {
        sock.on('batch', (batch: { length: number; size(i: number): number }) => {
          for (let i = 0; i < batch.length; i++) counter.add(batch.size(i));
        });
      }
      close = () => sock.close();
      kernelDrops = () => sock.stats.kernelDrops;
      break;
    }
    case 'dgram': {
      const sock = dgram.createSocket({ type: 'udp6', recvBufferSize: receiveBufferSize });
      sock.on('message', onData);
      close = await readyDgram(sock, port);
      if (values.group !== undefined) sock.addMembership(values.group, `::%${values.ifname ?? ''}`);
      break;
    }
    default:
      throw new Error(`receiver: unknown --impl ${String(values.impl)}`);
  }
  serve({}, counterHandlers(counter, kernelDrops), close, Number(values['max-seconds']));
}
