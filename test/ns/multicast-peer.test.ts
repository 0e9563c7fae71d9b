// An independent peer: Debian's Python (/usr/bin/python3, standard library `socket` only),
// run inside the namespaces, exchanges multicast with MulticastSocket. Its view of hop
// limit, arrival interface and group comes from the kernel through code we did not write.
import { MulticastSocket } from '../../lib/sockets/multicast';
import { describeRoot } from '../helpers/privileged';
import { nextMessage } from '../helpers/wire';
import { hostPair, Topology, useTopology } from '../helpers/topology';

const PYTHON = '/usr/bin/python3';

/** Joins GROUP on IFINDEX, prints "ready", reports one datagram as JSON; gives up after TIMEOUT s. */
const PY_RECEIVE6 = String.raw`
import json, socket, struct, sys
group, port, ifindex, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
s.bind(('', port))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, group) + struct.pack('@I', ifindex))
s.settimeout(timeout)
print('ready', flush=True)
data, ancillary, flags, addr = s.recvmsg(2048, socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4))
out = {'data': data.decode(), 'source': addr[0], 'port': addr[1], 'scope': addr[3]}
for level, kind, value in ancillary:
    if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
        out['destination'] = socket.inet_ntop(socket.AF_INET6, value[:16])
        out['ifindex'] = struct.unpack('@I', value[16:20])[0]
    elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
        out['hopLimit'] = struct.unpack('@i', value)[0]
print(json.dumps(out), flush=True)
`;

/** Sends TEXT to GROUP:PORT out of IFINDEX with multicast hop limit HOPS. */
const PY_SEND6 = String.raw`
import socket, struct, sys
group, port, ifindex, hops, text = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, struct.pack('@I', ifindex))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
s.sendto(text.encode(), (group, port, 0, ifindex))
`;

/** The seed's sender in Python, with IP_MULTICAST_IF by index (ip_mreqn) and TTL HOPS. */
const PY_SEND4 = String.raw`
import socket, struct, sys
group, port, ifindex, ttl, text = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack('@4s4si', b'\0' * 4, b'\0' * 4, ifindex))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
s.sendto(text.encode(), (group, port))
`;

const PY_TIMEOUT_S = 5;
const KILL_AFTER_MS = 10_000;

/**
 * Starts a Python receiver in a host; `ready` resolves when it has joined, `result` with its
 * JSON report. It times out itself after PY_TIMEOUT_S; as a backstop it is killed after
 * KILL_AFTER_MS (and by the topology's destroy()).
 */
function pythonReceiver(topo: Topology<'a' | 'b'>, host: 'a' | 'b', args: string[]): { ready: Promise<void>; result: Promise<Record<string, unknown>> } {
  const child = topo.spawn(host, [PYTHON, '-c', PY_RECEIVE6, ...args, String(PY_TIMEOUT_S)]);
  const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
  let stdout = '';
  let stderr = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.startsWith('ready\n')) onReady();
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      const lines = stdout.trim().split('\n');
      if (code === 0 && lines.length === 2) resolve(JSON.parse(lines[1]) as Record<string, unknown>);
      else reject(new Error(`python receiver ended with ${code ?? signal}: ${stderr.trim() || stdout.trim()}`));
    });
  });
  // A receiver that dies before "ready" fails the test through `result`, not by hanging.
  return { ready: Promise.race([ready, result.then(() => undefined)]), result };
}

describeRoot("Python's socket module as the peer (hostPair)", () => {
  const topo = useTopology(() => hostPair());

  test('Python receives what ip6sock sends to a group, with the per-packet hop limit', async () => {
    const bEth0 = topo.ifindex('b', 'eth0');
    const py = pythonReceiver(topo, 'b', ['ff02::114', '7060', String(bEth0)]);
    await py.ready;
    await using tx = new MulticastSocket({ netns: topo.ns('a'), port: 7061, multicastHopLimit: 1 });
    await tx.send('from ip6sock', { address: 'ff02::114', port: 7060, interface: 'eth0', hopLimit: 3 });
    expect(await py.result).toEqual({
      data: 'from ip6sock',
      source: 'fe80::1',
      scope: bEth0,
      port: 7061,
      destination: 'ff02::114',
      ifindex: bEth0,
      hopLimit: 3,
    });
  });

  test('ip6sock receives what Python sends, with the hop limit Python set', async () => {
    await using rx = new MulticastSocket({ netns: topo.ns('a'), port: 7062 });
    rx.join('ff02::114', { interface: 'eth0' });
    const got = nextMessage(rx);
    await topo.exec('b', [PYTHON, '-c', PY_SEND6, 'ff02::114', '7062', String(topo.ifindex('b', 'eth0')), '7', 'from python'], { timeoutMs: KILL_AFTER_MS });
    const [data, info] = await got;
    expect(data.toString()).toBe('from python');
    expect(info).toMatchObject({
      address: 'fe80::2%eth0',
      family: 6,
      interface: { index: topo.ifindex('a', 'eth0'), name: 'eth0' },
      destination: 'ff02::114',
      hopLimit: 7,
    });
  });

  test('IPv4: ip6sock receives the Python sender of 224.0.1.1 port 5000 with its TTL', async () => {
    await using rx = new MulticastSocket({ family: 4, netns: topo.ns('a'), address: '224.0.1.1', port: 5000 });
    rx.join('224.0.1.1', { interface: topo.ifindex('a', 'eth0') });
    const got = nextMessage(rx);
    await topo.exec('b', [PYTHON, '-c', PY_SEND4, '224.0.1.1', '5000', String(topo.ifindex('b', 'eth0')), '9', 'Hola desde Python'], { timeoutMs: KILL_AFTER_MS });
    const [data, info] = await got;
    expect(data.toString()).toBe('Hola desde Python');
    expect(info).toMatchObject({ address: '192.0.2.2', family: 4, interface: { name: 'eth0' }, destination: '224.0.1.1', hopLimit: 9 });
  });
});
