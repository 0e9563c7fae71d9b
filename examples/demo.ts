/**
 * npm run demo: builds a small network of namespaces (sender - router - receiver), runs
 * ip6sock in each "host", prints what it sees, and removes the network again.
 * Needs root (network namespaces).
 */
import { interfaces, MessageInfo, UdpSocket } from 'ip6sock';
import { chain, Topology } from 'ip6sock/testbed';

type Host = 'sender' | 'router' | 'receiver';

function section(title: string): void {
  console.log(`\n== ${title}`);
}

function nextMessage(sock: UdpSocket, timeoutMs = 3000): Promise<[Buffer, MessageInfo]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no datagram arrived within 3 s')), timeoutMs);
    sock.once('message', (data: Buffer, info: MessageInfo) => {
      clearTimeout(timer);
      resolve([data, info]);
    });
  });
}

async function whoAmI(topo: Topology<Host>): Promise<void> {
  section('who am I (interfaces.list in each namespace)');
  for (const host of topo.hostNames) {
    for (const i of interfaces.list({ netns: topo.ns(host) })) {
      if (i.flags.loopback) continue;
      const ll = i.linkLocal.map((a) => a.address).join(' ');
      const gl = i.global.map((a) => `${a.address}/${a.prefixLength}`).join(' ');
      console.log(`${host.padEnd(8)} ${i.name} (index ${i.index}) link-local ${ll}  global ${gl}`);
    }
  }
  const src = interfaces.sourceFor('2001:db8:2::2', { netns: topo.ns('sender') });
  console.log(`sender would reach 2001:db8:2::2 from ${src}`);
}

async function acrossTheRouter(topo: Topology<Host>): Promise<void> {
  section('a datagram across the router, with its arrival interface and hop limit');
  await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 9000 });
  await using tx = new UdpSocket({ netns: topo.ns('sender') });
  const got = nextMessage(rx);
  await tx.send('hello through the router', { address: '2001:db8:2::2', port: 9000, hopLimit: 5 });
  const [data, info] = await got;
  console.log(`receiver got "${data}" from [${info.address}]:${info.port}`);
  console.log(`  arrived on ${info.interface?.name} (index ${info.interface?.index}), to ${info.destination}, hop limit ${info.hopLimit} (sent with 5, one router on the way)`);
}

async function perInterface(topo: Topology<Host>): Promise<void> {
  section('one socket, a link-local datagram out of each router interface');
  await using left = new UdpSocket({ netns: topo.ns('sender'), port: 9001 });
  await using right = new UdpSocket({ netns: topo.ns('receiver'), port: 9001 });
  await using router = new UdpSocket({ netns: topo.ns('router') });
  const l = nextMessage(left);
  const r = nextMessage(right);
  // fe80::1 is the sender on eth0's link and the router itself on eth1's, so each
  // destination is named with its interface.
  await router.send('via eth0', { address: 'fe80::1', port: 9001, interface: 'eth0' });
  await router.send('via eth1', { address: 'fe80::2', port: 9001, interface: 'eth1' });
  for (const [who, p] of [['sender', l], ['receiver', r]] as const) {
    const [data, info] = await p;
    console.log(`${who.padEnd(8)} got "${data}" from ${info.address}, hop limit ${info.hopLimit}`);
  }
}

export const summary = 'build a namespace network, run ip6sock in each host, print what happens';
export const usage = `usage: ip6sock demo

Builds sender - router - receiver out of network namespaces (needs root), runs each
ip6sock feature between them, prints a short report and removes the namespaces.`;

export async function main(_args: string[], signal: AbortSignal): Promise<void> {
  if (process.getuid?.() !== 0) throw Object.assign(new Error('the demo builds network namespaces and needs root (CAP_NET_ADMIN)'), { code: 'EPERM' });
  const topo = await chain();
  signal.addEventListener('abort', () => void topo.destroy(), { once: true });
  console.log(`built sender - router - receiver in ${Math.round(topo.buildMs)} ms (namespaces ${topo.namespaces.join(', ')})`);
  try {
    await whoAmI(topo);
    await acrossTheRouter(topo);
    await perInterface(topo);
  } finally {
    await topo.destroy();
    console.log('\nnamespaces removed');
  }
}
