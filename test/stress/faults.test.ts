// Faults: interfaces that come and go under open sockets, and a namespace deleted under
// them. A MulticastSocket joined with interface 'all' follows new links, keeps its
// memberships across a flap (the kernel does), forgets a removed link (and the kernel's
// record of it, so a new link with the same index can be joined); memberships and device
// bindings that named a removed interface end with an ENODEV 'error'. A pending socket
// error (EPOLLERR) is reported without the socket going deaf; sockets dropped without close()
// are still collected; a socket outlives the name of its namespace. Every check is against
// the kernel: /proc/net/igmp6, /proc/net/mcfilter6, /proc/net/netlink, datagrams that arrive
// or not.
import { execFileSync } from 'node:child_process';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { interfaces, MessageInfo, UdpSocket } from '../../lib';
import { MembershipEvent, MulticastSocket } from '../../lib/sockets/multicast';
import { igmp6, readNetFile } from '../../lib/links/procnet';
import { describeRoot } from '../helpers/privileged';
import { hostPair, useTopology } from '../helpers/topology';

function ip(args: string[], input?: string): void {
  execFileSync('ip', args, { input, stdio: ['pipe', 'ignore', 'pipe'] });
}

/** A veth pair between two namespaces, both ends named `name`, with the given indexes. */
function vethPair(name: string, nsA: string, indexA: number, nsB: string, indexB: number): void {
  ip(['link', 'add', name, 'index', String(indexA), 'netns', nsA, 'type', 'veth', 'peer', 'name', name, 'index', String(indexB), 'netns', nsB]);
}

/** Deletes the links a test added (all but lo and eth0; their veth peers go too), so a failure does not spill into the next test. */
function removeAddedLinks(netns: string): void {
  const links = JSON.parse(execFileSync('ip', ['-n', netns, '-j', 'link']).toString()) as Array<{ ifname: string }>;
  for (const l of links) if (l.ifname !== 'lo' && l.ifname !== 'eth0') ip(['-n', netns, 'link', 'del', l.ifname]);
}

/** Polls `cond` until it holds; rejects after timeoutMs. */
async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Everything a socket reports by itself: membership changes, warnings, errors. */
class Reports {
  readonly memberships: MembershipEvent[] = [];
  readonly warnings: Error[] = [];
  readonly errors: Error[] = [];

  constructor(sock: MulticastSocket | UdpSocket) {
    if (sock instanceof MulticastSocket) sock.on('membership', (e: MembershipEvent) => this.memberships.push(e));
    sock.on('warning', (e: Error) => this.warnings.push(e));
    sock.on('error', (e: Error) => this.errors.push(e));
  }
}

/**
 * Sends from `tx` until `rx` gets a datagram on `ifname` (a freshly upped link may drop the
 * first packets while carrier settles); rejects after a bounded number of tries.
 */
async function deliver(tx: UdpSocket, rx: UdpSocket, options: { address: string; port: number; interface: string }, ifname: string): Promise<MessageInfo> {
  let got: MessageInfo | undefined;
  const onMessage = (_data: Buffer, info: MessageInfo): void => {
    if (info.interface?.name === ifname) got = info;
  };
  rx.on('message', onMessage);
  try {
    for (let i = 0; i < 30 && got === undefined; i++) {
      await tx.send(`try ${i}`, options);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    rx.off('message', onMessage);
  }
  if (got === undefined) throw new Error(`nothing arrived on ${ifname} after 30 datagrams`);
  return got;
}

/** Whether b receives nothing on `ifname` while `count` datagrams are sent (used after the sends of a positive check). */
async function silent(tx: UdpSocket, rx: UdpSocket, options: { address: string; port: number; interface: string }, ifname: string, count = 5): Promise<boolean> {
  let seen = false;
  const onMessage = (_data: Buffer, info: MessageInfo): void => {
    if (info.interface?.name === ifname) seen = true;
  };
  rx.on('message', onMessage);
  for (let i = 0; i < count; i++) {
    await tx.send(`quiet ${i}`, options);
    await new Promise((r) => setTimeout(r, 30));
  }
  rx.off('message', onMessage);
  return !seen;
}

/** Groups joined on an interface of a namespace, from /proc/net/igmp6. */
function groupsOn(netns: string, ifname: string): string[] {
  return igmp6(netns)
    .filter((e) => e.interface.name === ifname)
    .map((e) => e.address);
}

/** Our rtnetlink watchers in a namespace: NETLINK_ROUTE sockets bound to the link and address groups (0x111). */
function watchersIn(netns: string): number {
  return readNetFile('netlink', netns)
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && f[1] === '0' && f[3] === '00000111').length;
}

