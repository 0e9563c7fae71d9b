'use strict';
// The workload scripts/valgrind.sh runs under memcheck: one short process that drives the
// native paths a UDP user reaches, on loopback only. Sockets opened here and in an explicit
// namespace path, sticky and per-packet options, control data both ways, batched receive
// with truncation, errors thrown from C++, close while receiving, a worker thread that exits
// with a socket open, and one socket still open at process exit (the environment-teardown
// paths). It checks its own results, so a clean valgrind log also means the work was really
// done. Plain CommonJS against dist/: it runs as is.
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const entry = path.join(__dirname, '..', 'dist', 'lib', 'index.js');
const { UdpSocket, interfaces, hopByHop } = require(entry);

const ROUNDS = 6;
const PER_ROUND = 50; // small bursts: the receive buffer never overflows, nothing is dropped
const SLOT = 64; // maxMessageSize; every fifth datagram is longer and arrives truncated
const HERE = '/proc/self/ns/net'; // the netns code path (setns and back) without creating one

function check(ok, what) {
  if (!ok) throw new Error(`valgrind workload: ${what}`);
}

/** Runs fn, which must throw (or reject) with a coded error; returns the code. */
async function expectCode(fn, what) {
  try {
    await fn();
  } catch (err) {
    check(typeof err.code === 'string', `${what}: error without a code: ${err}`);
    return err.code;
  }
  throw new Error(`valgrind workload: ${what}: did not fail`);
}

function waitFor(predicate, what) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 30000;
    const poll = () => {
      if (predicate()) resolve();
      else if (Date.now() > deadline) reject(new Error(`valgrind workload: timed out waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

async function ipv6() {
  check(interfaces.list().some((i) => i.name === 'lo'), 'lo listed');
  check(interfaces.list({ netns: HERE }).length > 0, 'interfaces listed through a netns path');

  const rx = new UdpSocket({ address: '::1', receiveHopByHop: true, receiveTrafficClass: true, maxMessageSize: SLOT, batchSize: 16 });
  const tx = new UdpSocket({ netns: HERE, hopLimit: 9 });
  const port = rx.address().port;
  const got = [];
  rx.on('message', (data, info) => got.push({ data, info }));

  let sent = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < PER_ROUND; i++, sent++) {
      const long = sent % 5 === 0;
      const data = Buffer.alloc(long ? SLOT * 3 : 16 + (sent % 40), sent & 0xff);
      await tx.send(data, {
        address: '::1',
        port,
        interface: 'lo',
        source: '::1',
        hopLimit: 1 + (sent % 255),
        trafficClass: (sent % 64) << 2,
        hopByHop: sent % 10 === 0 ? [hopByHop.routerAlert(sent % 3)] : undefined,
      });
    }
    await waitFor(() => got.length === sent, `datagram ${sent}`);
  }
  got.forEach(({ data, info }, i) => {
    check(data[0] === (i & 0xff), `payload ${i}`);
    check(info.truncated === (i % 5 === 0), `truncation flag ${i}`);
    check(info.hopLimit === 1 + (i % 255), `hop limit ${i}`);
    check(info.interface !== null && info.interface.name === 'lo', `arrival interface ${i}`);
    check((info.hopByHop !== null) === (i % 10 === 0), `hop-by-hop header ${i}`);
  });

  // Connected sends, then the sticky hop-by-hop option.
  tx.connect('::1', port);
  await tx.send('connected');
  tx.disconnect();
  tx.setHopByHop([hopByHop.routerAlert(1)]);
  await tx.send('sticky', { address: '::1', port });
  tx.setHopByHop(null);
  await waitFor(() => got.length === sent + 2, 'connected and sticky datagrams');

  // Failures travel from C++ as coded errors.
  await expectCode(() => new UdpSocket({ address: '2001:db8::1' }), 'bind to an address not on the host');
  await expectCode(() => new UdpSocket({ netns: '/nonexistent/ns' }), 'namespace that does not exist');
  await expectCode(() => tx.send('x', { address: '::1', port, interface: 'nosuchif0' }), 'unknown interface');
  await expectCode(() => tx.send('x', { address: '::1', port, source: '2001:db8::7' }), 'source not on the host');

  // Close while receiving, with datagrams still queued in the kernel.
  for (let i = 0; i < 20; i++) await tx.send('late', { address: '::1', port });
  await rx.close();
  await tx.close();
  await expectCode(() => tx.send('x', { address: '::1', port }), 'send after close');
}

async function ipv4() {
  const rx = new UdpSocket({ family: 4, address: '127.0.0.1' });
  const tx = new UdpSocket({ family: 4 });
  const got = [];
  rx.on('message', (data, info) => got.push(info));
  for (let i = 0; i < 20; i++) await tx.send(`v4 ${i}`, { address: '127.0.0.1', port: rx.address().port, interface: 'lo', hopLimit: 5 });
  await waitFor(() => got.length === 20, 'IPv4 datagrams');
  check(got.every((info) => info.family === 4 && info.hopLimit === 5 && info.destination === '127.0.0.1'), 'IPv4 metadata');
  await rx.close();
  await tx.close();
}

/** A worker loads the addon into its own environment and exits with a socket receiving. */
async function worker() {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const { UdpSocket } = require(${JSON.stringify(entry)});
    const rx = new UdpSocket({ address: '::1' });
    const tx = new UdpSocket();
    rx.once('message', (data) => {
      parentPort.postMessage(data.toString());
      void tx.close();
      process.exit(0); // rx is still open and receiving: teardown has to close it
    });
    void tx.send('from a worker', { address: '::1', port: rx.address().port });
  `;
  const w = new Worker(code, { eval: true });
  // Both listeners first: the message and the exit can arrive in the same tick.
  const exited = new Promise((resolve) => w.once('exit', resolve));
  const text = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  check(text === 'from a worker', 'worker datagram');
  check((await exited) === 0, 'worker exit code');
}

async function main() {
  // The worker goes first, while this thread has not loaded the addon: its exit then
  // unloads the library, so a close callback left behind would jump into unmapped code.
  await worker();
  await ipv6();
  await ipv4();
  // Left open and receiving, but unref'd: the process exits and the addon's environment
  // cleanup closes it (the path a worker thread or a forgotten socket takes).
  const open = new UdpSocket({ address: '::1' });
  open.on('message', () => {});
  open.unref();
  console.log(`valgrind workload: ${ROUNDS * PER_ROUND + 2} IPv6 and 20 IPv4 datagrams, error paths, worker and process teardown: ok`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
