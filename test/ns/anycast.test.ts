// AnycastGroup: argument checks (no privilege), then real anycast on namespace links: two
// servers on one bridge, failover when one leaves, ping, the kernel's errors, a router that
// may join off-link addresses, and no leaked joins or fds.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { AnycastGroup, AnycastGroupOptions, AnycastMessage, AnycastMessageInfo, AnycastReply } from '../../lib/sockets/anycast';
import { MessageInfo, UdpSocket } from '../../lib';
import { describeRoot } from '../helpers/privileged';
import { nextMessage } from '../helpers/wire';
import { chain, CommandError, lan, Topology, useTopology } from '../helpers/topology';

const ANYCAST = '2001:db8:1::99'; // inside the lan's on-link prefix 2001:db8:1::/64
const ANYCAST_HEX = '20010db8000100000000000000000099'; // as /proc/net/anycast6 writes it
const WAIT_MS = 5000; // bound for any one datagram; first contact may wait ~0.8 s for ND

/** Rejects when `promise` has not settled within `ms`, so no step can hang a test. */
function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A group that answers every datagram with `${name}:${data}`. */
function echoServer(name: string, netns: string, port: number, more: Partial<AnycastGroupOptions> = {}): AnycastGroup {
  const group = new AnycastGroup(ANYCAST, { ...more, interface: 'eth0', port, netns });
  group.on('message', (data: Buffer, info: AnycastMessageInfo) => {
    void info.reply(`${name}:${data.toString()}`);
  });
  return group;
}

/** The raw /proc/net/anycast6 lines of a host that mention `hex`, read by `cat` inside it (not by our parser). */
async function procLines<H extends string>(topo: Topology<H>, host: H, hex = ANYCAST_HEX): Promise<string[]> {
  const { stdout } = await topo.exec(host, ['cat', '/proc/net/anycast6']);
  return stdout.split('\n').filter((l) => l.includes(hex));
}

