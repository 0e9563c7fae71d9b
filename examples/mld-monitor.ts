/**
 * ip6sock mld-monitor: which groups the hosts on a link join and leave, from their
 * MLDv2 reports (RFC 3810). The reports carry Router Alert value 0 but are link-local
 * multicast, so the kernel never hands them to a router-alert tap: a raw ICMPv6 socket
 * that joined ff02::16 (all MLDv2-capable routers) reads them instead.
 */
import { parseArgs } from 'node:util';
import { formatIpv6, interfaces, MessageInfo, RawSocket } from 'ip6sock';

export const summary = 'show which multicast groups hosts on a link join and leave (MLDv2 reports)';
export const usage = `usage: ip6sock mld-monitor [--interface IF]... [--netns NAME]

Listens for MLDv2 reports (ICMPv6 type 143, sent to ff02::16) on every multicast
interface, or those given, and prints each change a host reports: "joined", "left",
"allows/blocks sources", and the current state it reports in answer to queries.
Needs CAP_NET_RAW.

  --interface IF   listen on this interface only (repeatable)
  --netns NAME     run inside this network namespace`;

const MLDV2_REPORT = 143;
const ALL_MLDV2_ROUTERS = 'ff02::16';

/** RFC 3810 §5.2.12 record types. */
const RECORD_TYPES: Readonly<Record<number, string>> = {
  1: 'MODE_IS_INCLUDE',
  2: 'MODE_IS_EXCLUDE',
  3: 'CHANGE_TO_INCLUDE_MODE',
  4: 'CHANGE_TO_EXCLUDE_MODE',
  5: 'ALLOW_NEW_SOURCES',
  6: 'BLOCK_OLD_SOURCES',
};

export interface MldRecord {
  type: number;
  typeName: string;
  group: string;
  sources: string[];
}

/** Decodes an MLDv2 report (the ICMPv6 message, type first); throws ERR_MLD_MALFORMED. */
export function decodeMldv2Report(msg: Buffer): MldRecord[] {
  const bad = (what: string): Error => Object.assign(new Error(`malformed MLDv2 report: ${what}`), { code: 'ERR_MLD_MALFORMED' });
  if (msg.length < 8 || msg[0] !== MLDV2_REPORT) throw bad('not an MLDv2 report');
  const count = msg.readUInt16BE(6);
  const records: MldRecord[] = [];
  let at = 8;
  for (let i = 0; i < count; i++) {
    if (at + 20 > msg.length) throw bad(`record ${i} truncated`);
    const type = msg[at];
    const auxWords = msg[at + 1];
    const nSources = msg.readUInt16BE(at + 2);
    const end = at + 20 + nSources * 16 + auxWords * 4;
    if (end > msg.length) throw bad(`record ${i} claims ${nSources} sources past the end`);
    const sources: string[] = [];
    for (let s = 0; s < nSources; s++) sources.push(formatIpv6(msg, at + 20 + s * 16));
    records.push({ type, typeName: RECORD_TYPES[type] ?? `type ${type}`, group: formatIpv6(msg, at + 4), sources });
    at = end;
  }
  return records;
}

/** Says in words what a record means for the reporting host's membership. */
export function describeRecord(r: MldRecord): string {
  const src = r.sources.join(', ');
  switch (r.type) {
    case 4:
      return r.sources.length === 0 ? `joined ${r.group}` : `joined ${r.group} excluding ${src}`;
    case 3:
      return r.sources.length === 0 ? `left ${r.group}` : `now receives ${r.group} only from ${src}`;
    case 5:
      return `allows ${r.group} from ${src}`;
    case 6:
      return `blocks ${r.group} from ${src}`;
    case 2:
      return `is a member of ${r.group}${r.sources.length ? ` excluding ${src}` : ''}`;
    case 1:
      return `is a member of ${r.group} for sources ${src || '(none)'}`;
    default:
      return `${r.typeName} ${r.group} ${src}`;
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
      for (const r of decodeMldv2Report(data)) console.log(`${info.interface?.name ?? '?'}  ${info.address} ${describeRecord(r)}`);
    } catch (err) {
      console.error(`dropped from ${info.address}: ${(err as Error).message}`);
    }
  });
  sock.on('error', (err: Error) => console.error(`error: ${err.message}`));
  await new Promise<void>((resolve) => sock.once('close', () => resolve()));
}
