/**
 * ip6sock demo (npm run demo): builds sender - router - receiver out of network
 * namespaces, runs every example daemon briefly against the others, prints a short
 * report of what each one saw, and removes the namespaces. Needs root.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { hopByHop, interfaces, MessageInfo, MulticastSocket, UdpSocket } from 'ip6sock';
import { chain, Topology, Watched } from '@ip6sock/testbed';

type Host = 'sender' | 'router' | 'receiver';

export const summary = 'build a namespace network, run every example in it, print what each saw';
export const usage = `usage: ip6sock demo

Builds sender - router - receiver out of network namespaces (needs root), runs the
examples against each other (grasp, mcast-chat, anycast-responder, ra-policy,
mld-monitor), prints a short report and removes the namespaces.`;

const CLI = path.join(__dirname, 'cli.js');

function section(title: string): void {
  console.log(`\n== ${title}`);
}

/** Prints an example's output lines that match `keep`, indented and labelled. */
function show(label: string, w: Watched, keep: RegExp, max = 4): void {
  const lines = w.stdout.split('\n').filter((l) => keep.test(l));
  for (const l of lines.slice(0, max)) console.log(`  ${label.padEnd(9)} ${l.trim()}`);
  if (lines.length > max) console.log(`  ${label.padEnd(9)} ... ${lines.length - max} more`);
}

