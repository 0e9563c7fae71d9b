#!/usr/bin/env node
// Fuzzes the addon's send and receive paths (sendmsg/sendmmsg with control messages,
// recvmmsg into the receive pool with control messages back) through the public API, on a
// namespace pair (host a sends, host b receives), for a bounded time. Meant to run under the
// sanitized addon: `npm run fuzz:native` runs it through scripts/test-asan.sh, which fails
// on any ASan/UBSan report; plain `node scripts/fuzz-native.js` runs it against the normal
// build. Needs root (namespaces), dist/ and the test bed built (npm run build:all).
//
// Each round, at random:
// - UDP datagrams of random sizes (0, 1, around the MTU, 9000, 65507, any) with random
//   per-packet ancillary data (hop-by-hop options of random shapes, hop limit, traffic
//   class, interface, source), one by one or in sendMany batches;
// - whole IPv6 packets from a raw socket (header included) with random hop-by-hop and
//   destination options headers in front of valid UDP, and random garbage;
// - receivers with random batch sizes, message size limits (truncation), and control
//   message requests (packet info, hop limit, traffic class, hop-by-hop), some reading
//   through the async iterator; receivers are closed and replaced while traffic is queued.
// Every payload carries its sequence number and is derived from it, so each delivered,
// untruncated datagram is checked byte for byte. A failed send must be a coded error; an
// 'error' event, a thrown non-coded error or a corrupted datagram fails the run.
//
//   node scripts/fuzz-native.js [--seconds N] [--seed S]
'use strict';
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.join(__dirname, '..');
const { UdpSocket, RawSocket, hopByHop, packet } = require(path.join(root, 'dist/lib'));
const { hostPair } = require(path.join(root, 'packages/testbed'));

const { values } = parseArgs({ options: { seconds: { type: 'string', default: process.env.IP6SOCK_FUZZ_SECONDS ?? '60' }, seed: { type: 'string', default: '1' } } });
const SECONDS = Number(values.seconds);
const SEED = Number(values.seed) >>> 0;
const PORTS = [7601, 7602, 7603];
const MAGIC = 0x1b6f0c4d;

/** xorshift32, seeded: a run reproduces from its seed (timing aside). */
let state = SEED || 1;
function u32() {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return state >>> 0;
}
const int = (n) => (n <= 1 ? 0 : u32() % n);
const bool = (p = 0.5) => u32() / 0x100000000 < p;
const pick = (a) => a[int(a.length)];
const bytes = (n) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = u32() & 0xff;
  return b;
};

/** The payload of sequence number `seq`, `size` bytes: magic, seq, then bytes derived from seq. */
function payload(seq, size) {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (seq * 31 + i * 7) & 0xff;
  if (size >= 8) {
    b.writeUInt32BE(MAGIC, 0);
    b.writeUInt32BE(seq, 4);
  }
  return b;
}

function randomSize() {
  return pick([0, 1, 7, 8, 9, 64, 1184, 1232, 1452, 1453, 1500, 8952, 9000, 65507, 65527, 65528, int(2000), int(65536)]);
}

/** Hop-by-hop options of random shapes: router alerts, unknown options of any action bits, pads, raw bytes. */
function randomHopByHop() {
  if (bool(0.1)) return bytes(pick([0, 1, 6, 8, 16, 2040, 2048, int(64)]));
  const list = [];
  for (let n = int(5); n > 0; n--) {
    if (bool(0.3)) list.push(hopByHop.routerAlert(int(0x10000)));
    else list.push(hopByHop.option(pick([0x1e, 0x3e, 0x5e, 0x7e, 0x9e, 0xfe, int(256)]), bytes(pick([0, 1, 2, 6, 250, 255, 256, int(40)]))));
  }
  return list;
}

const stats = {
  seconds: SECONDS,
  seed: SEED,
  rounds: 0,
  sent: 0,
  sendErrors: {},
  rawSent: 0,
  received: 0,
  verified: 0,
  truncated: 0,
  withControl: { packetInfo: 0, hopLimit: 0, trafficClass: 0, hopByHop: 0 },
  receiversReplaced: 0,
  failures: [],
};

function fail(what) {
  if (stats.failures.length < 20) stats.failures.push(what);
}

function countError(err) {
  const code = err && typeof err.code === 'string' ? err.code : undefined;
  if (code === undefined) fail(`send failed without a code: ${err && err.stack ? err.stack : String(err)}`);
  else stats.sendErrors[code] = (stats.sendErrors[code] ?? 0) + 1;
}

/** A receiver on `port` in b with random options; it checks what it gets. */
function openReceiver(topo, port) {
  const options = {
    netns: topo.ns('b'),
    port,
    reuseAddr: true,
    batchSize: pick([1, 2, 7, 16, 64, 1 + int(256)]),
    maxMessageSize: pick([1, 7, 8, 100, 1232, 1500, 9000, 65535, 1 + int(70000)]),
    receivePacketInfo: bool(),
    receiveHopLimit: bool(),
    receiveTrafficClass: bool(),
    receiveHopByHop: bool(),
  };
  if (bool(0.15)) options.receiveBufferSize = pick([1, 4096, 65536, 1 << 20]);
  const sock = new UdpSocket(options);
  sock.on('error', (err) => fail(`receiver error: ${err.stack}`));
  const check = (data, info) => {
    stats.received++;
    if (info.destination !== null) stats.withControl.packetInfo++;
    if (info.hopLimit !== null) stats.withControl.hopLimit++;
    if (info.trafficClass !== null) stats.withControl.trafficClass++;
    if (info.hopByHop !== null) {
      stats.withControl.hopByHop++;
      // The kernel hands the whole header: a multiple of 8 bytes, its length byte agreeing.
      const h = info.hopByHop;
      if (h.length < 8 || h.length % 8 !== 0 || (h[1] + 1) * 8 !== h.length) fail(`hop-by-hop header of ${h.length} bytes, length byte ${h[1]}`);
    }
    if (info.truncated) {
      stats.truncated++;
      if (data.length > options.maxMessageSize || info.size < data.length) fail(`truncated datagram of ${data.length} bytes (size ${info.size}, limit ${options.maxMessageSize})`);
      return;
    }
    if (data.length !== info.size) fail(`datagram of ${data.length} bytes reported as ${info.size}`);
    if (data.length < 8 || data.readUInt32BE(0) !== MAGIC) return;
    const seq = data.readUInt32BE(4);
    if (!data.equals(payload(seq, data.length))) fail(`datagram ${seq} (${data.length} bytes) corrupted`);
    else stats.verified++;
  };
  if (bool(0.25)) {
    // Read through the async iterator, slowly now and then.
    void (async () => {
      try {
        for await (const { data, info } of sock) {
          check(data, info);
          if (bool(0.01)) await new Promise((r) => setImmediate(r));
        }
      } catch (err) {
        fail(`iterator threw: ${err.stack}`);
      }
    })();
  } else {
    sock.on('message', check);
  }
  return sock;
}

