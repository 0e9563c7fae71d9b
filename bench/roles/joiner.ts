/**
 * Child role "joiner": joins many multicast groups on one socket, or one group on every
 * interface, and reports how long that took and how much resident memory it added.
 *
 *   joiner --impl ip6sock|dgram --groups N --interface IFNAME|all --port P
 *
 * Groups are ff05::db8:1:0, ff05::db8:1:1, ... (RFC 6676 documentation range) for a named
 * interface, ff05::db8:2:1 for 'all'. ip6sock: MulticastSocket.join(group, { interface }),
 * one call for 'all'. dgram has no 'all': os.networkInterfaces() and one
 * addMembership(group, '::%IF') per interface it lists, as an application would have to
 * write it; both are in the time.
 *
 * Command "join" -> {"joined":..,"ms":..,"rssBeforeKb":..,"rssAfterKb":..,"heapBeforeKb":..,
 * "heapAfterKb":..}; the memberships are held until "quit", so the bench can check them in
 * /proc/net/igmp6. Started with --expose-gc, the joiner collects garbage before each
 * reading, so the heap numbers are what the memberships keep alive.
 * @packageDocumentation
 */
import * as dgram from 'node:dgram';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { multicastSocket } from '../ip6sock';
import { readyDgram, rssKb, serve } from '../protocol';

/** The i-th group of a many-groups run. */
export function groupAddress(i: number): string {
  return `ff05::db8:1:${i.toString(16)}`;
}

/** The group joined on every interface. */
export const ALL_GROUP = 'ff05::db8:2:1';

/** A full garbage collection, when node runs with --expose-gc. */
function collect(): void {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  if (typeof gc === 'function') (gc as () => void)();
}

function heapKb(): number {
  return Math.round(process.memoryUsage().heapUsed / 1024);
}

export async function joiner(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      impl: { type: 'string' },
      groups: { type: 'string', default: '1' },
      interface: { type: 'string' },
      port: { type: 'string' },
      'max-seconds': { type: 'string', default: '900' },
    },
  });
  const count = Number(values.groups);
  const iface = values.interface ?? '';
  const port = Number(values.port);
  const groups = iface === 'all' ? [ALL_GROUP] : Array.from({ length: count }, (_, i) => groupAddress(i));
  let joinAll: () => number;
  let close: () => Promise<void>;

  switch (values.impl) {
    case 'ip6sock': {
      const found = multicastSocket();
      if (!found.ok) throw new Error(found.reason);
      const sock = new found.value({ port });
      joinAll = () => {
        let joined = 0;
        for (const g of groups) {
          const added = sock.join(g, { interface: iface });
          joined += Array.isArray(added) ? added.length : 1;
        }
        return joined;
      };
      close = () => sock.close();
      break;
    }
    case 'dgram': {
      const sock = dgram.createSocket({ type: 'udp6' });
      close = await readyDgram(sock, port);
      joinAll = () => {
        // Finding the interfaces is part of joining on all of them, as in ip6sock's one call.
        const names = iface === 'all' ? Object.keys(os.networkInterfaces()).filter((n) => n !== 'lo') : [iface];
        let joined = 0;
        for (const g of groups) {
          for (const name of names) {
            sock.addMembership(g, `::%${name}`);
            joined++;
          }
        }
        return joined;
      };
      break;
    }
    default:
      throw new Error(`joiner: unknown --impl ${String(values.impl)}`);
  }

  serve(
    {},
    {
      join: () => {
        collect();
        const heapBeforeKb = heapKb();
        const rssBeforeKb = rssKb();
        const t0 = process.hrtime.bigint();
        const joined = joinAll();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const rssAfterKb = rssKb();
        collect();
        return { joined, ms, rssBeforeKb, rssAfterKb, heapBeforeKb, heapAfterKb: heapKb() };
      },
    },
    close,
    Number(values['max-seconds']),
  );
}
