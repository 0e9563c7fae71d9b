/**
 * ip6sock ra-policy: the router-alert seed's ra_policy in TypeScript. On a router, tap
 * forwarded packets that carry Router Alert value N, print what they carry, apply a
 * policy (pass, drop, or rewrite a string in the payload), and send them on.
 */
import { parseArgs } from 'node:util';
import { RouterAlertSocket, RouterAlertPacket } from 'ip6sock';

export const summary = 'router-alert tap: print packets with RA value N, apply pass/drop/rewrite, forward';
export const usage = `usage: ip6sock ra-policy --value N [--policy pass|drop|rewrite:FROM=TO] [--netns NAME] [--device IF]

Runs on a router (IPv6 forwarding on). Taps every forwarded packet whose hop-by-hop
header carries Router Alert value N (the kernel hands them over instead of forwarding
them), prints source, destination, hop limit, arrival interface and payload, then:
  pass              forwards it unchanged (hop limit one lower, options intact)
  drop              drops it
  rewrite:FROM=TO   replaces FROM with TO in the UDP payload, then forwards it
A packet that arrives with hop limit 1 is not forwarded; its source gets ICMPv6 Time Exceeded.

  --value N        Router Alert value to tap, 0-65535 (1 is RSVP)
  --policy P       pass (default), drop or rewrite:FROM=TO
  --netns NAME     run inside this network namespace (the router's)
  --device IF      tap only packets arriving on this interface`;

type Policy = { kind: 'pass' } | { kind: 'drop' } | { kind: 'rewrite'; from: string; to: string };

export function parsePolicy(text: string): Policy {
  if (text === 'pass' || text === 'drop') return { kind: text };
  const m = /^rewrite:([^=]+)=(.*)$/s.exec(text);
  if (m) return { kind: 'rewrite', from: m[1], to: m[2] };
  throw Object.assign(new Error(`unknown policy '${text}': use pass, drop or rewrite:FROM=TO`), { code: 'ERR_INVALID_ARG_VALUE' });
}

function describe(pkt: RouterAlertPacket): string {
  const text = pkt.udp ? pkt.udp.data.toString('utf8') : `${pkt.payload.length} bytes of protocol ${pkt.protocol}`;
  const ports = pkt.udp ? ` udp ${pkt.udp.sourcePort} -> ${pkt.udp.destinationPort}` : '';
  return `${pkt.interface?.name ?? '?'}  ${pkt.header.source} -> ${pkt.header.destination}${ports} hop limit ${pkt.header.hopLimit} RA ${pkt.routerAlert}: ${JSON.stringify(text)}`;
}

export async function main(args: string[], signal: AbortSignal): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      value: { type: 'string' },
      policy: { type: 'string', default: 'pass' },
      netns: { type: 'string' },
      device: { type: 'string' },
    },
  });
  if (values.value === undefined) throw Object.assign(new Error('--value is required'), { code: 'ERR_MISSING_ARGS' });
  const policy = parsePolicy(values.policy);
  const tap = new RouterAlertSocket({ value: Number(values.value), netns: values.netns, device: values.device, signal });
  tap.on('warning', (w: Error) => console.error(`warning: ${w.message}`));
  console.log(`tapping router alert value ${values.value}, policy ${values.policy}`);

  tap.on('packet', (pkt: RouterAlertPacket) => {
    console.log(`packet   ${describe(pkt)}`);
    if (policy.kind === 'drop') {
      tap.drop(pkt);
      console.log('dropped');
      return;
    }
    let payload: Buffer | undefined;
    if (policy.kind === 'rewrite' && pkt.udp) {
      payload = Buffer.from(pkt.udp.data.toString('utf8').split(policy.from).join(policy.to), 'utf8');
    }
    tap
      .forward(pkt, payload ? { payload } : undefined)
      .then((r) => console.log(r.forwarded ? `forwarded${payload ? ` as ${JSON.stringify(payload.toString('utf8'))}` : ''}` : `not forwarded: ${r.reason}${r.timeExceededSent ? ', Time Exceeded sent to the source' : ''}`))
      .catch((err: Error) => console.error(`forward failed: ${err.message}`));
  });
  tap.on('error', (err: Error) => console.error(`error: ${err.message}`));

  await new Promise<void>((resolve) => tap.once('close', () => resolve()));
  console.log(`stopped: ${tap.stats.received} tapped, ${tap.stats.forwarded} forwarded, ${tap.stats.dropped} dropped, ${tap.stats.malformed} malformed`);
}