/** A whole IPv6 packet to b: valid UDP behind random hop-by-hop and destination options headers, or garbage. */
function rawPacket(topo, seq) {
  const source = topo.address('a');
  const destination = topo.address('b');
  if (bool(0.1)) return bytes(int(200));
  let hbh;
  if (bool(0.5)) {
    const list = randomHopByHop();
    try {
      hopByHop.encode(Array.isArray(list) ? list : []);
      hbh = Array.isArray(list) ? list : undefined;
    } catch {
      hbh = undefined;
    }
  }
  const udp = packet.buildUdpPacket({ source, destination, sourcePort: 4000, destinationPort: pick(PORTS), hopLimit: int(256), trafficClass: int(256), hopByHop: hbh, data: payload(seq, pick([0, 8, 100, 1000, int(1400)])) });
  if (!bool(0.5)) return udp;
  // A destination options header between the headers and UDP (the UDP checksum does not cover it).
  let dst;
  try {
    dst = hopByHop.destinationOptions.encode(randomHopByHop().filter?.((o) => o.name !== 'routerAlert') ?? [], { nextHeader: 17 });
  } catch {
    return udp;
  }
  const at = hbh === undefined ? 40 : 40 + (udp[41] + 1) * 8;
  const out = Buffer.concat([udp.subarray(0, at), dst, udp.subarray(at)]);
  if (hbh === undefined) out[6] = 60;
  else out[40] = 60;
  out.writeUInt16BE(out.length - 40, 4);
  return out.length > 1500 ? udp : out;
}

async function main() {
  const topo = await hostPair();
  const open = [];
  let code = 0;
  try {
    const receivers = PORTS.map((p) => openReceiver(topo, p));
    const tx = new UdpSocket({ netns: topo.ns('a'), sendBufferSize: pick([4096, 65536, 1 << 20]) });
    const raw = new RawSocket({ netns: topo.ns('a'), protocol: 255 });
    open.push(tx, raw);
    tx.on('error', (err) => fail(`sender error: ${err.stack}`));
    raw.on('error', (err) => fail(`raw sender error: ${err.stack}`));
    const ifindex = topo.ifindex('a', 'eth0');
    const deadline = Date.now() + SECONDS * 1000;
    let seq = 0;
    while (Date.now() < deadline && stats.failures.length === 0) {
      stats.rounds++;
      const pending = [];
      const sendOne = () => {
        const s = ++seq;
        const options = { address: bool(0.95) ? topo.address('b') : pick(['2001:db8:1::99', topo.address('a'), 'fe80::2%eth0', '::1']), port: pick(PORTS) };
        if (bool(0.4)) options.hopByHop = randomHopByHop();
        if (bool(0.3)) options.hopLimit = int(256);
        if (bool(0.3)) options.trafficClass = int(256);
        if (bool(0.2)) options.interface = pick([ifindex, 'eth0', 1]);
        if (bool(0.1)) options.source = pick([topo.address('a'), '2001:db8:1::2', '2001:db8:7::1']);
        return { data: payload(s, randomSize()), ...options };
      };
      for (let n = 1 + int(32); n > 0; n--) {
        try {
          if (bool(0.3)) {
            const batch = Array.from({ length: 1 + int(16) }, sendOne);
            pending.push(tx.sendMany(batch).then((r) => (stats.sent += r.length), countError));
          } else {
            const { data, ...options } = sendOne();
            pending.push(tx.send(data, options).then(() => stats.sent++, countError));
          }
        } catch (err) {
          countError(err);
        }
      }
      for (let n = int(8); n > 0; n--) {
        try {
          pending.push(raw.send(rawPacket(topo, ++seq), { address: topo.address('b') }).then(() => stats.rawSent++, countError));
        } catch (err) {
          countError(err);
        }
      }
      // Now and then a receiver goes away with traffic in flight, and a new one takes its port.
      if (bool(0.1)) {
        const i = int(receivers.length);
        const old = receivers[i];
        receivers[i] = openReceiver(topo, PORTS[i]);
        void old.close();
        stats.receiversReplaced++;
      }
      await Promise.all(pending);
    }
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all([...receivers, ...open].map((s) => s.close()));
  } catch (err) {
    fail(`harness: ${err && err.stack ? err.stack : String(err)}`);
  } finally {
    await Promise.all(open.map((s) => s.close()));
    await topo.destroy();
  }
  if (stats.received === 0) fail('nothing was received');
  if (stats.failures.length > 0) code = 1;
  console.log(JSON.stringify(stats, null, 2));
  process.exitCode = code;
}

void main();
