/**
 * worker.terminate() while the worker is inside a native call. Terminating a worker stops
 * its JavaScript at once, also in the middle of an addon method: every Node-API call the
 * method makes after that fails, and a C++ exception node-addon-api could not turn into a
 * JavaScript one used to end the whole process (std::terminate, exit status 134).
 *
 * A child process (the compiled library, dist/) starts workers that loop over one native
 * call each (interfaces.list, opening a socket, a sysctl read, sends, multicast joins) in
 * a namespace and terminates them at varied moments, 200 times; the process must stay
 * alive throughout and exit 0.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { record } from './fuzz/record';
import { describeRoot } from '../helpers/privileged';
import { exitOf } from '../helpers/wire';
import { hostPair, useTopology } from '../helpers/topology';

const ENTRY = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
const PEER = '2001:db8:1::2';
const TERMINATIONS = 200;

/**
 * argv: namespace, peer address, terminations. Prints one JSON line per 50 terminations
 * and a summary; the main thread makes native calls of its own between terminations, so a
 * process that is still printing is a process that is still working.
 */
const CHILD = `
  const { Worker } = require('node:worker_threads');
  const { interfaces, UdpSocket, system } = require(${JSON.stringify(ENTRY)});
  const [ns, peer, total] = [process.argv[1], process.argv[2], Number(process.argv[3])];
  const WORKER = \`
    const { parentPort, workerData } = require('node:worker_threads');
    const { interfaces, UdpSocket, MulticastSocket, system } = require(\${JSON.stringify(${JSON.stringify(ENTRY)})});
    const { ns, peer, kind } = workerData;
    const payload = Buffer.alloc(64);
    const loops = {
      list: () => { for (;;) interfaces.list({ netns: ns }); },
      open: () => { for (;;) new UdpSocket({ netns: ns }).close(); },
      sysctl: () => { for (;;) system.sysctl('ipv6/conf/all/forwarding', { netns: ns }); },
      send: async () => {
        const s = new UdpSocket({ netns: ns });
        for (;;) await Promise.all(Array.from({ length: 16 }, () => s.send(payload, { address: peer, port: 9 })));
      },
      join: () => {
        const s = new MulticastSocket({ netns: ns });
        for (;;) {
          s.join('ff02::1:3', { interface: 'eth0' });
          s.leave('ff02::1:3', { interface: 'eth0' });
        }
      },
    };
    parentPort.postMessage('looping');
    loops[kind]();
  \`;
  const kinds = ['list', 'open', 'sysctl', 'send', 'join'];
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  (async () => {
    const exitCodes = {};
    const started = Date.now();
    for (let i = 0; i < total; i++) {
      const kind = kinds[i % kinds.length];
      const w = new Worker(WORKER, { eval: true, workerData: { ns, peer, kind } });
      const errors = [];
      w.on('error', (err) => errors.push(err));
      const exited = new Promise((resolve) => w.once('exit', resolve));
      // Varied moments: while the library loads, as the loop starts, and 0-12 ms into it.
      const moment = Math.floor(i / kinds.length) % 4;
      if (moment === 0) await new Promise((resolve) => w.once('online', resolve));
      if (moment >= 1) {
        await Promise.race([new Promise((resolve) => w.once('message', resolve)), exited]);
        if (moment === 2) await new Promise((resolve) => setImmediate(resolve));
        if (moment === 3) await wait(i % 13);
      }
      const code = await w.terminate();
      await exited;
      if (errors.length > 0) throw new Error('worker ' + i + ' (' + kind + '): ' + errors[0].stack);
      exitCodes[code] = (exitCodes[code] || 0) + 1;
      // This thread still works: a native call of its own after each termination.
      interfaces.list({ netns: ns });
      if ((i + 1) % 50 === 0) console.log(JSON.stringify({ terminated: i + 1, ms: Date.now() - started }));
    }
    // And a socket here still sends.
    const s = new UdpSocket({ netns: ns });
    await s.send('still alive', { address: peer, port: 9 });
    await s.close();
    console.log(JSON.stringify({ done: total, exitCodes, ms: Date.now() - started, forwarding: system.sysctl('ipv6/conf/all/forwarding', { netns: ns }) }));
  })().catch((err) => { console.error(err); process.exitCode = 2; });
`;

describeRoot('worker.terminate() during native calls', () => {
  const topo = useTopology(() => hostPair());

  beforeAll(() => {
    if (!fs.existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: build it with npx tsc -p tsconfig.build.json (npm test does so in pretest)`);
  });

  test(`${TERMINATIONS} terminations inside list/open/sysctl/send/join: the process stays alive and exits 0`, async () => {
    const child = spawn(process.execPath, ['-e', CHILD, topo.ns('a'), PEER, String(TERMINATIONS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [status, signal] = await exitOf(child, 45_000);
    // Before the fix: "terminate called after throwing an instance of 'Napi::Error'", SIGABRT.
    expect({ status, signal, stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => 'terminated' in l).map((l) => l.terminated)).toEqual([50, 100, 150, 200]);
    const summary = lines[lines.length - 1] as { done: number; exitCodes: Record<string, number>; ms: number };
    expect(summary.done).toBe(TERMINATIONS);
    // terminate() reports exit code 1 for a worker it stopped (0 would mean it had ended by itself).
    expect(Object.values(summary.exitCodes).reduce((a, b) => a + b, 0)).toBe(TERMINATIONS);
    record('lifecycle', { test: 'worker.terminate in native calls', terminations: TERMINATIONS, exitCodes: summary.exitCodes, ms: summary.ms });
  }, 60_000);
});
