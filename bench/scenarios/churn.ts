/**
 * Socket churn: a loop of "open a UdpSocket, listen for 'message', await close()", beside the
 * same loop with node:dgram (createSocket('udp6'), a 'message' listener, bind to [::1]:0,
 * close), each in a child process of its own inside a namespace, so the RSS is the loop's
 * own. No gc is forced; the loop lets the event loop turn every 100 cycles. Reports the RSS
 * growth over the measured cycles (after a warm-up of a tenth of them) and the time per cycle.
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { hostPair } from '../../packages/testbed/src';
import { Row, RowBase, Scenario, ScenarioResult } from '../runner';

/** RSS growth the test suite allows over 20,000 cycles (test/stress/churn.test.ts). */
const TARGET_MB = 48;

const CHILD = `
  const [impl, entry, cycles] = [process.argv[1], process.argv[2], Number(process.argv[3])];
  const noop = () => undefined;
  const one = impl === 'dgram'
    ? () => new Promise((resolve) => {
        const s = require('node:dgram').createSocket('udp6');
        s.on('message', noop);
        s.bind(0, '::1', () => s.close(resolve));
      })
    : (() => {
        const { UdpSocket } = require(entry);
        return () => new UdpSocket().on('message', noop).close();
      })();
  const run = async (n) => {
    for (let i = 0; i < n; i++) {
      await one();
      if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  (async () => {
    await run(Math.ceil(cycles / 10));
    const rss0 = process.memoryUsage().rss;
    const t0 = process.hrtime.bigint();
    await run(cycles);
    const t1 = process.hrtime.bigint();
    console.log(JSON.stringify({ rss0, rss1: process.memoryUsage().rss, ns: Number(t1 - t0) }));
  })().catch((err) => { console.error(err); process.exit(1); });
`;

interface Measured {
  rss0: number;
  rss1: number;
  ns: number;
}

function loop(netns: string, impl: 'ip6sock' | 'dgram', cycles: number): Promise<Measured> {
  const entry = path.join(__dirname, '..', '..', 'lib', 'index.js');
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', CHILD, impl, entry, String(cycles)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${impl} churn: exit ${code ?? signal}: ${err.trim()}`));
      else resolve(JSON.parse(out.trim()) as Measured);
    });
  });
}

export const churn: Scenario = {
  name: 'churn',
  title: 'Churn: open, listen, close; RSS growth and time per cycle, ip6sock UdpSocket vs node:dgram',
  async run(ctx): Promise<ScenarioResult> {
    const cycles = ctx.options.smoke ? 2_000 : 20_000;
    const topo = await hostPair();
    const rows: Row[] = [];
    try {
      for (const [impl, label] of [['ip6sock', 'ip6sock UdpSocket'], ['dgram', 'node:dgram']] as const) {
        const kind = impl === 'ip6sock' ? 'ip6sock' : 'dgram';
        const c = `${cycles.toLocaleString('en')} cycles`;
        const growth: RowBase = { case: c, impl: label, kind, metric: 'RSS growth', unit: 'MB', better: 'lower' };
        const perCycle: RowBase = { case: c, impl: label, kind, metric: 'time per cycle', unit: 'us', better: 'lower' };
        try {
          const m = await loop(topo.ns('a'), impl, cycles);
          const mbGrowth = (m.rss1 - m.rss0) / 2 ** 20;
          const us = m.ns / 1000 / cycles;
          ctx.log(`  churn ${label}: RSS +${mbGrowth.toFixed(1)} MB, ${us.toFixed(0)} us per cycle`);
          rows.push({ ...growth, status: 'ok', value: mbGrowth, runs: [mbGrowth], details: { rssStartMB: m.rss0 / 2 ** 20, rssEndMB: m.rss1 / 2 ** 20 } });
          rows.push({ ...perCycle, status: 'ok', value: us, runs: [us] });
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          rows.push({ ...growth, status: 'failed', reason }, { ...perCycle, status: 'failed', reason });
        }
      }
    } finally {
      await topo.destroy();
    }
    const own = rows.find((r) => r.impl === 'ip6sock UdpSocket' && r.metric === 'RSS growth');
    const got = own?.status === 'ok' && own.value !== undefined ? own.value : undefined;
    return {
      rows,
      targets: [
        {
          name: 'RSS growth over 20,000 UdpSocket open-listen-close cycles',
          want: `< ${TARGET_MB} MB`,
          got: got === undefined ? (own?.reason ?? 'no measurement') : `${got.toFixed(1)} MB over ${cycles.toLocaleString('en')}`,
          status: got === undefined || cycles < 20_000 ? 'not available' : got < TARGET_MB ? 'met' : 'missed',
        },
      ],
      notes: ['one run each (not a median); no gc forced; the loop yields to the event loop every 100 cycles; node:dgram also binds to [::1]:0, which it needs to receive'],
    };
  },
};
