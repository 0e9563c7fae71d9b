/**
 * ip6sock anycast-responder: the anycast seed's high-availability service. The host
 * answers to the anycast address only while this process runs; when it stops (or
 * crashes) the address goes with it, and another member of the group takes over.
 */
import { parseArgs } from 'node:util';
import { AnycastGroup, type AnycastMessageInfo } from 'ip6sock';

export const summary = 'anycast service: join an address while running, answer UDP queries from it';
export const usage = `usage: ip6sock anycast-responder --address A --interface IF [--port N] [--name NAME] [--netns NAME]

Joins the anycast address A on interface IF (needs CAP_NET_ADMIN) and answers every UDP
datagram sent to [A]:N with "NAME: <the query>", sent FROM the anycast address so that a
client that connect()ed to it accepts the answer. Leaves the address on Ctrl-C / SIGTERM.

  --address A      the anycast address (on a host: inside an on-link prefix of IF)
  --interface IF   the interface to join on (name or index)
  --port N         UDP port to serve (default 5300)
  --name NAME      how this responder signs its answers (default: the host name)
  --netns NAME     run inside this network namespace`;

export async function main(args: string[], signal: AbortSignal): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      address: { type: 'string' },
      interface: { type: 'string' },
      port: { type: 'string', default: '5300' },
      name: { type: 'string', default: (await import('node:os')).hostname() },
      netns: { type: 'string' },
    },
  });
  if (values.address === undefined || values.interface === undefined) {
    throw Object.assign(new Error('--address and --interface are required'), { code: 'ERR_MISSING_ARGS' });
  }
  const iface = /^\d+$/.test(values.interface) ? Number(values.interface) : values.interface;
  const group = new AnycastGroup(values.address, { interface: iface, port: Number(values.port), netns: values.netns, signal });
  console.log(`joined anycast ${values.address} on ${values.interface}, serving UDP port ${values.port} as ${values.name}`);

  group.on('message', (data: Buffer, info: AnycastMessageInfo) => {
    const query = data.toString('utf8');
    info.reply(`${values.name}: ${query}`)
      .then(() => console.log(`query from [${info.address}]:${info.port} on ${info.interface?.name}: ${JSON.stringify(query)} -> answered from ${info.destination}`))
      .catch((err: Error) => console.error(`reply to ${info.address}: ${err.message}`));
  });
  group.on('error', (err: Error) => console.error(`error: ${err.message}`));

  await new Promise<void>((resolve) => group.once('close', () => resolve()));
  console.log(`left anycast ${values.address}`);
}
