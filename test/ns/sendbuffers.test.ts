/**
 * Buffers that are not what they seem, given to every send path: a view whose ArrayBuffer
 * is detached (transferred) before the call, or detached or shrunk (resizable ArrayBuffer)
 * after the call but before the tick's sends leave, and a Proxy of a Buffer. Each is a coded
 * error (at the call, or on that send's promise) and nothing of the wrong length reaches the
 * wire: an independent receiver (Python's socket module in the peer's namespace) counts the
 * datagrams and their lengths.
 */
import type { ChildProcess } from 'node:child_process';
import { routerAlert } from '../../lib/codec/hopbyhop';
import { buildUdpPacket } from '../../lib/codec/packet';
import { RawSocket } from '../../lib/sockets/raw';
import { RouterAlertSocket, type RouterAlertPacket } from '../../lib/sockets/routeralert/socket';
import { UdpSocket } from '../../lib';
import { describeRoot } from '../helpers/privileged';
import { chain, hostPair, useTopology, type Topology } from '../helpers/topology';

const END = 'END';

/** Detaches the ArrayBuffer under `view` (transfers it away). */
function detach(view: ArrayBufferView): void {
  structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] });
}

/** A Uint8Array of `n` bytes over a resizable ArrayBuffer, and the buffer. */
function resizable(n: number): { view: Uint8Array; rab: ArrayBuffer & { resize(n: number): void } } {
  const rab = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void })(n, { maxByteLength: 4 * n });
  return { view: new Uint8Array(rab, 0, n), rab };
}

/** The code of a settled promise's error, or 'sent N'. */
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    (v) => `sent ${JSON.stringify(v)}`,
    (err: { code?: string }) => String(err.code),
  );

const RECEIVER_PY = `
import json, select, socket, sys, time
kind, arg = sys.argv[1], int(sys.argv[2])
if kind == 'udp':
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(('::', arg))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, arg)
print('ready', flush=True)
lengths = []
deadline = time.monotonic() + 10
while time.monotonic() < deadline and len(lengths) < 1000:
    r, _, _ = select.select([s], [], [], 0.2)
    if not r:
        continue
    d = s.recv(65535)
    if d == b'${END}':
        break
    lengths.append(len(d))
print(json.dumps(lengths), flush=True)
`;

/**
 * Python's socket module in `host`'s namespace, receiving UDP on `port` or raw IPv6 packets of
 * protocol `proto` until the END datagram (at most 10 s, 1,000 datagrams). Resolves once it
 * listens, with a function that waits for its list of datagram lengths.
 */
async function pyReceiver<H extends string>(topo: Topology<H>, host: H, kind: 'udp' | 'raw', arg: number): Promise<{ lengths: () => Promise<number[]>; kill: () => void }> {
  const child: ChildProcess = topo.spawn(host, ['/usr/bin/python3', '-c', RECEIVER_PY, kind, String(arg)]);
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (): void => void child.kill('SIGKILL');
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`python receiver did not start: ${stderr}`)), 10000);
      child.stdout?.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.startsWith('ready\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`python receiver exited: ${stderr}`)));
    });
  } catch (err) {
    kill();
    throw err;
  }
  return {
    kill,
    lengths: async () => {
      await exited;
      const line = stdout.split('\n')[1];
      if (line === undefined || line === '') throw new Error(`python receiver said nothing: ${stderr}`);
      return JSON.parse(line) as number[];
    },
  };
}

