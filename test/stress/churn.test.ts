/**
 * Open-listen-close churn: a socket that is closed gives back its native memory at close(),
 * not when the garbage collector gets to it. Each class runs 20,000 cycles of "open, listen,
 * await close()" in a child process of its own (the compiled library, dist/), so the RSS
 * measured is that loop's alone; the children run side by side. No gc is forced: what
 * close() does not free piles up until collection, which a loop like this one triggers late
 * (V8 was never told about the native bytes). The loop lets the event loop turn every 100
 * cycles, as any server does between connections: a loop that never does so never runs the
 * finalizers of anything, in any Node program.
 *
 * Asserts memory and descriptors, not time: RSS growth over the 20,000 cycles (after a
 * warm-up of 2,000 that lets V8 size its heap) and the fd count back where it started.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { record } from './fuzz/record';
import { describeRoot } from '../helpers/privileged';
import { lan, useTopology } from '../helpers/topology';

const ENTRY = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
const CYCLES = 20_000;
const WARMUP = 2_000;
const KINDS = ['udp', 'multicast', 'anycast', 'routeralert', 'raw', 'watcher'] as const;
type Kind = (typeof KINDS)[number];
/**
 * RSS growth allowed over CYCLES cycles, in MiB, for every class. Measured within the bounded
 * heap below: 1-15 MiB on Node 20 and 26; before close() freed anything, the same loop grew
 * by 150-720 MiB per socket class.
 */
const GROWTH_LIMIT_MB = 30;

/**
 * The same V8 heap bounds on every Node line: how far V8 lets its heap grow before it
 * collects differs between versions (Node 26's loop of plain JS objects grows several times
 * as much as Node 20's), and that is not what this test measures. With the young generation
 * and the old space bounded, RSS growth is what close() leaves behind natively; JS objects
 * that stayed reachable would exhaust the bounded heap and fail the child instead.
 */
const V8_HEAP = ['--max-semi-space-size=1', '--max-old-space-size=96'];

/** argv: kind, namespace, cycles, warm-up. Prints one JSON line: rss and fd counts before and after. */
const CHILD = `
  const fs = require('node:fs');
  const { UdpSocket, MulticastSocket, RawSocket, RouterAlertSocket, AnycastGroup, interfaces } = require(${JSON.stringify(ENTRY)});
  const [kind, ns, cycles, warmup] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  const noop = () => undefined;
  const open = {
    udp: () => new UdpSocket({ netns: ns }).on('message', noop),
    multicast: () => { const s = new MulticastSocket({ netns: ns, port: 7200 }); s.join('ff02::1:13', { interface: 'all' }); return s.on('message', noop); },
    anycast: () => new AnycastGroup('2001:db8:1::99', { interface: 'eth0', netns: ns, port: 7201 }).on('message', noop),
    routeralert: () => new RouterAlertSocket({ netns: ns, value: 21 }).on('packet', noop),
    raw: () => new RawSocket({ netns: ns, protocol: 58 }).on('message', noop),
    watcher: () => interfaces.watch({ netns: ns }).on('link', noop),
  }[kind];
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  const run = async (n) => {
    for (let i = 0; i < n; i++) {
      await open().close();
      if (i % 100 === 99) await turn();
    }
  };
  (async () => {
    await run(warmup);
    const rss0 = process.memoryUsage().rss, fd0 = fds(), t0 = process.hrtime.bigint();
    await run(cycles);
    const t1 = process.hrtime.bigint();
    console.log(JSON.stringify({ kind, cycles, rss0, rss1: process.memoryUsage().rss, fd0, fd1: fds(), ms: Number(t1 - t0) / 1e6 }));
  })().catch((err) => { console.error(err); process.exit(1); });
`;

interface ChurnResult {
  kind: Kind;
  cycles: number;
  rss0: number;
  rss1: number;
  fd0: number;
  fd1: number;
  ms: number;
}

function churn(kind: Kind, netns: string): Promise<ChurnResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...V8_HEAP, '-e', CHILD, kind, netns, String(CYCLES), String(WARMUP)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // Bounded: a child that hangs is killed (and the test fails) rather than left behind.
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${kind}: exit ${code ?? signal}\n${err}`));
      else resolve(JSON.parse(out.trim()) as ChurnResult);
    });
  });
}

describeRoot('open-listen-close churn (20,000 cycles per class, no forced gc)', () => {
  const topo = useTopology(() => lan(['a', 'b']));

  test(
    'each class gives its memory back at close(): RSS grows less than the limit, fds return to where they were',
    async () => {
      if (!fs.existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: build it with npx tsc -p tsconfig.build.json (npm test does so in pretest)`);
      const results = await Promise.all(KINDS.map((kind) => churn(kind, topo.ns('a'))));
      const growth = Object.fromEntries(results.map((r) => [r.kind, Math.round(((r.rss1 - r.rss0) / 2 ** 20) * 10) / 10]));
      for (const r of results) expect({ kind: r.kind, fds: r.fd1 }).toEqual({ kind: r.kind, fds: r.fd0 });
      // Every class's growth in the failure message, beside the limits it broke.
      const over = Object.fromEntries(results.filter((r) => growth[r.kind] >= GROWTH_LIMIT_MB).map((r) => [r.kind, `${growth[r.kind]} MiB (limit ${GROWTH_LIMIT_MB})`]));
      record('churn', { cycles: CYCLES, node: process.version, growthMiB: growth });
      expect({ over, growth }).toEqual({ over: {}, growth });
    },
    180_000,
  );
});