function nextMessage(sock: UdpSocket, timeoutMs = 3000): Promise<[Buffer, MessageInfo]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no datagram within ${timeoutMs} ms`)), timeoutMs);
    sock.once('message', (data: Buffer, info: MessageInfo) => {
      clearTimeout(timer);
      resolve([data, info]);
    });
  });
}

class Demo {
  private readonly running = new Set<Watched>();
  constructor(private readonly topo: Topology<Host>) {}

  /** Starts `ip6sock <args> --netns <host>` as a child process. */
  example(host: Host, args: string[]): Watched {
    const w = new Watched(spawn(process.execPath, [CLI, ...args, '--netns', this.topo.ns(host)], { stdio: ['pipe', 'pipe', 'pipe'] }));
    this.running.add(w);
    return w;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running].map((w) => w.stop()));
    this.running.clear();
  }

  whoAmI(): void {
    section('who am I: interfaces.list() in each namespace');
    for (const host of this.topo.hostNames) {
      for (const i of interfaces.list({ netns: this.topo.ns(host) })) {
        if (i.flags.loopback) continue;
        console.log(`  ${host.padEnd(9)} ${i.name} (index ${i.index})  ${i.linkLocal.map((a) => a.address).join(' ')}  ${i.global.map((a) => `${a.address}/${a.prefixLength}`).join(' ')}`);
      }
    }
    console.log(`  sender would reach 2001:db8:2::2 from ${interfaces.sourceFor('2001:db8:2::2', { netns: this.topo.ns('sender') })}`);
  }

  async udpAcrossTheRouter(): Promise<void> {
    section('UdpSocket: arrival interface and hop limit of each datagram');
    await using rx = new UdpSocket({ netns: this.topo.ns('receiver'), port: 9000 });
    await using tx = new UdpSocket({ netns: this.topo.ns('sender') });
    const got = nextMessage(rx);
    await tx.send('hello through the router', { address: '2001:db8:2::2', port: 9000, hopLimit: 5 });
    const [data, info] = await got;
    console.log(`  receiver  "${data}" from [${info.address}]:${info.port} on ${info.interface?.name}, hop limit ${info.hopLimit} (sent with 5)`);
  }

  async grasp(): Promise<void> {
    section('grasp: two GRASP nodes on the sender - router link');
    const a = this.example('sender', ['grasp', '--interval', '0.3', '--flood', 'EX1=hello', '--register', 'EX2=world']);
    const b = this.example('router', ['grasp', '--interval', '0.3', '--interface', 'eth0', '--discover', 'EX2']);
    await b.waitFor(/^flood .*EX1/m);
    await b.waitFor(/^response .*EX2/m);
    await a.waitFor(/^discovery .*EX2/m);
    await Promise.all([a.stop(), b.stop()]);
    show('sender', a, /^(grasp node|discovery)/, 2);
    show('router', b, /^(grasp node|flood|response)/, 3);
  }

  async chat(): Promise<void> {
    section('mcast-chat: IPv6 multicast, the router joined on both its links');
    const router = this.example('router', ['mcast-chat', '-6', '--name', 'router']);
    const sender = this.example('sender', ['mcast-chat', '-6', '--name', 'sender']);
    const receiver = this.example('receiver', ['mcast-chat', '-6', '--name', 'receiver']);
    for (const w of [router, sender, receiver]) await w.waitFor(/^joined /m, 8000, 'stderr');
    sender.child.stdin?.write('hello from the left\n');
    receiver.child.stdin?.write('hello from the right\n');
    await router.waitFor(/hello from the left/);
    await router.waitFor(/hello from the right/);
    await Promise.all([router.stop(), sender.stop(), receiver.stop()]);
    show('router', router, /^\[/);
  }

  async anycast(): Promise<void> {
    section('anycast-responder: 2001:db8:2::99 exists only while the responder runs');
    const responder = this.example('receiver', ['anycast-responder', '--address', '2001:db8:2::99', '--interface', 'eth0', '--name', 'receiver']);
    await responder.waitFor(/^joined anycast/m);
    await using client = new UdpSocket({ netns: this.topo.ns('sender') });
    client.connect('2001:db8:2::99', 5300);
    let answer: string | undefined;
    // The first query can wait for neighbour discovery (anycast answers are delayed up to ~0.8 s).
    for (let attempt = 0; attempt < 10 && answer === undefined; attempt++) {
      const got = nextMessage(client, 500).then(([d]) => d.toString(), () => undefined);
      await client.send('who serves this?');
      answer = await got;
    }
    console.log(`  sender    asked [2001:db8:2::99]:5300, answer: ${JSON.stringify(answer)}`);
    await responder.stop();
    show('receiver', responder, /^(query|left)/);
  }

  async routerAlert(): Promise<void> {
    section('ra-policy: the router taps router-alert value 5 and rewrites "hello"');
    const tap = this.example('router', ['ra-policy', '--value', '5', '--policy', 'rewrite:hello=HELLO']);
    await tap.waitFor(/^tapping/m);
    await using rx = new UdpSocket({ netns: this.topo.ns('receiver'), port: 9001, receiveHopByHop: true });
    await using tx = new UdpSocket({ netns: this.topo.ns('sender') });
    const got = nextMessage(rx);
    await tx.send('hello, routers on the path', { address: '2001:db8:2::2', port: 9001, hopByHop: [hopByHop.routerAlert(5)] });
    const [data, info] = await got;
    await tap.waitFor(/^forwarded/m);
    await tap.stop();
    show('router', tap, /^(packet|forwarded)/);
    const ra = info.hopByHop ? hopByHop.findRouterAlert(hopByHop.decode(info.hopByHop)) : undefined;
    console.log(`  receiver  "${data}" with hop limit ${info.hopLimit}, router alert ${ra} still in the header`);
  }

  async mld(): Promise<void> {
    section('mld-monitor: the router watches the receiver join and leave a group');
    const mon = this.example('router', ['mld-monitor', '--interface', 'eth1']);
    await mon.waitFor(/^listening/m);
    const sock = new MulticastSocket({ port: 5000, netns: this.topo.ns('receiver') });
    sock.join('ff12::5000', { interface: 'eth0' });
    await mon.waitFor(/joined ff12::5000/);
    await sock.close();
    await mon.waitFor(/left ff12::5000/);
    await mon.stop();
    show('router', mon, /ff12::5000/);
  }
}

export async function main(_args: string[], signal: AbortSignal): Promise<void> {
  if (process.getuid?.() !== 0) throw Object.assign(new Error('the demo builds network namespaces and needs root (CAP_NET_ADMIN)'), { code: 'EPERM' });
  const topo = await chain();
  const demo = new Demo(topo);
  const abort = (): void => void demo.stopAll().then(() => topo.destroy());
  signal.addEventListener('abort', abort, { once: true });
  console.log(`built sender - router - receiver in ${Math.round(topo.buildMs)} ms`);
  try {
    demo.whoAmI();
    await demo.udpAcrossTheRouter();
    await demo.grasp();
    await demo.chat();
    await demo.anycast();
    await demo.routerAlert();
    await demo.mld();
  } finally {
    signal.removeEventListener('abort', abort);
    await demo.stopAll();
    await topo.destroy();
    console.log('\nnamespaces removed');
  }
}
