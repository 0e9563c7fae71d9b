// The interface directory of a namespace: one cache per namespace, shared by every socket
// in it, kept current by the shared link watcher while some socket follows the namespace
// and refreshed by a fresh listing on a miss otherwise. Interfaces added or renamed after a
// socket opened are found by name without a restart; a removal reaches each object that
// named the interface once; nobody following means no watcher and no fd. Real links, real
// datagrams, checked against the kernel (/proc/net/netlink, /proc/self/fd).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { AnycastGroup, interfaces, MessageInfo, MulticastSocket, UdpSocket } from '../../lib';
import type { MembershipEvent } from '../../lib/sockets/multicast';
import { readNetFile } from '../../lib/links/procnet';
import { describeRoot } from '../helpers/privileged';
import { hostPair, useTopology } from '../helpers/topology';

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A veth pair between a and b, both ends named `name`, with fixed indexes, up, with 2001:db8:<net>::1 and ::2. */
function link(name: string, a: string, indexA: number, b: string, indexB: number, net: number): void {
  ip(['link', 'add', name, 'index', String(indexA), 'netns', a, 'type', 'veth', 'peer', 'name', name, 'index', String(indexB), 'netns', b]);
  ip(['-n', a, 'addr', 'add', `2001:db8:${net}::1/64`, 'dev', name, 'nodad']);
  ip(['-n', b, 'addr', 'add', `2001:db8:${net}::2/64`, 'dev', name, 'nodad']);
  ip(['-n', a, 'link', 'set', name, 'up']);
  ip(['-n', b, 'link', 'set', name, 'up']);
}

/** Renames a link (it must be down for that), brings it up again and gives it back `address` (going down took it). */
function rename(netns: string, from: string, to: string, address: string): void {
  ip(['-n', netns, 'link', 'set', from, 'down']);
  ip(['-n', netns, 'link', 'set', from, 'name', to]);
  ip(['-n', netns, 'link', 'set', to, 'up']);
  ip(['-n', netns, 'addr', 'add', address, 'dev', to, 'nodad']);
}

function removeAddedLinks(netns: string): void {
  const links = JSON.parse(execFileSync('ip', ['-n', netns, '-j', 'link']).toString()) as Array<{ ifname: string }>;
  for (const l of links) if (l.ifname !== 'lo' && l.ifname !== 'eth0') ip(['-n', netns, 'link', 'del', l.ifname]);
}

/** Our rtnetlink watchers in a namespace: NETLINK_ROUTE sockets bound to the link and address groups (0x111). */
function watchersIn(netns: string): number {
  return readNetFile('netlink', netns)
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && f[1] === '0' && f[3] === '00000111').length;
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Sends from `tx` until `rx` gets one datagram; resolves with what it reports about it.
 * A link just brought up may drop the first packets while it settles: bounded retries.
 */
