/**
 * ip6sock doctor: what this host (or one of its namespaces) allows, and what each
 * ip6sock class can therefore do here.
 */
import { parseArgs } from 'node:util';
import * as os from 'node:os';
import { interfaces, system, RouterAlertSocket } from 'ip6sock';

export const summary = 'explain what this host allows: privileges, IPv6, forwarding, interfaces';
export const usage = `usage: ip6sock doctor [--netns NAME] [--json]

Checks CAP_NET_RAW / CAP_NET_ADMIN / CAP_SYS_ADMIN, whether IPv6 is enabled, forwarding,
whether router-alert isolation works, the interfaces that can do multicast, and says
what MulticastSocket, AnycastGroup, RouterAlertSocket and RawSocket can do here.

  --netns NAME   look inside this network namespace (needs CAP_SYS_ADMIN to enter it)
  --json         print the findings as JSON`;

/** One finding; `ok` false means something a class needs is missing. */
interface Finding {
  check: string;
  ok: boolean;
  detail: string;
}

function tryRead(fn: () => string): string | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** Opens a router-alert tap with isolation on: proves both the privilege and the kernel support. */
function routerAlertIsolation(netns: string | undefined): { ok: boolean; detail: string } {
  try {
    // An observer: it takes no lock, so a daemon tapping the same value does not fail the check.
    const tap = new RouterAlertSocket({ value: 65535, isolate: true, observe: true, netns });
    void tap.close();
    return { ok: true, detail: 'IPV6_ROUTER_ALERT_ISOLATE accepted' };
  } catch (err) {
    const e = err as { code?: string; capability?: string };
    if (e.code === 'EPERM') return { ok: false, detail: `cannot test: opening a raw socket needs ${e.capability ?? 'CAP_NET_RAW'}` };
    if (e.code === 'ENOPROTOOPT') return { ok: false, detail: 'not supported by this kernel (Linux 5.1+ has it)' };
    return { ok: false, detail: `failed: ${e.code ?? String(err)}` };
  }
}

export function diagnose(netns: string | undefined): { findings: Finding[]; classes: Finding[] } {
  const caps = system.capabilities();
  const findings: Finding[] = [];
  findings.push({ check: 'kernel', ok: true, detail: `${os.type()} ${os.release()}` });
  findings.push({ check: 'CAP_NET_RAW', ok: caps.CAP_NET_RAW, detail: caps.CAP_NET_RAW ? 'yes' : 'no: raw sockets, router alert and hop-by-hop sends are refused' });
  findings.push({ check: 'CAP_NET_ADMIN', ok: caps.CAP_NET_ADMIN, detail: caps.CAP_NET_ADMIN ? 'yes' : 'no: anycast joins are refused' });
  findings.push({ check: 'CAP_SYS_ADMIN', ok: caps.CAP_SYS_ADMIN, detail: caps.CAP_SYS_ADMIN ? 'yes' : 'no: sockets cannot be opened in other namespaces (netns option)' });

  const disabled = tryRead(() => system.sysctl('ipv6/conf/all/disable_ipv6', { netns }));
  findings.push({ check: 'IPv6', ok: disabled === '0', detail: disabled === undefined ? 'unknown (cannot read net.ipv6.conf.all.disable_ipv6)' : disabled === '0' ? 'enabled' : 'disabled' });
  const fwd = tryRead(() => system.sysctl('ipv6/conf/all/forwarding', { netns }));
  findings.push({
    check: 'IPv6 forwarding',
    ok: fwd === '1',
    detail: fwd === undefined ? 'unknown' : fwd === '1' ? 'on: this host routes, router-alert taps see forwarded packets' : 'off: a host, not a router; router-alert taps would see nothing',
  });
  const ra = routerAlertIsolation(netns);
  findings.push({ check: 'router-alert isolation', ok: ra.ok, detail: ra.detail });

  let mcast: string[] = [];
  try {
    mcast = interfaces
      .list({ netns })
      .filter((i) => i.flags.up && i.flags.multicast && !i.flags.loopback)
      .map((i) => `${i.name} (${i.index}${i.linkLocal.length ? `, ${i.linkLocal[0].address}` : ', no link-local'})`);
    findings.push({ check: 'multicast interfaces', ok: mcast.length > 0, detail: mcast.length ? mcast.join(', ') : 'none up' });
  } catch (err) {
    const e = err as { code?: string };
    findings.push({ check: 'multicast interfaces', ok: false, detail: `cannot list: ${e.code ?? String(err)}` });
  }

  const inNs = netns === undefined || caps.CAP_SYS_ADMIN;
  const classes: Finding[] = [
    { check: 'MulticastSocket', ok: inNs && mcast.length > 0, detail: mcast.length > 0 ? 'join and send on the interfaces above (no privilege needed)' : 'no multicast interface is up' },
    { check: 'AnycastGroup', ok: inNs && caps.CAP_NET_ADMIN, detail: caps.CAP_NET_ADMIN ? 'can join anycast addresses' : 'needs CAP_NET_ADMIN' },
    {
      check: 'RouterAlertSocket',
      ok: inNs && caps.CAP_NET_RAW && fwd === '1' && ra.ok,
      detail: !caps.CAP_NET_RAW ? 'needs CAP_NET_RAW' : fwd !== '1' ? 'opens, but sees nothing until forwarding is on' : ra.ok ? 'taps forwarded packets, isolated to this namespace' : ra.detail,
    },
    { check: 'RawSocket', ok: inNs && caps.CAP_NET_RAW, detail: caps.CAP_NET_RAW ? 'any protocol, ICMPv6 filters, header-included sends' : 'needs CAP_NET_RAW' },
    { check: 'hop-by-hop options', ok: inNs && caps.CAP_NET_RAW, detail: caps.CAP_NET_RAW ? 'can send router alert and other options' : 'sending them needs CAP_NET_RAW' },
  ];
  return { findings, classes };
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { netns: { type: 'string' }, json: { type: 'boolean', default: false } }, strict: true });
  const result = diagnose(values.netns);
  if (values.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  const mark = (f: Finding): string => (f.ok ? 'ok ' : ' - ');
  console.log(`ip6sock doctor${values.netns ? ` (netns ${values.netns})` : ''}\n`);
  for (const f of result.findings) console.log(`${mark(f)} ${f.check.padEnd(24)} ${f.detail}`);
  console.log('\nwhat each class can do here:');
  for (const f of result.classes) console.log(`${mark(f)} ${f.check.padEnd(24)} ${f.detail}`);
}