const G = 'ff02::13';
const PORT = 7300;

describeRoot("a MulticastSocket joined with interface 'all' follows links that come and go (hostPair + veth pairs)", () => {
  const topo = useTopology(() => hostPair());
  afterEach(() => removeAddedLinks(topo.ns('a')));

  test('joins a new link when it comes up, keeps it across a flap, forgets it when removed, joins its same-index successor', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    await using rx = new MulticastSocket({ netns: a, port: PORT, reuseAddr: true });
    const reports = new Reports(rx);
    await using tx = new UdpSocket({ netns: b });
    expect(rx.join(G, { interface: 'all' }).map((m) => m.interface.name)).toEqual(['eth0']);

    // A new link appears (down) and comes up: joined there, reported as such.
    vethPair('n1', a, 40, b, 41);
    ip(['-n', b, 'link', 'set', 'n1', 'up']);
    ip(['-n', a, 'link', 'set', 'n1', 'up']);
    await until('join on n1', () => reports.memberships.length === 1);
    expect(reports.memberships).toEqual([{ type: 'joined', group: G, interface: { index: 40, name: 'n1' }, reason: 'interface-up' }]);
    expect(groupsOn(a, 'n1')).toContain(G);
    expect(rx.memberships().map((m) => m.interface.name)).toEqual(['eth0', 'n1']);
    const first = await deliver(tx, rx, { address: G, port: PORT, interface: 'n1' }, 'n1');
    expect(first).toMatchObject({ destination: G, interface: { index: 40, name: 'n1' } });

    // Flap: the kernel keeps the membership across down and up, so nothing is re-joined
    // and nothing is reported; datagrams arrive again once it is up.
    ip(['-n', a, 'link', 'set', 'n1', 'down']);
    expect(groupsOn(a, 'n1')).toContain(G);
    ip(['-n', a, 'link', 'set', 'n1', 'up']);
    await deliver(tx, rx, { address: G, port: PORT, interface: 'n1' }, 'n1');
    expect(reports.memberships).toHaveLength(1);
    expect(groupsOn(a, 'n1')).toContain(G);

    // Removed: the membership is dropped and reported; no error, 'all' chose that link.
    ip(['-n', a, 'link', 'del', 'n1']);
    await until('leave on n1', () => reports.memberships.length === 2);
    expect(reports.memberships[1]).toEqual({ type: 'left', group: G, interface: { index: 40, name: 'n1' }, reason: 'interface-removed' });
    expect(rx.memberships().map((m) => m.interface.name)).toEqual(['eth0']);

    // A new link with the same index: joinable only because the socket's kernel record of
    // the old membership was dropped too (else EADDRINUSE, and a 'warning').
    vethPair('n1', a, 40, b, 41);
    ip(['-n', b, 'link', 'set', 'n1', 'up']);
    ip(['-n', a, 'link', 'set', 'n1', 'up']);
    await until('join on the new n1', () => reports.memberships.length === 3);
    expect(reports.memberships[2]).toEqual({ type: 'joined', group: G, interface: { index: 40, name: 'n1' }, reason: 'interface-up' });
    await deliver(tx, rx, { address: G, port: PORT, interface: 'n1' }, 'n1');
    expect(reports.warnings).toEqual([]);
    expect(reports.errors).toEqual([]);
    ip(['-n', a, 'link', 'del', 'n1']);
    await until('leave again', () => reports.memberships.length === 4);
  });

  test('an interface left explicitly stays an exception until it goes; leave all stops following', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    await using rx = new MulticastSocket({ netns: a, port: PORT + 1 });
    const reports = new Reports(rx);
    await using tx = new UdpSocket({ netns: b });
    vethPair('n2', a, 42, b, 43);
    ip(['-n', a, 'link', 'set', 'n2', 'up']);
    ip(['-n', b, 'link', 'set', 'n2', 'up']);
    expect(rx.join(G, { interface: 'all' }).map((m) => m.interface.name)).toEqual(['eth0', 'n2']);
    rx.leave(G, { interface: 'n2' });
    // A flap of the excepted link does not bring the group back.
    ip(['-n', a, 'link', 'set', 'n2', 'down']);
    ip(['-n', a, 'link', 'set', 'n2', 'up']);
    await deliver(tx, rx, { address: G, port: PORT + 1, interface: 'eth0' }, 'eth0');
    expect(await silent(tx, rx, { address: G, port: PORT + 1, interface: 'n2' }, 'n2')).toBe(true);
    expect(groupsOn(a, 'n2')).not.toContain(G);

    // After leave 'all', a link that comes up is not joined.
    rx.leave(G, { interface: 'all' });
    ip(['-n', a, 'link', 'set', 'n2', 'down']);
    ip(['-n', a, 'link', 'set', 'n2', 'up']);
    // The flap's events have been handled once a datagram sent after them has arrived.
    rx.join('ff02::14', { interface: 'eth0' });
    await deliver(tx, rx, { address: 'ff02::14', port: PORT + 1, interface: 'eth0' }, 'eth0');
    expect(groupsOn(a, 'n2')).not.toContain(G);
    expect(reports.memberships).toEqual([]);
    ip(['-n', a, 'link', 'del', 'n2']);
  });

  test('a source-specific membership follows too, and leaves with its link', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    await using rx = new MulticastSocket({ netns: a, port: PORT + 2 });
    const reports = new Reports(rx);
    const S = '2001:db8:1::2';
    rx.join('ff3e::1', { interface: 'all', source: S });
    vethPair('n3', a, 44, b, 45);
    ip(['-n', a, 'link', 'set', 'n3', 'up']);
    await until('source-specific join on n3', () => reports.memberships.length === 1);
    expect(reports.memberships[0]).toEqual({ type: 'joined', group: 'ff3e::1', interface: { index: 44, name: 'n3' }, source: S, reason: 'interface-up' });
    // Idx Device Multicast-Address Source-Address INC EXC: one socket includes S on n3.
    expect(readNetFile('mcfilter6', a)).toMatch(/\b44\s+n3\s+ff3e0{27}1\s+20010db80{3}10{19}2\s+1\s+0\b/);
    ip(['-n', a, 'link', 'del', 'n3']);
    await until('leave on n3', () => reports.memberships.length === 2);
    expect(reports.memberships[1]).toEqual({ type: 'left', group: 'ff3e::1', interface: { index: 44, name: 'n3' }, source: S, reason: 'interface-removed' });
    expect(rx.memberships().map((m) => m.interface.name)).toEqual(['eth0']);
  });

  test('IPv4: follows a new link; a follow-up join the kernel refuses is a warning, not an error', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    await using rx = new MulticastSocket({ family: 4, netns: a, port: PORT + 3 });
    const reports = new Reports(rx);
    await using tx = new UdpSocket({ family: 4, netns: b });
    rx.join('224.0.1.13', { interface: 'all' });
    vethPair('n4', a, 46, b, 47);
    ip(['-n', a, 'addr', 'add', '198.51.100.1/24', 'dev', 'n4']);
    ip(['-n', b, 'addr', 'add', '198.51.100.2/24', 'dev', 'n4']);
    ip(['-n', b, 'link', 'set', 'n4', 'up']);
    ip(['-n', a, 'link', 'set', 'n4', 'up']);
    await until('IPv4 join on n4', () => reports.memberships.length === 1);
    expect(reports.memberships[0]).toMatchObject({ type: 'joined', group: '224.0.1.13', interface: { name: 'n4' } });
    const info = await deliver(tx, rx, { address: '224.0.1.13', port: PORT + 3, interface: 'n4' }, 'n4');
    expect(info.destination).toBe('224.0.1.13');

    // net.ipv4.igmp_max_memberships is per namespace: at 2, a third group on this socket is refused.
    ip(['netns', 'exec', a, 'sysctl', '-qw', 'net.ipv4.igmp_max_memberships=2']);
    try {
      vethPair('n5', a, 48, b, 49);
      ip(['-n', a, 'link', 'set', 'n5', 'up']);
      await until('warning for n5', () => reports.warnings.length === 1);
      expect(reports.warnings[0]).toMatchObject({ code: 'ENOBUFS', option: 'MCAST_JOIN_GROUP', interface: 'n5 (48)', netns: a });
      expect(reports.warnings[0].message).toMatch(/igmp_max_memberships/);
      expect(reports.memberships).toHaveLength(1);
      expect(reports.errors).toEqual([]);
      expect(rx.memberships().map((m) => m.interface.name)).toEqual(['eth0', 'n4']);
    } finally {
      ip(['netns', 'exec', a, 'sysctl', '-qw', 'net.ipv4.igmp_max_memberships=20']);
      ip(['-n', a, 'link', 'del', 'n4']);
      ip(['-n', a, 'link', 'del', 'n5']);
    }
  });

  test('without a warning listener, a refused follow-up join is a process warning', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    await using rx = new MulticastSocket({ family: 4, netns: a, port: PORT + 4 });
    rx.join('224.0.1.14', { interface: 'all' });
    ip(['netns', 'exec', a, 'sysctl', '-qw', 'net.ipv4.igmp_max_memberships=1']);
    // Jest gives each test file a copy of `process` whose events never fire; the warning
    // goes to the real one.
    const realProcess = vm.runInThisContext('process') as NodeJS.Process;
    const warned = new Promise<Error>((resolve) => realProcess.once('warning', resolve));
    try {
      vethPair('n6', a, 50, b, 51);
      ip(['-n', a, 'link', 'set', 'n6', 'up']);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no process warning in 3 s')), 3000)));
      const w = await Promise.race([warned, late]).finally(() => clearTimeout(timer));
      expect(w).toMatchObject({ name: 'Ip6sockWarning', code: 'ENOBUFS' });
    } finally {
      ip(['netns', 'exec', a, 'sysctl', '-qw', 'net.ipv4.igmp_max_memberships=20']);
      ip(['-n', a, 'link', 'del', 'n6']);
    }
  });
});

