/**
 * Child role "relay": ip6sock's RouterAlertSocket as a router-alert relay, the job of the C
 * relay (bench/c/relay.c): every tapped packet is forwarded at once.
 *
 *   relay --value V [--rcvbuf BYTES]
 *
 * Counts like the C relay: "received" = packets forwarded (counted when forward() resolves),
 * "other" = packets not forwarded (forward() rejected or declined).
 * @packageDocumentation
 */
import { parseArgs } from 'node:util';
import { routerAlertSocket } from '../ip6sock';
import { Counter, counterHandlers, serve } from '../protocol';

export function relay(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: { value: { type: 'string' }, rcvbuf: { type: 'string' }, 'max-seconds': { type: 'string', default: '900' } },
  });
  const found = routerAlertSocket();
  if (!found.ok) throw new Error(found.reason);
  const sock = new found.value({ value: Number(values.value), receiveBufferSize: values.rcvbuf === undefined ? undefined : Number(values.rcvbuf) });
  const counter = new Counter();
  const forwarded = (result: unknown): void => {
    // ForwardResult: { forwarded: true, bytes } or { forwarded: false, reason }.
    const r = typeof result === 'object' && result !== null ? (result as { forwarded?: unknown; bytes?: unknown }) : {};
    if (r.forwarded === true) counter.add(typeof r.bytes === 'number' ? r.bytes : 0);
    else counter.other++;
  };
  const failed = (): void => {
    counter.other++;
  };
  sock.on('packet', (packet: unknown) => {
    sock.forward(packet).then(forwarded, failed);
  });
  serve({}, counterHandlers(counter, () => sock.stats.kernelDrops), () => sock.close(), Number(values['max-seconds']));
}