/** Polls until `check()` is true, at most `tries` times 20 ms apart. */
async function until(check: () => boolean, tries = 100): Promise<void> {
  for (let i = 0; i < tries && !check(); i++) await new Promise((r) => setTimeout(r, 20));
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describe('AnycastGroup rejects bad arguments before any system call', () => {
  // The interface is 'lo' of the caller's namespace: these throw before a socket exists.
  const cases: Array<[string, () => unknown, string]> = [
    ['address not a string', () => new AnycastGroup(42 as never, { interface: 'lo' }), 'ERR_INVALID_ARG_TYPE'],
    ['address missing', () => new AnycastGroup(undefined as never, { interface: 'lo' }), 'ERR_INVALID_ARG_TYPE'],
    ['address malformed', () => new AnycastGroup('2001:db8::g', { interface: 'lo' }), 'ERR_INVALID_ARG_VALUE'],
    ['address empty', () => new AnycastGroup('', { interface: 'lo' }), 'ERR_INVALID_ARG_VALUE'],
    ['address IPv4', () => new AnycastGroup('192.0.2.1', { interface: 'lo' }), 'ERR_INVALID_ARG_VALUE'],
    ['address with a zone', () => new AnycastGroup('fe80::99%lo', { interface: 'lo' }), 'ERR_INVALID_ARG_VALUE'],
    ['address multicast', () => new AnycastGroup('ff02::1', { interface: 'lo' }), 'ERR_INVALID_ARG_VALUE'],
    ['address unspecified', () => new AnycastGroup('::', { interface: 'lo' }), 'ERR_INVALID_ARG_VALUE'],
    ['options missing', () => new AnycastGroup(ANYCAST, undefined as never), 'ERR_INVALID_ARG_TYPE'],
    ['options not an object', () => new AnycastGroup(ANYCAST, 'lo' as never), 'ERR_INVALID_ARG_TYPE'],
    ['interface missing', () => new AnycastGroup(ANYCAST, {} as never), 'ERR_INVALID_ARG_TYPE'],
    ['interface of wrong type', () => new AnycastGroup(ANYCAST, { interface: {} as never }), 'ERR_INVALID_ARG_TYPE'],
    ['interface 0 (route lookup)', () => new AnycastGroup(ANYCAST, { interface: 0 }), 'ERR_INVALID_ARG_VALUE'],
    ['interface all', () => new AnycastGroup(ANYCAST, { interface: 'all' }), 'ERR_INVALID_ARG_VALUE'],
    ['interface -1', () => new AnycastGroup(ANYCAST, { interface: -1 }), 'ERR_OUT_OF_RANGE'],
    ['interface name too long', () => new AnycastGroup(ANYCAST, { interface: 'x'.repeat(16) }), 'ERR_INVALID_ARG_VALUE'],
    ['interface unknown by name', () => new AnycastGroup(ANYCAST, { interface: 'nosuch0' }), 'ENODEV'],
    ['interface unknown by index', () => new AnycastGroup(ANYCAST, { interface: 999999 }), 'ENODEV'],
    ['port as string', () => new AnycastGroup(ANYCAST, { interface: 'lo', port: '53' as never }), 'ERR_INVALID_ARG_TYPE'],
    ['port 65536', () => new AnycastGroup(ANYCAST, { interface: 'lo', port: 65536 }), 'ERR_OUT_OF_RANGE'],
    ['netns not a string', () => new AnycastGroup(ANYCAST, { interface: 'lo', netns: 3 as never }), 'ERR_INVALID_ARG_TYPE'],
    ['netns unknown', () => new AnycastGroup(ANYCAST, { interface: 'lo', netns: 'ip6sock-no-such-namespace' }), 'ENOENT'],
    ['signal not a signal', () => new AnycastGroup(ANYCAST, { interface: 'lo', signal: {} as never }), 'ERR_INVALID_ARG_TYPE'],
  ];
  test.each(cases)('%s', (_name, fn, code) => {
    expect(fn).toThrow(expect.objectContaining({ code }));
  });

  test('list() checks its options', () => {
    expect(() => AnycastGroup.list('x' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => AnycastGroup.list({ netns: 4 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => AnycastGroup.list({ netns: 'ip6sock-no-such-namespace' })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describeRoot('AnycastGroup: two servers on one link (proxy_delay 0)', () => {
  const topo = useTopology(async () => {
    const t = await lan(['client', 's1', 's2']);
    // A member answers a neighbour solicitation for an anycast address after a random
    // delay of up to proxy_delay (0.8 s by default, RFC 4861's MAX_ANYCAST_DELAY_TIME).
    // These tests re-resolve the address again and again (failover, ping after leave);
    // 0 keeps each step quick. The default is kept, and shown, in the next describe.
    await Promise.all(['s1', 's2'].map((h) => t.exec(h as 's1' | 's2', ['sysctl', '-q', '-w', 'net.ipv6.neigh.eth0.proxy_delay=0'])));
    return t;
  });
  const flushClientNeighbours = (): Promise<unknown> => topo.exec('client', ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
  // The client's neighbour entry for the anycast address names whichever member answered
  // last; a test whose members differ from the previous test's must not inherit it (that
  // is anycast's real failure mode, shown deliberately in the failover test).
  beforeEach(flushClientNeighbours);

  test('both servers join; a connect()ed client is answered from the anycast address; when the answering server leaves, the other answers', async () => {
    const groups = { s1: echoServer('s1', topo.ns('s1'), 5300), s2: echoServer('s2', topo.ns('s2'), 5300) };
    try {
      for (const h of ['s1', 's2'] as const) {
        expect(AnycastGroup.list({ netns: topo.ns(h) })).toContainEqual({ interface: { index: topo.ifindex(h, 'eth0'), name: 'eth0' }, address: ANYCAST, users: 1 });
        expect(await procLines(topo, h)).toHaveLength(1);
      }
      await using client = new UdpSocket({ netns: topo.ns('client') });
      client.connect(ANYCAST, 5300);

      const first = nextMessage(client);
      await client.send('q1');
      const [data1, info1] = await first;
      // A connect()ed socket accepts only datagrams from the address it connected to.
      expect(info1).toMatchObject({ address: ANYCAST, port: 5300, destination: topo.address('client') });
      const answered = data1.toString().split(':')[0] as 's1' | 's2';
      expect(data1.toString()).toBe(`${answered}:q1`);
      const other = answered === 's1' ? 's2' : 's1';

      await groups[answered].close();
      expect(AnycastGroup.list({ netns: topo.ns(answered) }).map((e) => e.address)).not.toContain(ANYCAST);
      expect(await procLines(topo, answered)).toEqual([]);
      expect(await procLines(topo, other)).toHaveLength(1);

      // The client's neighbour entry still names the departed server's MAC address.
      await flushClientNeighbours();
      const second = nextMessage(client);
      await client.send('q2');
      const [data2, info2] = await second;
      expect(data2.toString()).toBe(`${other}:q2`);
      expect(info2.address).toBe(ANYCAST);
    } finally {
      await Promise.all([groups.s1.close(), groups.s2.close()]);
    }
  });

  test('ping is answered while a member holds the address, and not after every member left', async () => {
    const ping = (): Promise<unknown> => topo.exec('client', ['ping', '-6', '-n', '-c', '1', '-W', '2', ANYCAST]);
    // Closed by the test itself; `await using` closes them too if an assertion throws first.
    await using g1 = new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('s1') });
    await using g2 = new AnycastGroup(ANYCAST, { interface: topo.ifindex('s2', 'eth0'), netns: topo.ns('s2') });
    await flushClientNeighbours();
    await expect(ping()).resolves.toBeDefined();
    await g1.close();
    await flushClientNeighbours();
    await expect(ping()).resolves.toBeDefined(); // s2 still holds it
    await g2.close();
    await flushClientNeighbours();
    const failed = await ping().catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(CommandError);
    expect((failed as CommandError).status).toBe(1); // no reply (exit 2 would be a usage error)
  });

  test('only datagrams addressed to the anycast address reach the group; unicast ones to its port are ignored', async () => {
    // receivePacketInfo is not an AnycastGroup option: from JavaScript it cannot take away
    // the destination this filter works on (it is refused, as every unknown option is).
    expect(() => echoServer('s1', topo.ns('s1'), 5301, { receivePacketInfo: false } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("'options.receivePacketInfo' is not an option here") }),
    );
    await using group = echoServer('s1', topo.ns('s1'), 5301);
    const seen: string[] = [];
    group.on('message', (data: Buffer, info: MessageInfo) => {
      seen.push(data.toString());
      expect(info).toMatchObject({ destination: ANYCAST, interface: { index: topo.ifindex('s1', 'eth0'), name: 'eth0' }, address: topo.address('client') });
    });
    await using client = new UdpSocket({ netns: topo.ns('client') });
    await client.send('unicast', { address: topo.address('s1'), port: 5301 });
    // stats is live: the object read once shows the counts as they change.
    const stats = group.stats;
    expect(stats.ignored).toBe(0);
    await until(() => stats.ignored === 1);
    expect(group.stats).toBe(stats);
    const answer = nextMessage(client);
    await client.send('anycast', { address: ANYCAST, port: 5301 });
    const [data, info] = await answer;
    expect(data.toString()).toBe('s1:anycast');
    expect(info.address).toBe(ANYCAST);
    expect(seen).toEqual(['anycast']);
    expect(group.stats).toMatchObject({ received: 1, ignored: 1, kernelDrops: 0 });
  });

  test('a unicast service on the same port coexists when both set reuseAddr; each gets its own traffic', async () => {
    await using unicast = new UdpSocket({ netns: topo.ns('s1'), address: topo.address('s1'), port: 5302, reuseAddr: true });
    await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('s1'), port: 5302, reuseAddr: true });
    group.on('message', (data: Buffer, info: AnycastMessageInfo) => void info.reply(`anycast:${data.toString()}`));
    unicast.on('message', (data: Buffer, info: MessageInfo) => void unicast.send(`unicast:${data.toString()}`, { address: info.address, port: info.port }));
    await using client = new UdpSocket({ netns: topo.ns('client') });
    for (const [to, expected] of [
      [topo.address('s1'), 'unicast:a'],
      [ANYCAST, 'anycast:b'],
    ] as const) {
      const got = nextMessage(client);
      await client.send(expected.slice(-1), { address: to, port: 5302 });
      const [data, info] = await got;
      expect(data.toString()).toBe(expected);
      expect(info.address).toBe(to);
    }
    expect(group.stats.ignored).toBe(0);
  });

  test('a plain send (unicast source) is dropped by a connect()ed client; reply() (anycast source) is accepted', async () => {
    await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('s1'), port: 5309 });
    await using plain = new UdpSocket({ netns: topo.ns('s1') });
    await using client = new UdpSocket({ netns: topo.ns('client') });
    client.connect(ANYCAST, 5309);
    const asked = new Promise<[MessageInfo, AnycastReply]>((resolve) => group.once('message', (_d: Buffer, info: AnycastMessageInfo) => resolve([info, info.reply])));
    await client.send('q');
    const [info, reply] = await within(asked, 'query');
    const answer = nextMessage(client);
    // Same path, same order: had the first datagram been accepted, it would arrive first.
    await plain.send('from unicast', { address: info.address, port: info.port });
    await reply('from anycast');
    const [data, from] = await answer;
    expect(data.toString()).toBe('from anycast');
    expect(from.address).toBe(ANYCAST);
  });

  test('the async iterator yields { data, info } with info.reply', async () => {
    await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('s2'), port: 5303 });
    await using client = new UdpSocket({ netns: topo.ns('client') });
    client.connect(ANYCAST, 5303);
    const answer = nextMessage(client);
    await client.send('via iterator');
    const it = group[Symbol.asyncIterator]();
    const { value } = (await within(it.next(), 'iterator')) as IteratorResult<AnycastMessage>;
    expect(value.data.toString()).toBe('via iterator');
    expect(value.info).toMatchObject({ destination: ANYCAST, interface: { name: 'eth0' }, port: client.address().port });
    const reply = value.info.reply;
    await expect(reply('answered', { hopLimit: 7 })).resolves.toBe(8);
    const [answered, answeredInfo] = await answer;
    expect(answered.toString()).toBe('answered');
    expect(answeredInfo.hopLimit).toBe(7);
    // The group's own hop limit for its replies: option hopLimit, or setHopLimit().
    group.setHopLimit(5);
    expect(group.getHopLimit()).toBe(5);
    const again = nextMessage(client);
    await reply('again');
    expect((await again)[1].hopLimit).toBe(5);
    // Bad data or options reject (never throw) and the group stays usable.
    await expect(reply(42 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(reply('x', { hopLimit: 256 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(reply('x', { hoplimit: 1 } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("'hopLimit'") });
    await it.return?.();
  });

  test('two groups for one address in one process: two kernel joins, each close leaves its own', async () => {
    const netns = topo.ns('s1');
    const users = (): number[] => AnycastGroup.list({ netns }).filter((e) => e.address === ANYCAST).map((e) => e.users);
    await using a = new AnycastGroup(ANYCAST, { interface: 'eth0', netns, port: 5304 });
    await using b = new AnycastGroup(ANYCAST, { interface: 'eth0', netns });
    expect(b.address()).toEqual({ address: ANYCAST, port: 0, family: 6 });
    expect(a.address()).toEqual({ address: ANYCAST, port: 5304, family: 6 });
    expect(users()).toEqual([2]);
    expect((await procLines(topo, 's1'))[0]).toMatch(/\s2\s*$/);
    await a.close();
    expect(users()).toEqual([1]);
    // A group without a port receives nothing: its iterator just ends at close().
    expect({ ...b.stats }).toEqual({ received: 0, ignored: 0, kernelDrops: 0, truncated: 0 });
    expect(() => b.setHopLimit(5)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    const pending = b[Symbol.asyncIterator]().next();
    await b.close();
    await expect(pending).resolves.toMatchObject({ done: true });
    expect(users()).toEqual([]);
  });

  test('port 0 serves on a port the kernel picked', async () => {
    await using group = echoServer('s1', topo.ns('s1'), 0);
    const { port } = group.address();
    expect(port).toBeGreaterThan(0);
    await using client = new UdpSocket({ netns: topo.ns('client') });
    client.connect(ANYCAST, port);
    const got = nextMessage(client);
    await client.send('p0');
    expect((await got)[0].toString()).toBe('s1:p0');
  });

  test('a group whose last listener went stops reading: what arrives meanwhile waits for the next listener', async () => {
    await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('s1'), port: 5307 });
    await using client = new UdpSocket({ netns: topo.ns('client') });
    const to = { address: ANYCAST, port: 5307 };
    const first = new Promise<string>((resolve) => group.once('message', (d: Buffer) => resolve(d.toString())));
    await client.send('first', to);
    expect(await within(first, 'first')).toBe('first');
    // Nobody listens now: these wait in the kernel (a group that kept reading would drop them).
    for (const n of ['a', 'b', 'c']) await client.send(n, to);
    await until(() => false, 5);
    const got: string[] = [];
    const three = new Promise<void>((resolve) =>
      group.on('message', (d: Buffer) => {
        got.push(d.toString());
        if (got.length === 3) resolve();
      }),
    );
    await within(three, 'the three that waited');
    expect(got).toEqual(['a', 'b', 'c']);
  });

  test('close(): leaves first, idempotent, one close event, then replies and iterators are done', async () => {
    await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('s1'), port: 5305 });
    const events: string[] = [];
    group.on('close', () => events.push('close'));
    await using client = new UdpSocket({ netns: topo.ns('client') });
    const replies: AnycastReply[] = [];
    const got = new Promise<void>((resolve) =>
      group.once('message', (_d: Buffer, info: AnycastMessageInfo) => {
        replies.push(info.reply);
        resolve();
      }),
    );
    await client.send('x', { address: ANYCAST, port: 5305 });
    await within(got, 'message');
    const pending = group[Symbol.asyncIterator]().next(); // nothing more comes: close() ends it
    const first = group.close();
    expect(group.close()).toBe(first);
    expect(group.closed).toBe(true);
    // The join is gone as soon as close() returns, before the promise settles.
    expect(AnycastGroup.list({ netns: topo.ns('s1') }).map((e) => e.address)).not.toContain(ANYCAST);
    expect(events).toEqual([]);
    await first;
    expect(events).toEqual(['close']);
    await expect(pending).resolves.toMatchObject({ done: true });
    await expect(replies[0]('late')).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    expect(group.ref()).toBe(group);
    expect(group.unref()).toBe(group);
    await group.close();
    expect(events).toEqual(['close']);
  });

  test('an AbortSignal closes the group and leaves; an aborted signal closes at once', async () => {
    const netns = topo.ns('s2');
    const ac = new AbortController();
    await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', netns, port: 5306, signal: ac.signal });
    expect(AnycastGroup.list({ netns }).map((e) => e.address)).toContain(ANYCAST);
    const closed = new Promise((r) => group.once('close', r));
    ac.abort();
    await closed;
    expect(group.closed).toBe(true);
    expect(AnycastGroup.list({ netns }).map((e) => e.address)).not.toContain(ANYCAST);
    await using already = new AnycastGroup(ANYCAST, { interface: 'eth0', netns, signal: AbortSignal.abort() });
    await new Promise((r) => already.once('close', r));
    expect(AnycastGroup.list({ netns }).map((e) => e.address)).not.toContain(ANYCAST);
  });

  test('await using leaves at the end of the block', async () => {
    const netns = topo.ns('s2');
    {
      await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', netns });
      expect(AnycastGroup.list({ netns }).map((e) => e.address)).toContain(ANYCAST);
      expect(group.closed).toBe(false);
    }
    expect(AnycastGroup.list({ netns }).map((e) => e.address)).not.toContain(ANYCAST);
  });

  describe('the kernel judges', () => {
    test('EADDRNOTAVAIL: a host may not join an address outside the prefixes of that interface', () => {
      const err = (() => {
        try {
          return new AnycastGroup('2001:db8:77::99', { interface: 'eth0', netns: topo.ns('s1') });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'setsockopt', option: 'IPV6_JOIN_ANYCAST', address: '2001:db8:77::99', netns: topo.ns('s1') });
      expect(String((err as Error).message)).toMatch(/IPV6_JOIN_ANYCAST EADDRNOTAVAIL.*interface eth0 \(\d+\).*prefix.*router \(forwarding on\)/);
    });

    test('EINVAL: an address the host owns as unicast', async () => {
      // Only the kernel knows which unicast addresses the host has.
      expect(() => new AnycastGroup(topo.address('s1'), { interface: 'eth0', netns: topo.ns('s1') })).toThrow(
        expect.objectContaining({ code: 'EINVAL', option: 'IPV6_JOIN_ANYCAST', message: expect.stringMatching(/already owns it as a unicast address/) }),
      );
      // The same address is no unicast address of s2's, so s2 may join it (the kernel does
      // not ask the link whether somebody else owns it: hence the need for CAP_NET_ADMIN).
      await using taken = new AnycastGroup(topo.address('s1'), { interface: 'eth0', netns: topo.ns('s2') });
      expect(taken.closed).toBe(false);
    });

    test('ENODEV: an interface of another namespace does not exist here', () => {
      // Index 10+ exist only inside the topology; lo (1) exists everywhere.
      expect(() => new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('switch') })).toThrow(expect.objectContaining({ code: 'ENODEV' }));
      expect(() => new AnycastGroup(ANYCAST, { interface: topo.ifindex('client', 'eth0'), netns: topo.ns('s1') })).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    });

    test('a failed join leaves nothing behind: the port is free again and no join is listed', () => {
      const netns = topo.ns('s1');
      const before = AnycastGroup.list({ netns });
      for (let i = 0; i < 3; i++) {
        expect(() => new AnycastGroup('2001:db8:77::99', { interface: 'eth0', netns, port: 5307 })).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL' }));
      }
      expect(AnycastGroup.list({ netns })).toEqual(before);
    });

    test('EADDRINUSE: two serving groups on one port (without reuse) fail cleanly', async () => {
      const netns = topo.ns('s2');
      await using first = new AnycastGroup(ANYCAST, { interface: 'eth0', netns, port: 5308 });
      expect(() => new AnycastGroup(ANYCAST, { interface: 'eth0', netns, port: 5308 })).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
      expect(AnycastGroup.list({ netns }).filter((e) => e.address === ANYCAST)).toEqual([expect.objectContaining({ users: 1 })]);
      expect(first.closed).toBe(false);
    });
  });
});

describeRoot('AnycastGroup: first contact with the default proxy_delay', () => {
  const topo = useTopology(() => lan(['client', 's1', 's2']));

  test('a Python client connect()ed to the anycast address gets its answer (ND may take up to ~0.8 s)', async () => {
    const { stdout: delay } = await topo.exec('s1', ['cat', '/proc/sys/net/ipv6/neigh/eth0/proxy_delay']);
    expect(Number(delay.trim())).toBeGreaterThan(0); // untouched: the kernel default
    await using g1 = echoServer('s1', topo.ns('s1'), 5400);
    await using g2 = echoServer('s2', topo.ns('s2'), 5400);
    // The stdlib client: connect() makes the kernel drop any answer not from [ANYCAST]:5400.
    const script = [
      'import socket, sys',
      's = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)',
      's.settimeout(5)',
      `s.connect((${JSON.stringify(ANYCAST)}, 5400))`,
      "s.send(b'py')",
      'data, peer = s.recvfrom(100)',
      "print(data.decode(), peer[0], peer[1])",
    ].join('\n');
    const { stdout } = await topo.exec('client', ['/usr/bin/python3', '-c', script], { timeoutMs: 10_000 });
    expect(stdout.trim()).toMatch(new RegExp(`^s[12]:py ${ANYCAST.replace(/\./g, '\\.')} 5400$`));
    expect(g1.stats.received + g2.stats.received).toBe(1);
  });
});

describeRoot('AnycastGroup: TCP to an anycast address is not answered', () => {
  const topo = useTopology(() => lan(['client', 's1']));

  test('a SYN to the joined address is dropped silently, even with a listener on [::]:port', async () => {
    await using group = new AnycastGroup(ANYCAST, { interface: 'eth0', netns: topo.ns('s1') });
    expect(group.closed).toBe(false);
    const server = topo.spawn('s1', [
      '/usr/bin/python3',
      '-c',
      [
        'import socket, sys',
        's = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)',
        's.bind(("::", 5450)); s.listen(); s.settimeout(6)',
        'print("listening", flush=True)',
        'try:',
        '    c, a = s.accept(); print("accepted", a[0], flush=True)',
        'except TimeoutError:',
        '    print("no connection", flush=True)',
      ].join('\n'),
    ]);
    const exited = new Promise((r) => server.once('exit', r));
    try {
      const serverOut: string[] = [];
      const listening = new Promise<void>((resolve) =>
        server.stdout!.on('data', (chunk: Buffer) => {
          serverOut.push(chunk.toString());
          if (serverOut.join('').includes('listening')) resolve();
        }),
      );
      await within(listening, 'TCP listener');
      const connect = (address: string): Promise<string> =>
        topo
          .exec('client', ['/usr/bin/python3', '-c', `import socket\ntry:\n    socket.create_connection((${JSON.stringify(address)}, 5450), timeout=3); print("connected")\nexcept TimeoutError:\n    print("timeout")`])
          .then((r) => r.stdout.trim());
      // The kernel's TCP accepts a SYN only for a local unicast destination
      // (tcp_v6_conn_request: ipv6_unicast_destination); an anycast route is not one.
      expect(await connect(ANYCAST)).toBe('timeout');
      // The same listener is reachable on the host's unicast address.
      expect(await connect(topo.address('s1'))).toBe('connected');
      await within(exited, 'TCP listener exit');
      expect(serverOut.join('')).toContain(`accepted ${topo.address('client')}`);
    } finally {
      // Gone already when the test passed; a failed one must not leave it running.
      server.kill('SIGKILL');
    }
  });
});

describeRoot('AnycastGroup: router and host', () => {
  const topo = useTopology(() => chain());
  const OFF_LINK = '2001:db8:3::99'; // in no prefix of any interface

  test('a router (forwarding on) joins an off-link address and serves it; a host may not', async () => {
    await using group = new AnycastGroup(OFF_LINK, { interface: 'eth0', netns: topo.ns('router'), port: 5500 });
    group.on('message', (data: Buffer, info: AnycastMessageInfo) => void info.reply(`router:${data.toString()}`));
    expect(AnycastGroup.list({ netns: topo.ns('router') })).toContainEqual({ interface: { index: topo.ifindex('router', 'eth0'), name: 'eth0' }, address: OFF_LINK, users: 1 });
    // The kernel's own subnet-router anycast joins of a router show up in list() too.
    expect(AnycastGroup.list({ netns: topo.ns('router') }).map((e) => e.address)).toContain('2001:db8:1::');

    // The sender reaches it through its default route and is answered from the anycast address.
    await using sender = new UdpSocket({ netns: topo.ns('sender') });
    sender.connect(OFF_LINK, 5500);
    const got = nextMessage(sender);
    await sender.send('hi');
    const [data, info] = await got;
    expect(data.toString()).toBe('router:hi');
    expect(info.address).toBe(OFF_LINK);

    expect(() => new AnycastGroup(OFF_LINK, { interface: 'eth0', netns: topo.ns('sender') })).toThrow(
      expect.objectContaining({ code: 'EADDRNOTAVAIL', option: 'IPV6_JOIN_ANYCAST' }),
    );
    // Inside its on-link prefix the host may.
    await using onLink = new AnycastGroup('2001:db8:1::99', { interface: 'eth0', netns: topo.ns('sender') });
    expect(onLink.address().address).toBe('2001:db8:1::99');
  });

  test('the address is kept in canonical form', async () => {
    await using group = new AnycastGroup('2001:0DB8:0003:0000:0000:0000:0000:0099', { interface: 'eth1', netns: topo.ns('router') });
    expect(group.address().address).toBe(OFF_LINK);
    expect(group.interface).toEqual({ index: topo.ifindex('router', 'eth1'), name: 'eth1' });
    expect(group.netns).toBe(topo.ns('router'));
  });
});

describeRoot('AnycastGroup: no leaks, and privilege', () => {
  const topo = useTopology(() => lan(['client', 's1']));

  test('1,000 join/close cycles leave /proc/net/anycast6 and the fd count as they were', async () => {
    const netns = topo.ns('s1');
    const eth0 = topo.ifindex('s1', 'eth0');
    const tableBefore = (await topo.exec('s1', ['cat', '/proc/net/anycast6'])).stdout;
    const fdsBefore = openFds();
    for (let i = 0; i < 1000; i++) {
      const group =
        i % 2 === 0
          ? new AnycastGroup(ANYCAST, { interface: 'eth0', netns, port: 5600 })
          : new AnycastGroup(ANYCAST, { interface: eth0, netns });
      if (i % 4 === 0) group.on('message', () => undefined); // some with a poll handle
      await group.close();
    }
    expect((await topo.exec('s1', ['cat', '/proc/net/anycast6'])).stdout).toBe(tableBefore);
    expect(openFds()).toBe(fdsBefore);
  });

  test('a group garbage-collected unclosed drops its join (the finalizer closes the fd)', async () => {
    const netns = topo.ns('s1');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    (() => {
      // Deliberately never closed, never listened to, never referenced again.
      new AnycastGroup(ANYCAST, { interface: 'eth0', netns });
    })();
    expect(AnycastGroup.list({ netns }).map((e) => e.address)).toContain(ANYCAST);
    const held = (): boolean => AnycastGroup.list({ netns }).some((e) => e.address === ANYCAST);
    for (let i = 0; i < 50 && held(); i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(held()).toBe(false);
  });

  test('EPERM without CAP_NET_ADMIN (a child process under setpriv), naming the capability', async () => {
    const entry = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
    if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: build it with npx tsc -p tsconfig.build.json (npm test does so in pretest)`);
    const code = `
      const { AnycastGroup } = require(${JSON.stringify(entry)});
      const netns = ${JSON.stringify(topo.ns('s1'))};
      const out = {};
      try { new AnycastGroup(${JSON.stringify(ANYCAST)}, { interface: 'eth0', netns }); out.joined = true; }
      catch (e) { Object.assign(out, { code: e.code, syscall: e.syscall, option: e.option, capability: e.capability, message: e.message }); }
      // Leave needs no capability, and listing needs none either.
      out.listed = AnycastGroup.list({ netns }).some((e) => e.address === ${JSON.stringify(ANYCAST)});
      console.log(JSON.stringify(out));
    `;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        'setpriv',
        ['--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-net_admin', '--', process.execPath, '-e', code],
        { timeout: 20_000, encoding: 'utf8' },
        (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
      ),
    );
    const result = JSON.parse(stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ code: 'EPERM', syscall: 'setsockopt', option: 'IPV6_JOIN_ANYCAST', capability: 'CAP_NET_ADMIN', listed: false });
    expect(result.message).toMatch(/needs CAP_NET_ADMIN/);
  });
});

describeRoot('AnycastGroup: its interface disappears', () => {
  const topo = useTopology(() => lan(['client', 's1']));

  test('deleting the interface ends the group with an ENODEV error, not silence', async () => {
    const group = new AnycastGroup('2001:db8:1::77', { interface: 'eth0', port: 5399, netns: topo.ns('s1') });
    try {
      expect(AnycastGroup.list({ netns: topo.ns('s1') }).map((e) => e.address)).toContain('2001:db8:1::77');
      const failed = new Promise<NodeJS.ErrnoException>((resolve) => group.once('error', resolve));
      topo.execSync('s1', ['ip', 'link', 'del', 'eth0']);
      let timer: NodeJS.Timeout | undefined;
      const err = await Promise.race([failed, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 3000)))]).finally(() => clearTimeout(timer));
      expect(err).toMatchObject({ code: 'ENODEV', syscall: 'RTM_DELLINK', interface: expect.stringMatching(/^eth0 \(\d+\)$/) });
      expect(String(err?.message)).toContain('2001:db8:1::77');
      expect(AnycastGroup.list({ netns: topo.ns('s1') }).map((e) => e.address)).not.toContain('2001:db8:1::77');
    } finally {
      await group.close();
    }
  });
});