describeRoot('interfaces named explicitly that are removed: an ENODEV error, never a silent stop (hostPair + veth pairs)', () => {
  const topo = useTopology(() => hostPair());
  afterEach(() => removeAddedLinks(topo.ns('a')));

  test('a membership joined on a named interface: left, reported, and an error naming interface and group', async () => {
    const a = topo.ns('a');
    await using rx = new MulticastSocket({ netns: a, port: PORT + 10 });
    const reports = new Reports(rx);
    vethPair('m1', a, 60, topo.ns('b'), 61);
    ip(['-n', a, 'link', 'set', 'm1', 'up']);
    rx.join(G, { interface: 'm1' });
    rx.join(G, { interface: 'eth0' });
    ip(['-n', a, 'link', 'del', 'm1']);
    await until('the error', () => reports.errors.length === 1);
    expect(reports.memberships).toEqual([{ type: 'left', group: G, interface: { index: 60, name: 'm1' }, reason: 'interface-removed' }]);
    expect(reports.errors[0]).toMatchObject({ code: 'ENODEV', errno: -19, syscall: 'RTM_DELLINK', interface: 'm1 (60)', netns: a });
    expect(reports.errors[0].message).toMatch(new RegExp(`interface m1 \\(60\\) was removed from netns ${a}: .*membership ${G}`));
    // The socket goes on with what it still has.
    expect(rx.closed).toBe(false);
    expect(rx.memberships().map((m) => m.interface.name)).toEqual(['eth0']);
    expect(groupsOn(a, 'eth0')).toContain(G);
  });

  test('a socket bound to a device (device option) that is removed emits ENODEV; sends then fail as the kernel says', async () => {
    const a = topo.ns('a');
    vethPair('m2', a, 62, topo.ns('b'), 63);
    ip(['-n', a, 'link', 'set', 'm2', 'up']);
    ip(['-n', a, 'addr', 'add', '2001:db8:62::1/64', 'dev', 'm2', 'nodad']);
    await using sock = new UdpSocket({ netns: a, device: 'm2', port: PORT + 11 });
    const reports = new Reports(sock);
    sock.on('message', () => undefined);
    expect(await sock.send('x', { address: '2001:db8:62::2', port: 9 })).toBe(1);
    ip(['-n', a, 'link', 'del', 'm2']);
    await until('the error', () => reports.errors.length === 1);
    expect(reports.errors[0]).toMatchObject({ code: 'ENODEV', syscall: 'RTM_DELLINK', interface: 'm2 (62)', netns: a });
    expect(reports.errors[0].message).toMatch(/bound to it \(device option\)/);
    expect(sock.closed).toBe(false);
    await expect(sock.send('x', { address: '2001:db8:62::2', port: 9 })).rejects.toMatchObject({ code: 'ENETUNREACH' });
    // Once: a later removal of another link says nothing more.
    vethPair('m3', a, 64, topo.ns('b'), 65);
    ip(['-n', a, 'link', 'del', 'm3']);
    await new Promise((r) => setTimeout(r, 100));
    expect(reports.errors).toHaveLength(1);
  });

  test('one shared watcher per namespace: opened by the first socket that needs it, closed with the last', async () => {
    const a = topo.ns('a');
    expect(watchersIn(a)).toBe(0);
    // Closed by the test in the order it checks; `await using` closes them if it throws first.
    await using one = new MulticastSocket({ netns: a, port: PORT + 12, reuseAddr: true });
    await using two = new MulticastSocket({ netns: a, port: PORT + 12, reuseAddr: true });
    // No join yet, no watcher.
    expect(watchersIn(a)).toBe(0);
    one.join(G, { interface: 'all' });
    two.join(G, { interface: 'eth0' });
    await using bound = new UdpSocket({ netns: a, device: 'eth0' });
    expect(watchersIn(a)).toBe(1);
    await one.close();
    await bound.close();
    expect(watchersIn(a)).toBe(1);
    await two.close();
    expect(watchersIn(a)).toBe(0);
    // A public watcher is its own.
    await using w = interfaces.watch({ netns: a });
    expect(w.list().length).toBeGreaterThan(0);
    expect(watchersIn(a)).toBe(1);
  });
});