async function across(tx: UdpSocket, rx: UdpSocket, options: { address: string; port: number; interface?: string | number }): Promise<MessageInfo> {
  let got: MessageInfo | undefined;
  const others: string[] = [];
  // Only these tries: an earlier datagram may still wait in the receiver's buffer.
  const tag = `try ${Math.random()}`;
  const onMessage = (data: Buffer, info: MessageInfo): void => {
    if (data.toString().startsWith(tag)) got ??= info;
    else others.push(data.toString());
  };
  rx.on('message', onMessage);
  const failures: string[] = [];
  try {
    for (let i = 0; i < 60 && got === undefined; i++) {
      await tx.send(`${tag} ${i}`, options).catch((err: Error) => failures.push(err.message));
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    rx.off('message', onMessage);
  }
  if (got === undefined) throw new Error(`nothing arrived after 60 datagrams to ${options.address}; other datagrams: ${others.length}; send failures: ${failures.slice(0, 3).join(' | ')}`);
  return got;
}

const G = 'ff02::1:71';

describeRoot('one interface directory per namespace: found without a restart (hostPair + veth pairs)', () => {
  const topo = useTopology(() => hostPair());
  afterEach(() => {
    removeAddedLinks(topo.ns('a'));
    removeAddedLinks(topo.ns('b'));
  });

  test('an interface added after a socket opened is found by name on the next send, and renamed, by its new name', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    await using tx = new UdpSocket({ netns: a });
    await using rx = new UdpSocket({ netns: b, port: 7610 });
    // The directory of a lists its interfaces now: n1 does not exist yet.
    await tx.send('known', { address: '2001:db8:1::2', port: 7610, interface: 'eth0' });
    await expect(tx.send('x', { address: '2001:db8:71::2', port: 7610, interface: 'n1' })).rejects.toMatchObject({ code: 'ENODEV', interface: 'n1', netns: a });
    link('n1', a, 71, b, 72, 71);
    expect(await across(tx, rx, { address: '2001:db8:71::2', port: 7610, interface: 'n1' })).toMatchObject({ interface: { index: 72, name: 'n1' } });
    rename(a, 'n1', 'r1', '2001:db8:71::1/64');
    expect(await across(tx, rx, { address: '2001:db8:71::2', port: 7610, interface: 'r1' })).toMatchObject({ address: '2001:db8:71::1' });
    // Also through a zone, by name and by index, and on connect().
    rename(a, 'r1', 'z1', 'fe80::71:1/64');
    ip(['-n', b, 'addr', 'add', 'fe80::71:2/64', 'dev', 'n1', 'nodad']);
    expect(await across(tx, rx, { address: 'fe80::71:2%z1', port: 7610 })).toMatchObject({ address: 'fe80::71:1%n1' });
    expect(await across(tx, rx, { address: 'fe80::71:2%71', port: 7610 })).toMatchObject({ address: 'fe80::71:1%n1' });
    await using connected = new UdpSocket({ netns: a });
    connected.connect('fe80::71:2%z1', 7610);
    expect(connected.remoteAddress()).toMatchObject({ address: 'fe80::71:2%z1', port: 7610 });
  });

  test('while followed, a rename reaches what sockets report: memberships and arrival interfaces', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    link('n2', a, 73, b, 74, 73);
    await using m = new MulticastSocket({ netns: a, port: 7611 });
    m.join(G, { interface: 'n2' });
    await using rx = new UdpSocket({ netns: a, port: 7612 });
    await using tx = new UdpSocket({ netns: b });
    expect(await across(tx, rx, { address: '2001:db8:73::1', port: 7612 })).toMatchObject({ interface: { index: 73, name: 'n2' } });
    rename(a, 'n2', 'r2', '2001:db8:73::1/64');
    // The watcher reports the rename: every socket of the namespace names the link anew.
    await until('the membership renamed', () => m.memberships()[0]?.interface.name === 'r2', 5000);
    expect(await across(tx, rx, { address: '2001:db8:73::1', port: 7612 })).toMatchObject({ interface: { index: 73, name: 'r2' } });
    // The new name joins (another group), the old one is no interface any more.
    expect(m.join('ff02::1:72', { interface: 'r2' })).toEqual([{ group: 'ff02::1:72', interface: { index: 73, name: 'r2' } }]);
    expect(() => m.join('ff02::1:73', { interface: 'n2' })).toThrow(expect.objectContaining({ code: 'ENODEV', interface: 'n2' }));
  });
});

