/**
 * The namespace test bed itself: every topology comes up with the addresses, indexes and
 * routes it promises, traffic flows (checked with iputils ping, run inside the topology's
 * own namespaces only), names never collide, and everything is torn down, also when a test
 * throws or the process dies.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describeRoot } from '../helpers/privileged';
import {
  CommandError,
  buildTopology,
  chain,
  hostPair,
  lan,
  namespacePrefix,
  star,
  useTopology,
  withTopology,
  type Topology,
} from '../helpers/topology';

/** `ip -o link` of the host's own namespace (this process's). */
function hostLinks(): string {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip -o link show failed: ${r.stderr}`);
  return r.stdout;
}

function netnsNames(): Set<string> {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip netns list failed: ${r.stderr}`);
  return new Set(r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((n) => n !== ''));
}

/** Pings once from a host; resolves with ping's output, rejects (CommandError) on no reply. */
async function ping<H extends string>(
  topo: Topology<H>,
  from: H,
  to: string,
  extra: readonly string[] = [],
): Promise<string> {
  const family = to.includes(':') ? '-6' : '-4';
  const { stdout } = await topo.exec(from, ['ping', family, '-n', '-c', '1', '-W', '1', ...extra, to]);
  return stdout;
}

interface LinkJson {
  ifindex: number;
  ifname: string;
  operstate: string;
  master?: string;
}

interface AddrJson {
  ifname: string;
  addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string; tentative?: boolean; dadfailed?: boolean }>;
}

async function links<H extends string>(topo: Topology<H>, host: H): Promise<LinkJson[]> {
  const { stdout } = await topo.exec(host, ['ip', '-j', 'link', 'show']);
  return JSON.parse(stdout) as LinkJson[];
}

async function addrs<H extends string>(topo: Topology<H>, host: H, ifname: string): Promise<AddrJson['addr_info']> {
  const { stdout } = await topo.exec(host, ['ip', '-j', 'addr', 'show', 'dev', ifname]);
  const parsed = JSON.parse(stdout) as AddrJson[];
  return parsed[0]?.addr_info ?? [];
}

async function sysctl<H extends string>(topo: Topology<H>, host: H, key: string): Promise<string> {
  const { stdout } = await topo.exec(host, ['cat', `/proc/sys/${key.replace(/\./g, '/')}`]);
  return stdout.trim();
}

