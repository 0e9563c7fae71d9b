// Link flaps: an interface set down and up again, with and without keep_addr_on_down, while
// an AnycastGroup, a MulticastSocket membership or a RouterAlertSocket tap is open. Traffic
// must flow after the flap as it did before: 30 datagrams each time. Without
// keep_addr_on_down the kernel removes the interface's addresses on down; the test puts
// them back after up, as the host's configuration (or SLAAC) would.
import { AnycastGroup, AnycastStateEvent } from '../../lib/sockets/anycast';
import { hopByHop, MessageInfo, MulticastSocket, RouterAlertPacket, RouterAlertSocket, UdpSocket } from '../../lib';
import { describeRoot } from '../helpers/privileged';
import { chain, hostPair, Topology, useTopology } from '../helpers/topology';

const ANYCAST = '2001:db8:1::99'; // inside hostPair's on-link prefix 2001:db8:1::/64
const ANYCAST_HEX = '20010db8000100000000000000000099';
const GROUP = 'ff12::db8:77'; // link-scope transient group
const COUNT = 30;

/** Polls until `check()` is true, at most `tries` times 20 ms apart; says whether it became true. */
async function until(check: () => boolean, tries = 250): Promise<boolean> {
  for (let i = 0; i < tries && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  return check();
}

/** Sends COUNT datagrams (awaiting each) and waits, bounded, until `received()` grew by COUNT; returns how many arrived. */
async function burst(send: (i: number) => Promise<unknown>, received: () => number): Promise<number> {
  const start = received();
  for (let i = 0; i < COUNT; i++) await send(i);
  await until(() => received() - start >= COUNT);
  return received() - start;
}

/** The host's interface goes down and up; without keep_addr_on_down its addresses are then put back. */
async function flap<H extends string>(topo: Topology<H>, host: H, ifname: string, keep: boolean, addresses: string[], between?: () => Promise<void>): Promise<void> {
  await topo.exec(host, ['ip', 'link', 'set', ifname, 'down']);
  await between?.();
  await topo.exec(host, ['ip', 'link', 'set', ifname, 'up']);
  if (!keep) for (const a of addresses) await topo.exec(host, ['ip', 'addr', 'replace', a, 'dev', ifname, 'nodad']);
}

async function setKeep<H extends string>(topo: Topology<H>, host: H, ifname: string, keep: boolean): Promise<void> {
  await topo.exec(host, ['sysctl', '-q', '-w', `net.ipv6.conf.${ifname}.keep_addr_on_down=${keep ? 1 : 0}`]);
}

async function anycastRoutes(topo: Topology<'a' | 'b'>): Promise<string[]> {
  const { stdout } = await topo.exec('b', ['ip', '-6', 'route', 'show', 'table', 'local', 'type', 'anycast']);
  return stdout.split('\n').filter((l) => l.includes(ANYCAST));
}

async function anycastLines(topo: Topology<'a' | 'b'>): Promise<string[]> {
  const { stdout } = await topo.exec('b', ['cat', '/proc/net/anycast6']);
  return stdout.split('\n').filter((l) => l.includes(ANYCAST_HEX));
}

describeRoot('A link flap: AnycastGroup heals', () => {
  const topo = useTopology(async () => {
    const t = await hostPair();
    // A member answers neighbour solicitations for anycast after up to proxy_delay: 0 keeps it quick.
    await t.exec('b', ['sysctl', '-q', '-w', 'net.ipv6.neigh.eth0.proxy_delay=0']);
    return t;
  });
  const B_ADDRESSES = ['2001:db8:1::2/64', 'fe80::2/64'];

  for (const keep of [true, false]) {
    test(`keep_addr_on_down=${keep ? 1 : 0}: 30/30 before, 'down' then 'up', 30/30 after`, async () => {
      await setKeep(topo, 'b', 'eth0', keep);
      await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', port: 5400, netns: topo.ns('b') });
      await using client = new UdpSocket({ netns: topo.ns('a') });
      const events: AnycastStateEvent[] = [];
      group.on('down', (e) => events.push(e));
      group.on('up', (e) => events.push(e));
      const warnings: Error[] = [];
      group.on('warning', (w) => warnings.push(w));
      let received = 0;
      group.on('message', () => received++);
      const send = (i: number): Promise<unknown> => client.send(`d${i}`, { address: ANYCAST, port: 5400 });

      expect(group.state).toBe('up');
      expect(await burst(send, () => received)).toBe(COUNT);

      await flap(topo, 'b', 'eth0', keep, B_ADDRESSES, async () => {
        expect(await until(() => group.state === 'down')).toBe(true);
        // What the kernel did: the route is gone, the join is still listed with its one user.
        expect(await anycastRoutes(topo)).toEqual([]);
        expect(await anycastLines(topo)).toEqual([expect.stringMatching(/\s1\s*$/)]);
      });
      expect(await until(() => group.state === 'up')).toBe(true);
      expect(await anycastRoutes(topo)).toHaveLength(1);
      expect(await anycastLines(topo)).toEqual([expect.stringMatching(/\s1\s*$/)]);
      // The client's neighbour entry may have failed while b was down.
      await topo.exec('a', ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
      expect(await burst(send, () => received)).toBe(COUNT);

      const index = topo.ifindex('b', 'eth0');
      expect(events).toEqual([
        { state: 'down', reason: 'link-down', interface: { index, name: 'eth0' } },
        { state: 'up', reason: keep ? 'link-up' : 'address-added', interface: { index, name: 'eth0' } },
      ]);
      expect(warnings).toEqual([]);
      await group.close();
      expect(await anycastLines(topo)).toEqual([]);
      expect(await anycastRoutes(topo)).toEqual([]);
    });
  }

  test('two groups on one address in one process heal together (both joins renewed: the route returns only with a fresh entry)', async () => {
    await setKeep(topo, 'b', 'eth0', true);
    await using served = new AnycastGroup(ANYCAST, { interface: 'eth0', port: 5401, netns: topo.ns('b') });
    await using holder = new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('b') });
    await using client = new UdpSocket({ netns: topo.ns('a') });
    let received = 0;
    served.on('message', () => received++);
    const send = (i: number): Promise<unknown> => client.send(`t${i}`, { address: ANYCAST, port: 5401 });
    expect(await anycastLines(topo)).toEqual([expect.stringMatching(/\s2\s*$/)]);
    await flap(topo, 'b', 'eth0', true, [], async () => {
      expect(await until(() => served.state === 'down' && holder.state === 'down')).toBe(true);
    });
    expect(await until(() => served.state === 'up' && holder.state === 'up')).toBe(true);
    expect(await anycastRoutes(topo)).toHaveLength(1);
    expect(await anycastLines(topo)).toEqual([expect.stringMatching(/\s2\s*$/)]);
    await topo.exec('a', ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
    expect(await burst(send, () => received)).toBe(COUNT);
  });

  test('a join held outside the process keeps the route from returning: the group stays down and warns', async () => {
    await setKeep(topo, 'b', 'eth0', true);
    await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('b') });
    // Another process's join of the same address on the same interface, held until killed.
    const outsider = topo.spawn('b', [
      '/usr/bin/python3',
      '-c',
      [
        'import socket, struct, sys',
        's = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)',
        `s.setsockopt(41, 27, socket.inet_pton(socket.AF_INET6, "${ANYCAST}") + struct.pack("i", socket.if_nametoindex("eth0")))`,
        'print("joined", flush=True)',
        'sys.stdin.read()',
      ].join('\n'),
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        outsider.stdout?.once('data', () => resolve());
        outsider.once('exit', (code) => reject(new Error(`the outside join exited with ${code}`)));
      });
      expect(await anycastLines(topo)).toEqual([expect.stringMatching(/\s2\s*$/)]);
      const warnings: Error[] = [];
      group.on('warning', (w) => warnings.push(w));
      await flap(topo, 'b', 'eth0', true, [], async () => void (await until(() => group.state === 'down')));
      expect(await until(() => warnings.length > 0)).toBe(true);
      expect(warnings[0]).toMatchObject({ code: 'ERR_ANYCAST_HELD_ELSEWHERE' });
      expect(group.state).toBe('down');
      expect(await anycastRoutes(topo)).toEqual([]);
    } finally {
      outsider.stdin?.end();
      outsider.kill();
    }
  });
});

