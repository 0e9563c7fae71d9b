// The example daemons end to end, each a real process started through the ip6sock
// command inside the namespaces of a topology.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Inbox } from '../helpers/inbox';
import { describeRoot } from '../helpers/privileged';
import { hopByHop, MulticastSocket, UdpSocket } from '../../lib';
import { chain, hostPair, lan, useTopology, Watched as Running } from '../helpers/topology';

// The built command (packages/cli, compiled by `npm test`'s pretest), as `npx ip6sock` runs it.
const CLI = path.join(__dirname, '..', '..', 'packages', 'cli', 'dist', 'cli.js');

const running = new Set<Running>();
function start(args: string[]): Running {
  const r = new Running(spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
  running.add(r);
  return r;
}
afterEach(async () => {
  await Promise.all([...running].map((r) => r.stop()));
  running.clear();
});

// A GRASP peer written with Python's socket module and cbor2: floods one objective and
// prints, as JSON, the first flood it hears. Nothing here shares code with ip6sock.
const PYTHON_GRASP_PEER = `
import socket, struct, json, sys, cbor2, os
ifindex = socket.if_nametoindex('eth0')
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::', 7017))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, 'ff02::13') + struct.pack('@I', ifindex))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
s.settimeout(8)
me = socket.inet_pton(socket.AF_INET6, sys.argv[1])
flood = cbor2.dumps([9, 4242, me, 60000, [['PY1', 4, 1, 'from python'], []]])
s.sendto(flood, ('ff02::13', 7017, 0, ifindex))
while True:  # bounded by the socket timeout; skip our own looped-back flood
    data, addr = s.recvfrom(65535)
    m = cbor2.loads(data)
    if m[2] != me:
        break
print(json.dumps({'type': m[0], 'initiator': socket.inet_ntop(socket.AF_INET6, m[2]), 'objectives': [[o[0][0], o[0][1], o[0][3]] for o in m[4:]], 'from': addr[0]}))
sys.stdout.flush()
`;

describeRoot('example: grasp', () => {
  const topo = useTopology(() => hostPair());

  test('two nodes see each other\'s floods and discover each other\'s objectives', async () => {
    const a = start(['grasp', '--netns', topo.ns('a'), '--interval', '0.3', '--flood', 'EX1=hello', '--register', 'EX2=world']);
    const b = start(['grasp', '--netns', topo.ns('b'), '--interval', '0.3', '--flood', 'EX3=bee', '--discover', 'EX2']);
    await a.waitFor(/^flood +eth0 +from 2001:db8:1::2: EX3 = "bee" \(cached\)$/m);
    await b.waitFor(/^flood +eth0 +from 2001:db8:1::1: EX1 = "hello" \(cached\)$/m);
    await a.waitFor(/^discovery +eth0 +from fe80::2%eth0 port 7017: EX2 -> responded, locator \[fe80::1\]:7017$/m);
    await b.waitFor(/^response +EX2 = "world" at \[fe80::1\]:7017$/m);
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    expect(a.stdout).toMatch(/^stopped; 1 objective\(s\) cached: EX3$/m);
    expect(a.stderr).toBe('');
    expect(b.stderr).toBe('');
  });

  test('talks to an independent implementation (Python socket + cbor2) both ways', async () => {
    const node = start(['grasp', '--netns', topo.ns('a'), '--interval', '0.3', '--flood', 'EX1=hello']);
    await node.waitFor(/^grasp node/m);
    const py = new Running(spawn('ip', ['netns', 'exec', topo.ns('b'), '/usr/bin/python3', '-c', PYTHON_GRASP_PEER, '2001:db8:1::2'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    running.add(py);
    const line = await py.waitFor(/^\{.*\}$/m);
    expect(JSON.parse(line[0])).toEqual({ type: 9, initiator: '2001:db8:1::1', objectives: [['EX1', 4, 'hello']], from: expect.stringMatching(/^fe80::1(%eth0)?$/) });
    await node.waitFor(/^flood +eth0 +from 2001:db8:1::2: PY1 = "from python" \(cached\)$/m);
    expect(await py.exited).toBe(0);
  });

  test('malformed messages are dropped with a diagnostic, the node keeps going', async () => {
    const node = start(['grasp', '--netns', topo.ns('a'), '--interval', '0.3', '--flood', 'EX1=hello']);
    await node.waitFor(/^grasp node/m);
    const junk = `
import socket, struct, time
i = socket.if_nametoindex('eth0')
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for payload in [b'\\xff\\x00', b'\\x83\\x09\\x01', bytes.fromhex('850901') + b'\\x41\\x00' + b'\\x00\\x80', b'\\x81\\x00', bytes.fromhex('8163') ]:
    s.sendto(payload, ('ff02::13', 7017, 0, i))
    time.sleep(0.05)
`;
    const py = new Running(spawn('ip', ['netns', 'exec', topo.ns('b'), '/usr/bin/python3', '-c', junk], { stdio: ['ignore', 'pipe', 'pipe'] }));
    expect(await py.exited).toBe(0);
    const b = start(['grasp', '--netns', topo.ns('b'), '--interval', '0.3', '--flood', 'EX9=after']);
    await node.waitFor(/EX9 = "after"/);
    expect(node.stderr).toMatch(/dropped malformed message from fe80::2%eth0 on eth0: not CBOR/);
    expect(node.stderr).toMatch(/dropped malformed message .*: M_FLOOD/);
    await b.stop();
    expect(await node.stop()).toBe(0);
  });
});

describeRoot('example: mcast-chat', () => {
  const topo = useTopology(() => lan(['alice', 'bob']));

  for (const family of [4, 6] as const) {
    test(`IPv${family}: lines pass both ways with the arrival interface`, async () => {
      const flag = family === 6 ? ['-6'] : [];
      const alice = start(['mcast-chat', ...flag, '--netns', topo.ns('alice'), '--name', 'alice']);
      const bob = start(['mcast-chat', ...flag, '--netns', topo.ns('bob'), '--name', 'bob']);
      await alice.waitFor(/^joined /m, 8000, 'stderr');
      await bob.waitFor(/^joined /m, 8000, 'stderr');
      const bobSays = family === 6 ? /^\[eth0\] fe80::2%eth0: bob: hi alice$/m : /^\[eth0\] 192\.0\.2\.2: bob: hi alice$/m;
      const aliceSays = family === 6 ? /^\[eth0\] fe80::1%eth0: alice: hi bob$/m : /^\[eth0\] 192\.0\.2\.1: alice: hi bob$/m;
      alice.child.stdin?.write('hi bob\n');
      bob.child.stdin?.write('hi alice\n');
      await bob.waitFor(aliceSays);
      await alice.waitFor(bobSays);
      expect(alice.stderr).toMatch(family === 6 ? /joined ff12::5000 port 5000 on eth0/ : /joined 224\.0\.1\.1 port 5000 on eth0/);
      // Nobody hears themselves (own-packet suppression), whatever the loopback setting.
      expect(alice.stdout).not.toMatch(/alice: hi bob/);
      expect(await alice.stop()).toBe(0);
      expect(await bob.stop()).toBe(0);
    });
  }
});

describeRoot('example: mcast-stream', () => {
  const topo = useTopology(() => hostPair());

  test('a lean receiver counts a paced stream whole; a gap in the numbering is reported as loss', async () => {
    const rx = start(['mcast-stream', 'receive', '--netns', topo.ns('b'), '--interface', 'eth0', '--interval', '0.2']);
    await rx.waitFor(/^receiving ff3e::db8:5004 port 5004 on eth0 \(\d+\)$/m, 8000, 'stderr');
    const tx = start(['mcast-stream', 'send', '--netns', topo.ns('a'), '--interface', 'eth0', '--rate', '20000', '--count', '3000', '--size', '200']);
    // With --count the sender ends by itself.
    expect(await tx.exited).toBe(0);
    expect(tx.stdout).toMatch(/^sent 3000 datagrams in /m);
    await rx.waitFor(/ 3000 in all, lost 0, reordered 0, kernel drops 0$/m);
    // Then, straight from a test socket, 3000, 3003 and 3002: 3001 never comes, 3002 is late.
    await using probe = new MulticastSocket({ netns: topo.ns('a'), multicastInterface: 'eth0' });
    for (const seq of [3000n, 3003n, 3002n]) {
      const data = Buffer.alloc(8);
      data.writeBigUInt64BE(seq);
      await probe.send(data, { address: 'ff3e::db8:5004', port: 5004 });
    }
    await rx.waitFor(/^ +\d+ datagrams\/s +[\d.]+ Mbit\/s   3003 in all, lost 1, reordered 1, kernel drops 0$/m);
    expect(await rx.stop()).toBe(0);
    expect(rx.stdout).toMatch(/^total: 3003 received, lost 1, reordered 1, kernel drops 0$/m);
  });

  test('with --source the kernel keeps every other source out, device-bound and without control data', async () => {
    const rx = start(['mcast-stream', 'receive', '--netns', topo.ns('b'), '--interface', 'eth0', '--source', '2001:db8:1::1', '--interval', '0.2']);
    await rx.waitFor(/^receiving ff3e::db8:5004 from 2001:db8:1::1 port 5004 on eth0/m, 8000, 'stderr');
    // A witness on the port that hears any source: the other source's datagram was on the wire.
    await using witness = new MulticastSocket({ netns: topo.ns('b'), port: 5004, reuseAddr: true });
    witness.join('ff3e::db8:5004', { interface: 'eth0' });
    const seen = new Inbox(witness);
    await using probe = new MulticastSocket({ netns: topo.ns('a'), multicastInterface: 'eth0' });
    const numbered = (seq: bigint): Buffer => {
      const data = Buffer.alloc(8);
      data.writeBigUInt64BE(seq);
      return data;
    };
    // From a's link-local address: another source, which would open a gap of 5000.
    await probe.send(numbered(5000n), { address: 'ff3e::db8:5004', port: 5004, source: 'fe80::1', interface: 'eth0' });
    await probe.send(numbered(0n), { address: 'ff3e::db8:5004', port: 5004, source: '2001:db8:1::1' });
    expect((await seen.next('from fe80::1')).info.address).toBe('fe80::1%eth0');
    expect((await seen.next('from 2001:db8:1::1')).info.address).toBe('2001:db8:1::1');
    await rx.waitFor(/ 1 in all, lost 0, reordered 0, kernel drops 0$/m);
    expect(await rx.stop()).toBe(0);
    expect(rx.stdout).toMatch(/^total: 1 received, lost 0, reordered 0, kernel drops 0$/m);
  });

  test('bad arguments are refused with the reason', async () => {
    const noIf = start(['mcast-stream', 'receive', '--netns', topo.ns('b')]);
    expect(await noIf.exited).toBe(1);
    expect(noIf.stderr).toMatch(/--interface is required/);
    const small = start(['mcast-stream', 'send', '--netns', topo.ns('a'), '--interface', 'eth0', '--size', '4']);
    expect(await small.exited).toBe(1);
    expect(small.stderr).toMatch(/--size must be 8\.\.65507/);
    const unknown = start(['mcast-stream', 'receive', '--netns', topo.ns('b'), '--interface', 'nosuch0']);
    expect(await unknown.exited).toBe(1);
    expect(unknown.stderr).toMatch(/nosuch0.*\[ENODEV\]/);
  });
});

describeRoot('example: anycast-responder', () => {
  const topo = useTopology(() => lan(['client', 's1', 's2']));

  test('answers from the anycast address while running; the other takes over when it stops', async () => {
    const args = (host: 's1' | 's2'): string[] => ['anycast-responder', '--netns', topo.ns(host), '--address', '2001:db8:1::99', '--interface', 'eth0', '--name', host];
    const s1 = start(args('s1'));
    await s1.waitFor(/^joined anycast 2001:db8:1::99 on eth0/m);
    await using client = new UdpSocket({ netns: topo.ns('client') });
    client.connect('2001:db8:1::99', 5300); // a connected socket accepts only answers FROM the anycast address
    const ask = async (text: string): Promise<string> => {
      // The first query may wait for neighbour discovery (an anycast NA is delayed up to
      // about 0.8 s): retry a few times, bounded. An answer to an earlier attempt may come
      // late, and waits in the socket while nobody listens: only an answer to this question
      // counts.
      for (let attempt = 0; attempt < 10; attempt++) {
        let onMessage: ((d: Buffer) => void) | undefined;
        const got = new Promise<string | undefined>((resolve) => {
          const timer = setTimeout(() => resolve(undefined), 500);
          onMessage = (d: Buffer): void => {
            if (!d.toString().endsWith(`: ${text}`)) return;
            clearTimeout(timer);
            resolve(d.toString());
          };
          client.on('message', onMessage);
        });
        await client.send(text);
        const answer = await got;
        client.off('message', onMessage as (d: Buffer) => void);
        if (answer !== undefined) return answer;
      }
      throw new Error('no answer from the anycast address');
    };
    expect(await ask('who?')).toBe('s1: who?');
    await s1.waitFor(/^query from \[2001:db8:1::1\]:\d+ on eth0: "who\?" -> answered from 2001:db8:1::99$/m);

    const s2 = start(args('s2'));
    await s2.waitFor(/^joined anycast/m);
    expect(await s1.stop()).toBe(0);
    expect(s1.stdout).toMatch(/^left anycast 2001:db8:1::99$/m);
    topo.execSync('client', ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
    expect(await ask('and now?')).toBe('s2: and now?');
    expect(await s2.stop()).toBe(0);
  });
});

describeRoot('example: ra-policy', () => {
  const topo = useTopology(() => chain());

  async function through(policy: string, text: string): Promise<{ tap: Running; got: string | undefined }> {
    const tap = start(['ra-policy', '--netns', topo.ns('router'), '--value', '5', '--policy', policy]);
    await tap.waitFor(/^tapping router alert value 5/m);
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 9000 });
    await using tx = new UdpSocket({ netns: topo.ns('sender') });
    const got = new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 1500);
      rx.once('message', (d: Buffer) => {
        clearTimeout(timer);
        resolve(d.toString());
      });
    });
    await tx.send(text, { address: '2001:db8:2::2', port: 9000, hopByHop: [hopByHop.routerAlert(5)] });
    return { tap, got: await got };
  }

  test('pass: prints the payload, then forwards', async () => {
    const { tap, got } = await through('pass', 'RSVP-ish PATH');
    expect(got).toBe('RSVP-ish PATH');
    await tap.waitFor(/^packet +eth0 +2001:db8:1::1 -> 2001:db8:2::2 udp \d+ -> 9000 hop limit 64 RA 5: "RSVP-ish PATH"$/m);
    await tap.waitFor(/^forwarded$/m);
    expect(await tap.stop()).toBe(0);
  });

  test('rewrite: the receiver gets the rewritten payload; drop: it gets nothing', async () => {
    const rewritten = await through('rewrite:PATH=RESV', 'RSVP-ish PATH');
    expect(rewritten.got).toBe('RSVP-ish RESV');
    await rewritten.tap.stop();
    const dropped = await through('drop', 'never arrives');
    expect(dropped.got).toBeUndefined();
    await dropped.tap.waitFor(/^dropped$/m);
    await dropped.tap.stop();
    expect(dropped.tap.stdout).toMatch(/^stopped: 1 tapped, 0 forwarded, 1 dropped, 0 malformed$/m);
  });
});

describeRoot('example: mld-monitor', () => {
  const topo = useTopology(() => lan(['monitor', 'host']));

  test('reports a join made by a MulticastSocket in another namespace, and its leave', async () => {
    const mon = start(['mld-monitor', '--netns', topo.ns('monitor')]);
    await mon.waitFor(/^listening for MLDv2 reports on eth0$/m);
    const sock = new MulticastSocket({ port: 5000, netns: topo.ns('host') });
    sock.join('ff12::5000', { interface: 'eth0' });
    await mon.waitFor(/^eth0  fe80::2%eth0 joined ff12::5000$/m);
    await sock.close();
    await mon.waitFor(/^eth0  fe80::2%eth0 left ff12::5000$/m);
    expect(await mon.stop()).toBe(0);
    expect(mon.stderr).toBe('');
  });
});
