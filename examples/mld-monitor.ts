/**
 * ip6sock mld-monitor: which groups the hosts on a link join and leave, from their
 * MLDv2 reports (RFC 3810). The reports carry Router Alert value 0 but are link-local
 * multicast, so the kernel never hands them to a router-alert tap: a raw ICMPv6 socket
 * that joined ff02::16 (all MLDv2-capable routers) reads them instead.
 */
import { parseArgs } from 'node:util';
import { interfaces, mld, MessageInfo, RawSocket, type GroupRecord } from 'ip6sock';

export const summary = 'show which multicast groups hosts on a link join and leave (MLDv2 reports)';
export const usage = `usage: ip6sock mld-monitor [--interface IF]... [--netns NAME]

Listens for MLDv2 reports (ICMPv6 type 143, sent to ff02::16) on every multicast
interface, or those given, and prints each change a host reports: "joined", "left",
"allows/blocks sources", and the current state it reports in answer to queries.
Needs CAP_NET_RAW.

  --interface IF   listen on this interface only (repeatable)
  --netns NAME     run inside this network namespace`;

const ALL_MLDV2_ROUTERS = 'ff02::16';

/** Says in words what a record means for the reporting host's membership. */
export function describeRecord(r: GroupRecord): string {
  const src = r.sources.join(', ');
  switch (r.typeName) {
    case 'CHANGE_TO_EXCLUDE_MODE':
      return r.sources.length === 0 ? `joined ${r.group}` : `joined ${r.group} excluding ${src}`;
    case 'CHANGE_TO_INCLUDE_MODE':
      return r.sources.length === 0 ? `left ${r.group}` : `now receives ${r.group} only from ${src}`;
    case 'ALLOW_NEW_SOURCES':
      return `allows ${r.group} from ${src}`;
    case 'BLOCK_OLD_SOURCES':
      return `blocks ${r.group} from ${src}`;
    case 'MODE_IS_EXCLUDE':
      return `is a member of ${r.group}${r.sources.length ? ` excluding ${src}` : ''}`;
    case 'MODE_IS_INCLUDE':
      return `is a member of ${r.group} for sources ${src || '(none)'}`;
    default:
      return `type ${r.type} ${r.group} ${src}`;
  }
}

export async function main(args: string[], signal: AbortSignal): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: { interface: { type: 'string', multiple: true }, netns: { type: 'string' } } });
  const netns = values.netns;
  const wanted = values.interface;
  const links = interfaces
    .list({ netns })
    .filter((i) => i.flags.up && i.flags.multicast && !i.flags.loopback)
    .filter((i) => !wanted || wanted.includes(i.name) || wanted.includes(String(i.index)));
  if (links.length === 0) throw Object.assign(new Error('no multicast interface to listen on'), { code: 'ENODEV' });

  const sock = new RawSocket({ family: 6, protocol: 58, icmpFilter: { pass: ['mldv2-report'] }, netns, signal });
  for (const i of links) sock.join(ALL_MLDV2_ROUTERS, { interface: i.index });
  console.log(`listening for MLDv2 reports on ${links.map((i) => i.name).join(', ')}`);

  sock.on('message', (data: Buffer, info: MessageInfo) => {
    try {
      const message = mld.decode(data);
      // The filter passes only type 143 (an MLDv2 report); the check tells TypeScript so.
      if (message.kind !== 'report' || message.version !== 2) return;
      for (const r of message.records) console.log(`${info.interface?.name ?? '?'}  ${info.address} ${describeRecord(r)}`);
    } catch (err) {
      console.error(`dropped from ${info.address}: ${(err as Error).message}`);
    }
  });
  sock.on('error', (err: Error) => console.error(`error: ${err.message}`));
  await new Promise<void>((resolve) => sock.once('close', () => resolve()));
}