describeRoot('A link flap: MulticastSocket memberships keep receiving', () => {
  const topo = useTopology(() => hostPair());

  for (const keep of [true, false]) {
    test(`keep_addr_on_down=${keep ? 1 : 0}: 30/30 before and after the receiver's link goes down and up`, async () => {
      await setKeep(topo, 'b', 'eth0', keep);
      await using rx = new MulticastSocket({ port: 5410, netns: topo.ns('b') });
      rx.join(GROUP, { interface: 'eth0' });
      await using tx = new MulticastSocket({ netns: topo.ns('a') });
      let received = 0;
      rx.on('message', (_d: Buffer, info: MessageInfo) => {
        if (info.destination === GROUP) received++;
      });
      const send = (i: number): Promise<unknown> => tx.send(`m${i}`, { address: GROUP, port: 5410, interface: 'eth0' });
      expect(await burst(send, () => received)).toBe(COUNT);
      await flap(topo, 'b', 'eth0', keep, ['2001:db8:1::2/64', 'fe80::2/64']);
      // The sender's side of the veth pair lost carrier meanwhile: wait for it to return.
      expect(await until(() => topo.execSync('a', ['cat', '/sys/class/net/eth0/carrier']).stdout.trim() === '1')).toBe(true);
      expect(await burst(send, () => received)).toBe(COUNT);
      expect(rx.memberships()).toEqual([expect.objectContaining({ group: GROUP })]);
    });
  }
});

describeRoot('A link flap: RouterAlertSocket taps keep tapping', () => {
  const topo = useTopology(() => chain());
  const RECEIVER = '2001:db8:2::2';

  for (const keep of [true, false]) {
    test(`keep_addr_on_down=${keep ? 1 : 0}: 30/30 tapped and forwarded before and after the router's ingress link goes down and up`, async () => {
      await setKeep(topo, 'router', 'eth0', keep);
      await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
      await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 5420 });
      await using tx = new UdpSocket({ netns: topo.ns('sender') });
      let tapped = 0;
      ra.on('packet', (p: RouterAlertPacket) => {
        tapped++;
        void ra.forward(p);
      });
      let received = 0;
      rx.on('message', () => received++);
      const send = (i: number): Promise<unknown> => tx.send(`r${i}`, { address: RECEIVER, port: 5420, hopByHop: [hopByHop.routerAlert(5)] });
      expect(await burst(send, () => received)).toBe(COUNT);
      expect(tapped).toBe(COUNT);
      await flap(topo, 'router', 'eth0', keep, ['2001:db8:1::2/64', 'fe80::2/64']);
      expect(await until(() => topo.execSync('sender', ['cat', '/sys/class/net/eth0/carrier']).stdout.trim() === '1')).toBe(true);
      // The sender's neighbour entry for the router may have failed meanwhile.
      await topo.exec('sender', ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
      expect(await burst(send, () => received)).toBe(COUNT);
      expect(tapped).toBe(2 * COUNT);
    });
  }
});