describeRoot('a pending socket error is reported, and reading goes on (hostPair)', () => {
  const topo = useTopology(() => hostPair());

  test('ICMPv6 port unreachable on a connected socket: an ECONNREFUSED error, then the next datagram arrives', async () => {
    await using sock = new UdpSocket({ netns: topo.ns('a') });
    sock.connect('2001:db8:1::2', 7501);
    const got: string[] = [];
    const errors: Error[] = [];
    sock.on('message', (data: Buffer) => got.push(data.toString()));
    sock.on('error', (err: Error) => errors.push(err));
    // Nothing listens on b's port 7501: b answers with port unreachable, which the kernel
    // turns into a pending error on the connected socket (EPOLLERR).
    await sock.send('anyone?');
    await until('the error', () => errors.length > 0);
    expect(errors[0]).toMatchObject({ code: 'ECONNREFUSED', syscall: 'recvmmsg' });
    // Now something listens there and answers: the socket still reads.
    await using peer = new UdpSocket({ netns: topo.ns('b'), port: 7501 });
    const local = sock.address();
    await peer.send('still reading', { address: '2001:db8:1::1', port: local.port });
    await until('the datagram', () => got.length > 0);
    expect(got).toEqual(['still reading']);
  });
});

describeRoot('sockets dropped without close() (hostPair)', () => {
  const topo = useTopology(() => hostPair());

  test('the shared watcher holds sockets weakly: a dropped socket is collected, its fd closed, the watcher with it', async () => {
    const a = topo.ns('a');
    v8.setFlagsFromString('--expose_gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // Made and dropped in a function of its own, so no variable here keeps it.
    ((): void => {
      const dropped = new MulticastSocket({ netns: a, port: PORT + 20 });
      dropped.join('ff02::99', { interface: 'all' });
      const bound = new UdpSocket({ netns: a, device: 'eth0' });
      void bound;
    })();
    expect(watchersIn(a)).toBe(1);
    expect(groupsOn(a, 'eth0')).toContain('ff02::99');
    for (let i = 0; i < 50 && watchersIn(a) > 0; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(watchersIn(a)).toBe(0);
    expect(groupsOn(a, 'eth0')).not.toContain('ff02::99');
  });
});

describeRoot('the namespace a socket lives in is deleted while the socket is open (hostPair)', () => {
  const topo = useTopology(() => hostPair());

  test('the socket keeps the namespace alive and working; the name is gone for new sockets; the last close frees it', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    // Closed by the test when it checks that the last close frees the namespace; `await
    // using` closes them too if an assertion throws before.
    await using inB = new UdpSocket({ netns: b, port: 7400 });
    await using mcastInB = new MulticastSocket({ netns: b, port: 7401 });
    mcastInB.join(G, { interface: 'all' });
    await using watcherInB = interfaces.watch({ netns: b });
    await using inA = new UdpSocket({ netns: a });
    await using watcherInA = interfaces.watch({ netns: a });
    const linksOfA: string[] = [];
    watcherInA.on('link', (e) => linksOfA.push(`${e.type} ${e.name}`));
    const carrierOfB: boolean[] = [];
    watcherInB.on('link', (e) => {
      if (e.name === 'eth0') carrierOfB.push(e.flags.running);
    });

    ip(['netns', 'delete', b]);
    expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(b);

    // Still there: a datagram from a arrives in b, and b's reply comes back.
    const got = new Promise<MessageInfo>((resolve) => inB.once('message', (_d: Buffer, info: MessageInfo) => resolve(info)));
    await inA.send('still there?', { address: '2001:db8:1::2', port: 7400 });
    const info = await got;
    expect(info).toMatchObject({ address: '2001:db8:1::1', interface: { name: 'eth0' } });
    const back = new Promise<Buffer>((resolve) => inA.once('message', (d: Buffer) => resolve(d)));
    await inB.send('yes', { address: info.address, port: info.port });
    expect((await back).toString()).toBe('yes');

    // The name is gone: anything new by that name is ENOENT, saying which namespace.
    expect(() => new UdpSocket({ netns: b })).toThrow(expect.objectContaining({ code: 'ENOENT', netns: b }));
    expect(() => interfaces.list({ netns: b })).toThrow(expect.objectContaining({ code: 'ENOENT', netns: b }));
    expect(() => interfaces.watch({ netns: b })).toThrow(expect.objectContaining({ code: 'ENOENT', netns: b, message: expect.stringMatching(/there is no network namespace/) }));
    // ...but what is open in it still watches it: b's side loses carrier when a's goes down.
    ip(['-n', a, 'link', 'set', 'eth0', 'down']);
    await until('b sees its carrier go', () => carrierOfB.includes(false));
    ip(['-n', a, 'link', 'set', 'eth0', 'up']);
    await until('b sees its carrier come back', () => carrierOfB[carrierOfB.length - 1] === true);
    expect(mcastInB.memberships().map((m) => m.interface.name)).toEqual(['eth0']);

    // Last reference closed: the kernel frees the namespace, and with it b's end of the
    // veth pair, so a's end goes too.
    expect(linksOfA.filter((l) => l.startsWith('removed'))).toEqual([]);
    await inB.close();
    await mcastInB.close();
    await watcherInB.close();
    await until('a sees eth0 removed', () => linksOfA.includes('removed eth0'), 10_000);
    expect(interfaces.list({ netns: a }).map((i) => i.name)).toEqual(['lo']);
  });
});