describeRoot('sends check the bytes they are given (two namespaces, Python receiver)', () => {
  const topo = useTopology(() => hostPair());
  const B = '2001:db8:1::2';

  test('UdpSocket send() and sendMany(): detached, shrunk and Proxy inputs are coded errors and never reach the wire', async () => {
    const port = 7301;
    const rx = await pyReceiver(topo, 'b', 'udp', port);
    try {
      await using tx = new UdpSocket({ netns: topo.ns('a') });
      const to = { address: B, port };
      // At the call.
      const before = new Uint8Array(11);
      detach(before);
      const beforeView = new DataView(new ArrayBuffer(12));
      detach(beforeView);
      // A fixed-length view past the end of its shrunk buffer reads as 0 bytes: not a 0-byte datagram.
      const past = resizable(16);
      const outOfBounds = new Uint8Array(past.rab, 8, 8);
      past.rab.resize(4);
      const atCall = [
        outcome(tx.send(before, to)),
        outcome(tx.send(beforeView as unknown as Uint8Array, to)),
        outcome(tx.send(new Proxy(Buffer.alloc(13), {}), to)),
        outcome(tx.sendMany([{ data: Buffer.alloc(14), ...to }, { data: before, ...to }])),
        outcome(tx.sendMany([{ data: new Proxy(Buffer.alloc(15), {}), ...to }])),
        outcome(tx.send(outOfBounds, to)),
      ];
      // After the call, in the same tick: the sends have not left yet.
      const afterBuffer = Buffer.from(new ArrayBuffer(21));
      const afterView = new Uint8Array(22);
      const shrunk = resizable(23);
      const grown = resizable(24);
      const manyDetached = Buffer.from(new ArrayBuffer(26));
      const afterCall = [
        outcome(tx.send(afterBuffer, to)),
        outcome(tx.send(afterView, to)),
        outcome(tx.send(shrunk.view, to)),
        // A Buffer that tracks its resizable ArrayBuffer's length: grown, it would send more.
        outcome(tx.send(Object.setPrototypeOf(new Uint8Array(grown.rab), Buffer.prototype) as Buffer, to)),
        outcome(tx.sendMany([{ data: Buffer.alloc(25), ...to }, { data: manyDetached, ...to }, { data: Buffer.alloc(27), ...to }])),
        outcome(tx.send(Buffer.alloc(28), to)),
      ];
      detach(afterBuffer);
      detach(afterView);
      shrunk.rab.resize(3);
      grown.rab.resize(60);
      detach(manyDetached);
      expect(await Promise.all(atCall)).toEqual(['ERR_INVALID_STATE', 'ERR_INVALID_STATE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_STATE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_STATE']);
      await expect(tx.send(outOfBounds, to)).rejects.toThrow(/"data" argument is a view outside its ArrayBuffer/);
      expect(await Promise.all(afterCall)).toEqual(['ERR_INVALID_STATE', 'ERR_INVALID_STATE', 'ERR_INVALID_STATE', 'ERR_INVALID_STATE', 'ERR_INVALID_STATE', 'sent 28']);
      // The errors name what they are about.
      await expect(tx.send(before, to)).rejects.toThrow(/"data" argument is a view of a detached ArrayBuffer/);
      await expect(tx.sendMany([{ data: before, ...to }])).rejects.toThrow(/"messages\[0\]\.data"/);
      await expect(tx.send(new Proxy(Buffer.alloc(1), {}), to)).rejects.toThrow(/a Proxy of one is not one/);
      await tx.send(END, to);
      // What left: the sendMany's two good datagrams (25, 27) and the good send (28), nothing else.
      expect(await rx.lengths()).toEqual([25, 27, 28]);
    } finally {
      rx.kill();
    }
  });

  test('RawSocket send(): detached before and after the call, shrunk, Proxy: coded errors, nothing on the wire', async () => {
    const proto = 253; // RFC 3692 experimentation
    const rx = await pyReceiver(topo, 'b', 'raw', proto);
    try {
      await using tx = new RawSocket({ protocol: proto, netns: topo.ns('a') });
      const to = { address: B };
      const before = new Uint8Array(31);
      detach(before);
      const atCall = [outcome(tx.send(before, to)), outcome(tx.send(new Proxy(Buffer.alloc(32), {}), to))];
      const after = Buffer.from(new ArrayBuffer(33));
      const shrunk = resizable(34);
      const afterCall = [outcome(tx.send(after, to)), outcome(tx.send(shrunk.view, to)), outcome(tx.send(Buffer.alloc(35), to))];
      detach(after);
      shrunk.rab.resize(0);
      expect(await Promise.all(atCall)).toEqual(['ERR_INVALID_STATE', 'ERR_INVALID_ARG_TYPE']);
      expect(await Promise.all(afterCall)).toEqual(['ERR_INVALID_STATE', 'ERR_INVALID_STATE', 'sent 35']);
      await tx.send(END, to);
      expect(await rx.lengths()).toEqual([35]);
    } finally {
      rx.kill();
    }
  });
});

describeRoot('RouterAlertSocket forward() payloads (sender - router - receiver, Python receiver)', () => {
  const topo = useTopology(() => chain());
  const SENDER = '2001:db8:1::1';
  const RECEIVER = '2001:db8:2::2';

  test('a payload detached before forward() is a coded error (the packet stays pending); one detached after it was taken whole', async () => {
    const port = 7302;
    const rx = await pyReceiver(topo, 'receiver', 'udp', port);
    try {
      await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
      await using inject = new RawSocket({ protocol: 255, netns: topo.ns('sender') });
      await using plain = new UdpSocket({ netns: topo.ns('sender') });
      const results: Array<Promise<string>> = [];
      let n = 0;
      const handled = new Promise<void>((resolve) => {
        ra.on('packet', (p: RouterAlertPacket) => {
          const i = n++;
          if (i === 0) {
            const payload = new Uint8Array(41);
            detach(payload);
            results.push(outcome(ra.forward(p, { payload })));
            results.push(outcome(ra.forward(p, { payload: new Proxy(Buffer.alloc(42), {}) })));
            // Still pending: it can be forwarded (here with a good payload).
            results.push(outcome(ra.forward(p, { payload: Buffer.alloc(43) }).then((r) => ('bytes' in r ? r.bytes : -1))));
          } else {
            const payload = new Uint8Array(44);
            results.push(outcome(ra.forward(p, { payload }).then((r) => ('bytes' in r ? r.bytes : -1))));
            detach(payload);
            resolve();
          }
        });
      });
      for (const data of ['first', 'second']) {
        await inject.send(buildUdpPacket({ source: SENDER, destination: RECEIVER, sourcePort: 4000, destinationPort: port, hopLimit: 64, hopByHop: [routerAlert(5)], data: Buffer.from(data) }), { address: RECEIVER });
      }
      await handled;
      // 40 bytes of IPv6 header, 8 of hop-by-hop header, 8 of UDP header, then the payload.
      expect(await Promise.all(results)).toEqual(['ERR_INVALID_STATE', 'ERR_INVALID_ARG_TYPE', `sent ${56 + 43}`, `sent ${56 + 44}`]);
      await plain.send(END, { address: RECEIVER, port });
      expect(await rx.lengths()).toEqual([43, 44]);
    } finally {
      rx.kill();
    }
  });
});