describeRoot('namespace test bed', () => {
  let linksBefore = '';
  beforeAll(() => {
    linksBefore = hostLinks();
  });

  test('ping from iputils is installed (CI: apt-get install iputils-ping)', () => {
    const r = spawnSync('ping', ['-V'], { encoding: 'utf8' });
    expect(r.error?.message ?? 'ping found').toBe('ping found');
  });

  describe('hostPair()', () => {
    const topo = useTopology(() => hostPair());

    test('names and indexes are what the topology reports', async () => {
      expect(topo.ns('a')).toMatch(new RegExp(`^${namespacePrefix()}\\d+-a$`));
      for (const host of ['a', 'b'] as const) {
        const l = await links(topo, host);
        expect(l.map((x) => x.ifname).sort()).toEqual(['eth0', 'lo']);
        const eth0 = l.find((x) => x.ifname === 'eth0');
        expect(eth0?.ifindex).toBe(topo.ifindex(host, 'eth0'));
        expect(eth0?.operstate).toBe('UP');
      }
      expect(topo.ifindex('a', 'eth0')).not.toBe(topo.ifindex('b', 'eth0'));
      expect(topo.ifindex('a', 'lo')).toBe(1);
      expect(() => topo.ifindex('a', 'eth9')).toThrow(/no interface eth9/);
    });

    test('addresses are usable at once and there is exactly one link-local', async () => {
      const info = await addrs(topo, 'a', 'eth0');
      const v6 = info.filter((x) => x.family === 'inet6');
      expect(v6.map((x) => `${x.local}/${x.prefixlen} ${x.scope}`).sort()).toEqual([
        '2001:db8:1::1/64 global',
        'fe80::1/64 link',
      ]);
      expect(info.some((x) => x.tentative === true || x.dadfailed === true)).toBe(false);
      expect(info.filter((x) => x.family === 'inet').map((x) => `${x.local}/${x.prefixlen}`)).toEqual(['192.0.2.1/24']);
      expect(await sysctl(topo, 'a', 'net.ipv6.conf.eth0.accept_dad')).toBe('0');
      expect(topo.address('b')).toBe('2001:db8:1::2');
      expect(topo.address('b', 'eth0', 4)).toBe('192.0.2.2');
      expect(topo.linkLocal('b')).toBe('fe80::2');
    });

    test('ping across the link: global, link-local, IPv4', async () => {
      expect(await ping(topo, 'a', '2001:db8:1::2')).toContain('1 received');
      expect(await ping(topo, 'b', 'fe80::1%eth0')).toContain('1 received');
      expect(await ping(topo, 'a', '192.0.2.2')).toContain('1 received');
    });

    test('multicast: ff02::1 reaches the peer; groups route without naming an interface', async () => {
      // -L: do not loop our own echo request back, so the reply must come from b.
      expect(await ping(topo, 'a', 'ff02::1', ['-L', '-I', 'eth0'])).toContain('from fe80::2%eth0');
      for (const group of ['ff02::1:3', 'ff05::1:3', '224.0.1.1', '239.1.2.3']) {
        const { stdout } = await topo.exec('a', ['ip', 'route', 'get', group]);
        expect(stdout).toContain('dev eth0');
      }
    });

    test('exec errors name the command, the namespace and stderr', async () => {
      const error = await topo.exec('a', ['ip', 'link', 'show', 'nosuchif']).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommandError);
      const message = (error as CommandError).message;
      expect(message).toContain(`ip netns exec ${topo.ns('a')} ip link show nosuchif failed: exit 1`);
      expect(message).toMatch(/stderr: .*nosuchif/);
      expect(() => topo.execSync('b', ['false'])).toThrow(/false failed: exit 1/);
    });
  });

  describe('chain()', () => {
    const topo = useTopology(() => chain());

    test('the router forwards both ways; the hop limit shows the extra hop', async () => {
      expect(await ping(topo, 'sender', '2001:db8:2::2')).toMatch(/ttl=63 .*\n[\s\S]*1 received/);
      expect(await ping(topo, 'receiver', '2001:db8:1::1')).toMatch(/ttl=63/);
      expect(await ping(topo, 'sender', '192.0.2.66')).toMatch(/ttl=63/);
      expect(await ping(topo, 'receiver', '192.0.2.1')).toMatch(/ttl=63/);
      // Both router addresses answer directly (no decrement).
      expect(await ping(topo, 'sender', '2001:db8:2::1')).toMatch(/ttl=64/);
    });

    test('forwarding is on in the router only, on every interface', async () => {
      for (const key of ['net.ipv6.conf.eth0.forwarding', 'net.ipv6.conf.eth1.forwarding', 'net.ipv4.ip_forward']) {
        expect(await sysctl(topo, 'router', key)).toBe('1');
      }
      expect(await sysctl(topo, 'sender', 'net.ipv6.conf.eth0.forwarding')).toBe('0');
      expect(await sysctl(topo, 'receiver', 'net.ipv4.ip_forward')).toBe('0');
    });

    test('leaf hosts route everything via the router', async () => {
      const { stdout } = await topo.exec('sender', ['ip', 'route', 'get', '2001:db8:3::1']);
      expect(stdout).toContain('via 2001:db8:1::2 dev eth0');
      const v4 = await topo.exec('receiver', ['ip', 'route', 'get', '198.51.100.1']);
      expect(v4.stdout).toContain('via 192.0.2.65 dev eth0');
      expect(topo.ifindex('router', 'eth1')).not.toBe(topo.ifindex('router', 'eth0'));
    });
  });

  describe('star(3)', () => {
    const topo = useTopology(() => star(3));

    test('the hub reaches each peer on its own link, and peers only see their link', async () => {
      for (let i = 0; i < 3; i++) {
        const peer = `peer${i}` as const;
        expect(await ping(topo, 'hub', `2001:db8:${i + 1}::2`)).toContain('1 received');
        expect(await ping(topo, 'hub', `198.18.${i}.2`)).toContain('1 received');
        expect(await ping(topo, peer, `fe80::1%eth0`)).toContain('1 received');
        expect((await links(topo, peer)).map((l) => l.ifname).sort()).toEqual(['eth0', 'lo']);
      }
      const hubLinks = await links(topo, 'hub');
      expect(hubLinks.map((l) => `${l.ifname}:${l.ifindex}`).sort()).toEqual(
        ['lo:1', ...[0, 1, 2].map((i) => `eth${i}:${topo.ifindex('hub', `eth${i}`)}`)].sort(),
      );
      // No forwarding and no routes between peers.
      await expect(ping(topo, 'peer0', '2001:db8:2::2')).rejects.toThrow(/Network is unreachable|0 received/);
    });

    test('rejects a bad size before touching anything', async () => {
      await expect(star(0)).rejects.toThrow(RangeError);
      await expect(lan(['h1'])).rejects.toThrow(RangeError);
    });
  });

  describe('lan()', () => {
    const topo = useTopology(() => lan(['h1', 'h2', 'h3']));

    test('every host reaches every other through the bridge', async () => {
      expect(await ping(topo, 'h1', '2001:db8:1::3')).toContain('1 received');
      expect(await ping(topo, 'h3', '2001:db8:1::2')).toContain('1 received');
      expect(await ping(topo, 'h2', '192.0.2.1')).toContain('1 received');
    });

    test('multicast is flooded to all ports', async () => {
      const { stdout } = await topo.exec('h1', ['ping', '-6', '-n', '-L', '-I', 'eth0', '-c', '3', '-i', '0.2', '-W', '1', 'ff02::1']);
      expect(stdout).toContain('from fe80::2%eth0');
      expect(stdout).toContain('from fe80::3%eth0');
    });

    test('the switch is a silent bridge', async () => {
      const sw = await links(topo, 'switch');
      expect(sw.filter((l) => l.ifname.startsWith('p')).map((l) => l.master)).toEqual(['br0', 'br0', 'br0']);
      expect(await sysctl(topo, 'switch', 'net.ipv6.conf.all.disable_ipv6')).toBe('1');
    });
  });

  describe('lifecycle', () => {
    // How fast is the bench's business (a wall-clock bound here fails on a loaded machine);
    // this checks that the time is measured and that destroy() removes every namespace.
    test('comes up with its build time measured, and goes away whole', async () => {
      const topo = await chain();
      await topo.destroy();
      expect(Number.isFinite(topo.buildMs) && topo.buildMs > 0).toBe(true);
      const listed = netnsNames();
      for (const n of topo.namespaces) expect(listed.has(n)).toBe(false);
    });

    test('names are unique across topologies built concurrently', async () => {
      const [p1, p2, c] = await Promise.all([hostPair(), hostPair(), chain()]);
      const built = [p1, p2, c] as const;
      try {
        const all = built.flatMap((t) => t.namespaces);
        expect(new Set(all).size).toBe(all.length);
        expect(new Set(built.map((t) => t.prefix)).size).toBe(3);
        for (const n of all) expect(n.startsWith(namespacePrefix())).toBe(true);
        const listed = netnsNames();
        for (const n of all) expect(listed.has(n)).toBe(true);
        // Same addresses in each pair, yet each pings only its own peer.
        for (const t of [p1, p2]) {
          expect(await ping(t, 'a', '2001:db8:1::2')).toContain('1 received');
        }
      } finally {
        await Promise.all(built.map((t) => t.destroy()));
      }
    });

    test('destroy() removes every namespace and is idempotent', async () => {
      const topo = await star(2);
      const names = topo.namespaces;
      expect(names).toHaveLength(3);
      await topo.destroy();
      const listed = netnsNames();
      for (const n of names) expect(listed.has(n)).toBe(false);
      await topo.destroy();
      topo.destroySync();
      expect(() => topo.execSync('hub', ['true'])).toThrow(/after destroy/);
    });

    test('a topology is destroyed even when its test throws', async () => {
      let names: string[] = [];
      await expect(
        withTopology(
          () => hostPair(),
          (t) => {
            names = t.namespaces;
            throw new Error('simulated test failure');
          },
        ),
      ).rejects.toThrow('simulated test failure');
      expect(names).toHaveLength(2);
      const listed = netnsNames();
      for (const n of names) expect(listed.has(n)).toBe(false);
    });

    test('a failed build deletes what it had created and names the failing command', async () => {
      const before = netnsNames();
      const error = await buildTopology<'x' | 'y'>({
        kind: 'broken',
        hosts: { x: {}, y: {} },
        links: [[{ host: 'x', ifname: 'eth0', addresses: ['2001:db8::zz/64'] }, { host: 'y', ifname: 'eth0' }]],
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommandError);
      expect((error as CommandError).message).toMatch(/-batch - failed: exit 1[\s\S]*2001:db8::zz/);
      const after = netnsNames();
      for (const n of after) expect(before.has(n) || !n.startsWith(namespacePrefix())).toBe(true);
    });

    test('a process that dies with topologies left deletes them at exit', () => {
      // Run the real test bed (packages/testbed/dist, compiled by `npm test`'s pretest) in a child node process that
      // builds a topology and then dies of an unhandled error: the 'exit' fallback must
      // delete the namespaces.
      const dir = mkdtempSync(path.join(tmpdir(), 'ip6sock-topo-'));
      const testbed = path.join(__dirname, '..', '..', 'packages', 'testbed', 'dist', 'index.js');
      let names: string[] = [];
      try {
        writeFileSync(
          path.join(dir, 'crash.js'),
          `require(${JSON.stringify(testbed)}).chain().then((t) => {
             console.log(JSON.stringify(t.namespaces));
             throw new Error('simulated crash');
           });`,
        );
        const r = spawnSync(process.execPath, [path.join(dir, 'crash.js')], { encoding: 'utf8', timeout: 20_000 });
        expect(r.stderr).toContain('simulated crash');
        expect(r.status).not.toBe(0);
        names = JSON.parse(r.stdout.trim().split('\n')[0]) as string[];
        expect(names).toHaveLength(3);
        const listed = netnsNames();
        for (const n of names) expect(listed.has(n)).toBe(false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        // If the fallback failed, do not leak the child's namespaces into later runs.
        const leaked = names.filter((n) => netnsNames().has(n));
        if (leaked.length > 0) spawnSync('ip', ['-force', '-batch', '-'], { input: leaked.map((n) => `netns del ${n}\n`).join('') });
      }
    });

    test("the host's own interfaces are untouched while topologies exist and after", async () => {
      await withTopology(
        () => lan(['h1', 'h2']),
        () => {
          expect(hostLinks()).toBe(linksBefore);
        },
      );
      expect(hostLinks()).toBe(linksBefore);
    });
  });
});