describeRoot('a removal reaches every object that named the interface, once each (hostPair + veth pairs)', () => {
  const topo = useTopology(() => hostPair());
  afterEach(() => removeAddedLinks(topo.ns('a')));

  test('a device-bound UdpSocket, a MulticastSocket membership and an AnycastGroup: one ENODEV each, one membership event', async () => {
    const a = topo.ns('a');
    link('d1', a, 75, topo.ns('b'), 76, 75);
    await using bound = new UdpSocket({ netns: a, device: 'd1' });
    await using m = new MulticastSocket({ netns: a, port: 7613 });
    m.join(G, { interface: 'd1' });
    m.join(G, { interface: 'eth0' });
    await using group = new AnycastGroup('2001:db8:75::99', { netns: a, interface: 'd1' });
    const errors: Record<string, Error[]> = { bound: [], m: [], group: [] };
    const memberships: MembershipEvent[] = [];
    bound.on('error', (e: Error) => errors.bound.push(e));
    m.on('error', (e: Error) => errors.m.push(e));
    m.on('membership', (e: MembershipEvent) => memberships.push(e));
    group.on('error', (e: Error) => errors.group.push(e));
    expect(watchersIn(a)).toBe(1);

    ip(['-n', a, 'link', 'del', 'd1']);
    await until('every error', () => errors.bound.length > 0 && errors.m.length > 0 && errors.group.length > 0);
    // A later removal of another link, and time for duplicates to show: nothing more.
    link('d2', a, 77, topo.ns('b'), 78, 77);
    ip(['-n', a, 'link', 'del', 'd2']);
    await new Promise((r) => setTimeout(r, 200));
    for (const name of ['bound', 'm', 'group']) {
      expect(errors[name]).toHaveLength(1);
      expect(errors[name][0]).toMatchObject({ code: 'ENODEV', syscall: 'RTM_DELLINK', interface: 'd1 (75)', netns: a });
      expect(errors[name][0].message).toMatch(new RegExp(`^RTM_DELLINK ENODEV: interface d1 \\(75\\) was removed from netns ${a}: .+ \\(interface d1 \\(75\\), netns ${a}\\)$`));
    }
    expect(memberships).toEqual([{ type: 'left', group: G, interface: { index: 75, name: 'd1' }, reason: 'interface-removed' }]);
    expect(m.memberships().map((x) => x.interface.name)).toEqual(['eth0']);
  });

  test("a send's own error keeps its description (the kernel's result for that datagram, not a thrown call)", async () => {
    await using tx = new UdpSocket({ netns: topo.ns('a') });
    const err = await tx.send('x', { address: '2001:db8:ffff::1', port: 9 }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toMatchObject({ code: 'ENETUNREACH', syscall: 'sendmsg', address: '2001:db8:ffff::1', port: 9, netns: topo.ns('a') });
    expect(err?.message).toBe(`sendmsg ENETUNREACH: network is unreachable ([2001:db8:ffff::1]:9, netns ${topo.ns('a')})`);
  });
});

describeRoot('nobody following, nothing held (hostPair)', () => {
  const topo = useTopology(() => hostPair());

  test('interfaces.* lookups answer as the namespace is now: a name deleted and re-created under a new index', () => {
    const a = topo.ns('a');
    ip(['-n', a, 'link', 'add', 'q1', 'index', '81', 'type', 'veth', 'peer', 'name', 'q1p', 'index', '91']);
    try {
      expect(interfaces.nameToIndex('q1', { netns: a })).toBe(81);
      expect(interfaces.indexToName(81, { netns: a })).toBe('q1');
      ip(['-n', a, 'link', 'del', 'q1']);
      ip(['-n', a, 'link', 'add', 'q1', 'index', '82', 'type', 'veth', 'peer', 'name', 'q1p', 'index', '92']);
      // Nothing follows a: no watcher has told the directory; the answer still is the new index.
      expect(watchersIn(a)).toBe(0);
      expect(interfaces.nameToIndex('q1', { netns: a })).toBe(82);
      expect(interfaces.resolve('q1', 'spec', a)).toEqual({ index: 82, name: 'q1' });
      expect(() => interfaces.indexToName(81, { netns: a })).toThrow(expect.objectContaining({ code: 'ENODEV' }) as Error);
    } finally {
      ip(['-n', a, 'link', 'del', 'q1']);
    }
  });

  test('lookups alone start no watcher; the first follower starts one, the last one closes it and no fd is left', async () => {
    const a = topo.ns('a');
    // Let anything a previous test closed settle before counting.
    await new Promise((r) => setTimeout(r, 50));
    const fdsBefore = openFds();
    {
      await using plain = new UdpSocket({ netns: a });
      await using m = new MulticastSocket({ netns: a, port: 7614 });
      // Names looked up (a send, a zone, a multicast interface): a listing, no watcher.
      await plain.send('x', { address: '2001:db8:1::2', port: 9, interface: 'eth0' });
      await plain.send('x', { address: 'fe80::2%eth0', port: 9 });
      m.setMulticastInterface('eth0');
      expect(watchersIn(a)).toBe(0);
      // Following: a device, a membership, own addresses; one watcher for all of them.
      await using bound = new UdpSocket({ netns: a, device: 'eth0' });
      m.join(G, { interface: 'eth0' });
      await using quiet = new MulticastSocket({ netns: a, port: 7615, ignoreOwn: true });
      expect(watchersIn(a)).toBe(1);
      await bound.close();
      await m.close();
      expect(watchersIn(a)).toBe(1);
      await quiet.close();
      expect(watchersIn(a)).toBe(0);
      // After the watcher, lookups go on by listing.
      await plain.send('x', { address: '2001:db8:1::2', port: 9, interface: 'eth0' });
      expect(watchersIn(a)).toBe(0);
    }
    expect(openFds()).toBe(fdsBefore);
  });

  test('ignoreOwn knows an address added after the socket opened (the watcher keeps the directory current)', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    await using quiet = new MulticastSocket({ netns: b, port: 7616, ignoreOwn: true });
    quiet.join(G, { interface: 'eth0' });
    const heard: string[] = [];
    quiet.on('message', (_d: Buffer, info: MessageInfo) => heard.push(info.address));
    // a's datagrams arrive; then a's address becomes b's own too (a host does not hear itself).
    await using tx = new UdpSocket({ netns: a, address: '2001:db8:1::1' });
    for (let i = 0; i < 30 && heard.length === 0; i++) {
      await tx.send('from a', { address: G, port: 7616, interface: 'eth0' });
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(heard[0]).toBe('2001:db8:1::1');
    ip(['-n', b, 'addr', 'add', '2001:db8:1::1/128', 'dev', 'lo', 'nodad']);
    try {
      await new Promise((r) => setTimeout(r, 100));
      const before = quiet.stats.own;
      for (let i = 0; i < 5; i++) await tx.send('from a, now "own"', { address: G, port: 7616, interface: 'eth0' });
      await until('the drops', () => quiet.stats.own >= before + 5);
    } finally {
      ip(['-n', b, 'addr', 'del', '2001:db8:1::1/128', 'dev', 'lo']);
    }
  });
});
