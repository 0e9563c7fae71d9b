/**
 * ip6sock mcast-chat: the multicast seed's sender and receiver in one program. Lines from
 * stdin go to the group (on every interface it joined), lines from the group go to stdout
 * with the interface they arrived on.
 */
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { MulticastSocket, MessageInfo } from 'ip6sock';

export const summary = 'multicast chat: stdin lines to a group, group lines to stdout (IPv4 224.0.1.1:5000 or IPv6 -6)';
export const usage = `usage: ip6sock mcast-chat [-6] [--group G] [--port N] [--interface IF] [--hop-limit N]
                          [--name NICK] [--netns NAME] [--hear-self]

Joins the group on one interface (--interface, a name or index) or on every multicast
interface (default), sends each line typed on stdin to the group out of each joined
interface, and prints each line received as "[interface] source: text".

  -6               IPv6 (group ff12::5000) instead of IPv4 (224.0.1.1)
  --group G        the group address
  --port N         UDP port (default 5000)
  --interface IF   join and send on this interface only
  --hop-limit N    hop limit / TTL of sent lines (default 1: stay on the link)
  --name NICK      prefix for sent lines
  --netns NAME     run inside this network namespace
  --hear-self      also print lines this host sent`;

export async function main(args: string[], signal: AbortSignal): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      '6': { type: 'boolean', short: '6', default: false },
      group: { type: 'string' },
      port: { type: 'string', default: '5000' },
      interface: { type: 'string' },
      'hop-limit': { type: 'string', default: '1' },
      name: { type: 'string' },
      netns: { type: 'string' },
      'hear-self': { type: 'boolean', default: false },
    },
  });
  const family = values['6'] ? 6 : 4;
  const group = values.group ?? (family === 6 ? 'ff12::5000' : '224.0.1.1');
  const port = Number(values.port);
  const iface = values.interface === undefined ? 'all' : /^\d+$/.test(values.interface) ? Number(values.interface) : values.interface;

  const sock = new MulticastSocket({
    family,
    port,
    reuseAddr: true,
    multicastHopLimit: Number(values['hop-limit']),
    netns: values.netns,
    ignoreOwn: !values['hear-self'],
    signal,
  });
  const joined = sock.join(group, { interface: iface });
  console.error(`joined ${group} port ${port} on ${joined.map((m) => `${m.interface.name} (${m.interface.index})`).join(', ')}`);

  sock.on('message', (data: Buffer, info: MessageInfo) => {
    console.log(`[${info.interface?.name ?? '?'}] ${info.address}: ${data.toString('utf8').replace(/\n$/, '')}`);
  });
  sock.on('error', (err: Error) => console.error(`receive error: ${err.message}`));

  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  lines.on('line', (line) => {
    const text = values.name ? `${values.name}: ${line}` : line;
    // One datagram per joined interface: the interface goes in each packet's PKTINFO.
    for (const m of joined) {
      sock.send(text, { address: group, port, interface: m.interface.index }).catch((err: Error) => console.error(`send on ${m.interface.name}: ${err.message}`));
    }
  });

  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
    sock.once('close', () => resolve());
  });
  lines.close();
  process.stdin.destroy(); // or the open stdin would keep the process alive
  await sock.close();
}
