/**
 * The bench's common runner, orchestrator side: what every scenario module (bench/scenarios/)
 * uses to start processes in namespaces, repeat a measurement, take medians and write rows.
 *
 * A scenario builds its topology with the test bed (packages/testbed), starts one process per
 * role inside the namespaces (a C program from bench/c, or bench/child.ts for node:dgram and
 * ip6sock), drives them over the line protocol (bench/protocol.ts), and returns rows: one
 * number per (case, implementation), the median of the measured runs after the warm-up.
 * @packageDocumentation
 */
import { execFile, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { readNetFile } from '../lib/links/procnet';
import type { Topology } from '../packages/testbed/src';
import { packageRoot } from './ip6sock';
import type { CounterReport, Reply } from './protocol';

// ---------------------------------------------------------------------------------------
// Options, rows, scenarios

/** How much to measure. `npm run bench` uses the defaults, `bench:smoke` the smoke values. */
export interface BenchOptions {
  /** Tiny counts, one run, no warm-up: checks that everything still works. */
  readonly smoke: boolean;
  /** Measured runs per case; the row's value is their median. */
  readonly runs: number;
  /** Runs made first and discarded (JIT, caches, ARP/ND, page faults). */
  readonly warmup: number;
  /** Payload sizes of the receive scenario, bytes. */
  readonly sizes: readonly number[];
  /** Packets per receive run (sent by the blaster). */
  readonly receivePackets: number;
  /** Packets per send run. */
  readonly sendPackets: number;
  /** Sends queued behind a blocked path in the send scenario's backlog-drain case. */
  readonly drainSends: number;
  /** Packets per relay run. */
  readonly relayPackets: number;
  /** Round trips per latency run. */
  readonly roundTrips: number;
  /** Groups joined on one socket in the scale scenario. */
  readonly joinGroups: number;
  /** Links of the host that joins one group on 'all' of them. */
  readonly links: number;
  /** Packets the long-running receiver must receive in the memory scenario. */
  readonly soakPackets: number;
  /** Pin the measured process and the traffic source to separate CPUs (taskset). */
  readonly pin: boolean;
  /** Only these scenarios (null: all). */
  readonly only: readonly string[] | null;
  /** Run every Node child with --cpu-prof, writing .cpuprofile files here (null: off). */
  readonly cpuProfileDir: string | null;
}

/**
 * Which side of a comparison a row is on. "vs C" compares with the 'c' row of the case; a
 * 'reference' row is another baseline, shown for context, never the one "vs C" means.
 */
export type RowKind = 'ip6sock' | 'dgram' | 'c' | 'reference';

export type RowStatus = 'ok' | 'not available' | 'failed';

export type Unit = 'pps' | 'us' | 'ms' | 'MB';

/** One number of the result table: one implementation in one case. */
export interface Row {
  /** What was measured, e.g. "unicast 64 B". */
  readonly case: string;
  /** e.g. "ip6sock UdpSocket", "node:dgram", "C recvmmsg". */
  readonly impl: string;
  readonly kind: RowKind;
  readonly metric: string;
  readonly unit: Unit;
  readonly better: 'higher' | 'lower';
  status: RowStatus;
  /** Why a row is not available or failed. */
  reason?: string;
  /** The median of `runs`. */
  value?: number;
  /** Every measured run (warm-up excluded). */
  runs?: number[];
  /** value / the C row's value in the same case. */
  vsC?: number;
  /** Where vsC could as well have landed: its 90% bootstrap interval over both rows' runs. */
  vsCInterval?: [number, number];
  /** value / the node:dgram row's value in the same case (and mode). */
  vsDgram?: number;
  /** Secondary numbers (drops, RSS, p99, ...), medians unless said otherwise. */
  details?: Record<string, number | string | null>;
}

/** A goal of the issue, checked against this run's rows. Informational: never an exit code. */
export interface Target {
  readonly name: string;
  readonly want: string;
  readonly got: string;
  readonly status: 'met' | 'missed' | 'not available';
}

export interface ScenarioResult {
  readonly rows: Row[];
  readonly targets: Target[];
  /** Facts needed to read the rows (what the reference is, what was substituted). */
  readonly notes: string[];
}

/** One bench scenario: a small module in bench/scenarios/. */
export interface Scenario {
  readonly name: string;
  readonly title: string;
  run(ctx: Context): Promise<ScenarioResult>;
}

/**
 * SO_RCVBUF asked for by every receiver, whatever its implementation (the kernel caps it at
 * net.core.rmem_max). The default (about 200 kB, a few hundred small datagrams) turns any
 * scheduling hiccup of the receiving process into drops; with the same larger buffer
 * everywhere the rates compare the receive paths, not the luck of the scheduler.
 */
export const RECEIVE_BUFFER = 4 * 1024 * 1024;

/** One scenario's part of the JSON result. */
export interface ScenarioReport {
  name: string;
  title: string;
  /** 'failed': the scenario could not run at all (topology, compiler, ...); rows say the rest. */
  status: 'ok' | 'failed';
  reason?: string;
  seconds: number;
  rows: Row[];
  targets: Target[];
  notes: string[];
}

/** The JSON the bench writes to bench/results/ (and to --out). */
export interface BenchReport {
  version: 1;
  date: string;
  /** Cores, CPU model, kernel, node, pinning, load average before and after, commit. */
  machine: Record<string, string | number | null>;
  options: BenchOptions;
  scenarios: ScenarioReport[];
  /** True when every available measurement produced a number. */
  ok: boolean;
}

/** The C programs in bench/c/. */
export const C_PROGRAMS = ['blaster', 'sink', 'relay', 'pingpong'] as const;
export type CProgram = (typeof C_PROGRAMS)[number];

/** What a scenario gets from the runner. */
export interface Context {
  readonly options: BenchOptions;
  /** Paths of the compiled C programs. */
  readonly bin: Readonly<Record<CProgram, string>>;
  /** CPUs for the traffic side and for the process measured, when pinning. */
  readonly cpu: { readonly traffic?: number; readonly measured?: number };
  /** argv of a Node child with this role (bench/roles/), with extra node flags if given. */
  node(role: string, args: ReadonlyArray<string | number>, nodeFlags?: readonly string[]): string[];
  /** A progress line on stderr. */
  log(text: string): void;
}

// ---------------------------------------------------------------------------------------
// Building the C programs

/** Compiles bench/c/*.c into bench/bin/ with `cc -O2 -Wall -Wextra` (CC overrides cc). */
export async function compileC(): Promise<Record<CProgram, string>> {
  const root = packageRoot();
  const binDir = path.join(root, 'bench', 'bin');
  fs.mkdirSync(binDir, { recursive: true });
  const cc = process.env.CC ?? 'cc';
  const entries = await Promise.all(
    C_PROGRAMS.map(
      (name) =>
        new Promise<[CProgram, string]>((resolve, reject) => {
          const out = path.join(binDir, name);
          const args = ['-O2', '-Wall', '-Wextra', '-o', out, path.join(root, 'bench', 'c', `${name}.c`)];
          execFile(cc, args, { timeout: 60_000 }, (error, _stdout, stderr) => {
            if (error) reject(new Error(`${cc} ${args.join(' ')} failed: ${stderr || error.message}`));
            else resolve([name, out]);
          });
        }),
    ),
  );
  return Object.fromEntries(entries) as Record<CProgram, string>;
}

// ---------------------------------------------------------------------------------------
// Processes in namespaces

/**
 * A process inside a namespace that speaks the line protocol. Started through the test
 * bed's Topology.spawn, so destroy() and the test bed's exit handler kill it whatever
 * happens to the bench.
 */
export class Peer {
  readonly pid: number;
  private readonly replies: Reply[] = [];
  private waiter: { resolve: (r: Reply) => void; reject: (e: Error) => void } | undefined;
  private exited: Error | undefined;
  private readonly exitPromise: Promise<void>;
  private stderrTail = '';

  private constructor(
    readonly label: string,
    private readonly child: ChildProcess,
  ) {
    if (child.pid === undefined) throw new Error(`${label}: could not start`);
    this.pid = child.pid;
    child.stdin?.on('error', () => {
      /* the child is gone; its exit reports why */
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000);
    });
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => this.onLine(line));
    // 'close', not 'exit': it comes after stdout and stderr are drained, so the last reply
    // is delivered and the error message has all of stderr.
    this.exitPromise = new Promise((resolve) => {
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        const how = signal !== null ? `killed by ${signal}` : `exited with code ${String(code)}`;
        this.exited = new Error(`${label} ${how}${this.stderrTail.trim() ? `: ${this.stderrTail.trim()}` : ''}`);
        this.settle(this.exited);
        resolve();
      });
    });
  }

  /** Starts `argv` in `host` (pinned to `cpu` if given) and waits for its ready line. */
  static async start<H extends string>(topo: Topology<H>, host: H, argv: readonly string[], options: { label: string; cpu?: number }): Promise<Peer> {
    const cmd = options.cpu === undefined ? [...argv] : ['taskset', '-c', String(options.cpu), ...argv];
    const peer = new Peer(options.label, topo.spawn(host, cmd, { stdio: ['pipe', 'pipe', 'pipe'] }));
    try {
      const ready = await peer.next('start', 20_000);
      if (ready.event !== 'ready') throw new Error(`${options.label}: expected a ready line, got ${JSON.stringify(ready)}`);
    } catch (err) {
      await peer.close();
      throw err;
    }
    return peer;
  }

  /** Sends one command and waits for its reply; kills the process if none comes in time. */
  request(command: string, timeoutMs: number): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited);
    this.child.stdin?.write(`${command}\n`);
    return this.next(command, timeoutMs);
  }

  /** Asks the process to quit; kills it if it has not gone within 5 s. */
  async close(): Promise<void> {
    if (this.exited) return;
    this.child.stdin?.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exitPromise;
    clearTimeout(timer);
  }

  private next(command: string, timeoutMs: number): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued !== undefined) return queued.error === undefined ? Promise.resolve(queued) : Promise.reject(this.replyError(command, queued));
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.child.kill('SIGKILL');
        reject(new Error(`${this.label}: no answer to "${command}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          if (r.error === undefined) resolve(r);
          else reject(this.replyError(command, r));
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private replyError(command: string, reply: Reply): Error {
    return new Error(`${this.label}: "${command}" failed: ${String(reply.error)}`);
  }

  private onLine(line: string): void {
    let reply: Reply;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      reply = parsed as Reply;
    } catch {
      // Not protocol: keep it with stderr, where a failure message will show it.
      this.stderrTail = `${this.stderrTail}${line}\n`.slice(-4000);
      return;
    }
    const w = this.waiter;
    if (w === undefined) {
      this.replies.push(reply);
      return;
    }
    this.waiter = undefined;
    w.resolve(reply);
  }

  private settle(error: Error): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(error);
  }
}

/** Starts a peer, or gives the error that prevented it (for comparisons that go on without it). */
export function startPeer<H extends string>(topo: Topology<H>, host: H, argv: readonly string[], options: { label: string; cpu?: number }): Promise<Peer | Error> {
  return Peer.start(topo, host, argv, options).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
}

/** Closes every peer that started. */
export async function closePeers(peers: ReadonlyArray<Peer | Error | undefined>): Promise<void> {
  for (const p of peers) if (p instanceof Peer) await p.close();
}

/** Starts a peer, runs fn with it, and always closes it. */
export async function withPeer<H extends string, R>(
  topo: Topology<H>,
  host: H,
  argv: readonly string[],
  options: { label: string; cpu?: number },
  fn: (peer: Peer) => Promise<R>,
): Promise<R> {
  const peer = await Peer.start(topo, host, argv, options);
  try {
    return await fn(peer);
  } finally {
    await peer.close();
  }
}

// ---------------------------------------------------------------------------------------
// Reading replies

/** A number field of a reply (throws with the reply if it is missing). */
export function num(reply: Reply, field: string): number {
  const v = reply[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`reply field ${field} is not a number: ${JSON.stringify(reply).slice(0, 300)}`);
  return v;
}

/** A receiver's report. */
export function counterReport(reply: Reply): CounterReport {
  const drops = reply.kernelDrops;
  return {
    received: num(reply, 'received'),
    bytes: num(reply, 'bytes'),
    other: num(reply, 'other'),
    c0: num(reply, 'c0'),
    t0: num(reply, 't0'),
    c1: num(reply, 'c1'),
    t1: num(reply, 't1'),
    kernelDrops: typeof drops === 'number' ? drops : null,
    cpuNs: num(reply, 'cpuNs'),
    rssKb: num(reply, 'rssKb'),
  };
}

/** Packets per second between a receiver's first and last stamps (NaN: too few to time). */
export function rateOf(r: CounterReport): number {
  if (r.c1 <= r.c0 || r.t1 <= r.t0) return Number.NaN;
  return ((r.c1 - r.c0) * 1e9) / (r.t1 - r.t0);
}

/** CPU time the receiver used per packet it handled, in µs (NaN for none). */
export function cpuPerPacketUs(r: CounterReport): number {
  return r.received > 0 ? r.cpuNs / r.received / 1000 : Number.NaN;
}

/** Round-trip samples of a ping reply, in ns. */
export function rttSamples(reply: Reply): number[] {
  const v = reply.rttNs;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new Error('ping reply without rttNs samples');
  return v as number[];
}

/** Counters of /proc/net/snmp6 in a namespace (Udp6InDatagrams, Udp6RcvbufErrors, ...). */
export function snmp6(netns: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readNetFile('snmp6', netns).split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if (name && value && /^\d+$/.test(value)) out[name] = Number(value);
  }
  return out;
}

/** A generous bound for a command that moves `packets` packets (machines differ by 10x). */
export function timeoutFor(packets: number): number {
  return 20_000 + Math.ceil(packets / 10_000) * 1000;
}

// ---------------------------------------------------------------------------------------
// Statistics

/** Median (the mean of the middle two for an even count). NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The p-th percentile (0-100), nearest rank. NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1];
}

/**
 * The 90% bootstrap interval of median(a) / median(b): both sets of runs resampled with
 * replacement, 2,000 times, from a fixed seed so the same runs always give the same
 * interval. Undefined with fewer than 3 runs on either side, or a median that is not positive.
 */
export function ratioInterval(a: readonly number[], b: readonly number[]): [number, number] | undefined {
  if (a.length < 3 || b.length < 3) return undefined;
  let seed = 0x9e3779b9;
  // mulberry32: small, fast and good enough to resample a handful of runs.
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const resample = (v: readonly number[]): number[] => v.map(() => v[Math.floor(random() * v.length)]);
  const ratios: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const den = median(resample(b));
    if (!(den > 0)) return undefined;
    ratios.push(median(resample(a)) / den);
  }
  return [percentile(ratios, 5), percentile(ratios, 95)];
}

/** One side of an interleaved comparison: a name and one measurement. */
export interface Contender<T> {
  readonly label: string;
  once(): Promise<T>;
}

/**
 * Measures every contender warm-up + runs times, round-robin: round 1 runs each once, then
 * round 2, ... A change in the machine's load (other work on a shared CI box) then hits
 * every contender alike instead of whichever happened to run at that moment. Returns, per
 * contender, its measured results (warm-up dropped), or the error that stopped it; a
 * contender that fails sits out the remaining rounds, the others go on.
 */
export async function interleave<T>(ctx: Context, label: string, contenders: ReadonlyArray<Contender<T>>, runs = ctx.options.runs): Promise<Array<T[] | Error>> {
  const { warmup } = ctx.options;
  const results: Array<T[] | Error> = contenders.map(() => []);
  for (let round = 0; round < warmup + runs; round++) {
    for (const [i, c] of contenders.entries()) {
      const acc = results[i];
      if (acc instanceof Error) continue;
      try {
        const value = await c.once();
        if (round >= warmup) acc.push(value);
      } catch (err) {
        results[i] = err instanceof Error ? err : new Error(String(err));
        ctx.log(`  ${c.label} failed: ${results[i] instanceof Error ? (results[i] as Error).message : ''}`);
      }
    }
    ctx.log(`  ${label}: ${round < warmup ? 'warm-up' : `run ${round - warmup + 1}/${runs}`} done`);
  }
  return results;
}

/** warm-up + runs measurements of one thing; throws the first error. */
export async function repeat<T>(ctx: Context, label: string, once: () => Promise<T>): Promise<T[]> {
  const [result] = await interleave(ctx, label, [{ label, once }]);
  if (result instanceof Error) throw result;
  return result;
}

// ---------------------------------------------------------------------------------------
// Rows

/** The identity of a row, before it has a number. */
export type RowBase = Pick<Row, 'case' | 'impl' | 'kind' | 'metric' | 'unit' | 'better'>;

/** A row measured in every run: value = median; failed if any run gave no number. */
export function measuredRow(base: RowBase, runs: number[], details?: Record<string, number | string | null>): Row {
  if (runs.length === 0 || runs.some((v) => !Number.isFinite(v))) {
    return { ...base, status: 'failed', reason: `a run produced no number (${runs.map(String).join(', ')})`, runs, details };
  }
  return { ...base, status: 'ok', value: median(runs), runs, details };
}

export function unavailableRow(base: RowBase, reason: string): Row {
  return { ...base, status: 'not available', reason };
}

export function failedRow(base: RowBase, err: unknown): Row {
  return { ...base, status: 'failed', reason: err instanceof Error ? err.message : String(err) };
}

/**
 * Runs a measurement that produces the rows of `bases` (several numbers from the same runs);
 * an exception becomes failed rows, not a failed scenario.
 */
export async function attemptRows(ctx: Context, bases: readonly RowBase[], measure: () => Promise<Row[]>): Promise<Row[]> {
  try {
    return await measure();
  } catch (err) {
    ctx.log(`  ${bases[0].impl} (${bases.map((b) => b.case).join(', ')}) failed: ${err instanceof Error ? err.message : String(err)}`);
    return bases.map((b) => failedRow(b, err));
  }
}

/** Sets row.vsC / row.vsDgram from the reference rows (when both sides have a number). */
export function relate(row: Row, c: Row | undefined, dgram: Row | undefined): void {
  const ratio = (ref: Row | undefined): number | undefined =>
    // Both positive: a ratio of a negative difference (added latency below noise) means nothing.
    row.status === 'ok' && ref?.status === 'ok' && ref.value !== undefined && ref.value > 0 && row.value !== undefined && row.value > 0
      ? row.value / ref.value
      : undefined;
  const vsC = ratio(c);
  const vsDgram = ratio(dgram);
  if (vsC !== undefined && row !== c) {
    row.vsC = vsC;
    const interval = row.runs && c?.runs ? ratioInterval(row.runs, c.runs) : undefined;
    if (interval !== undefined) row.vsCInterval = interval;
  }
  if (vsDgram !== undefined && row !== dgram) row.vsDgram = vsDgram;
}

/** relate() every row to the C and node:dgram rows of its own case. */
export function relateByCase(rows: readonly Row[]): void {
  for (const row of rows) {
    const sameCase = rows.filter((r) => r.case === row.case);
    relate(
      row,
      sameCase.find((r) => r.kind === 'c'),
      sameCase.find((r) => r.kind === 'dgram'),
    );
  }
}

/** Orders rows by case (first appearance), keeping the order within each case. */
export function byCase(rows: readonly Row[]): Row[] {
  const cases = [...new Set(rows.map((r) => r.case))];
  return cases.flatMap((c) => rows.filter((r) => r.case === c));
}

/**
 * A target on a cost ratio (CPU per packet): the capacity ratio is C's cost / ours, and
 * must be >= want.
 */
export function costTarget(name: string, row: Row | undefined, want: number): Target {
  const wantText = `>= ${want}x C`;
  if (row === undefined || row.status !== 'ok' || row.vsC === undefined) {
    return { name, want: wantText, got: row?.reason ?? 'no measurement', status: 'not available' };
  }
  const capacity = 1 / row.vsC;
  const interval = row.vsCInterval ? `, 90% interval ${(1 / row.vsCInterval[1]).toFixed(2)}-${(1 / row.vsCInterval[0]).toFixed(2)}` : '';
  return { name, want: wantText, got: `${capacity.toFixed(2)}x C (${row.vsC.toFixed(2)}x the CPU per packet${interval})`, status: capacity >= want ? 'met' : 'missed' };
}

/** A target of the form "row.vsC >= want". */
export function ratioTarget(name: string, row: Row | undefined, want: number, note = ''): Target {
  const wantText = `>= ${want}x C`;
  if (row === undefined || row.status !== 'ok' || row.vsC === undefined) {
    return { name, want: wantText, got: row?.reason ?? 'no measurement', status: 'not available' };
  }
  const parts = [row.vsCInterval ? `90% interval ${row.vsCInterval[0].toFixed(2)}-${row.vsCInterval[1].toFixed(2)}` : '', note].filter((p) => p !== '');
  return { name, want: wantText, got: `${row.vsC.toFixed(2)}x C${parts.length > 0 ? ` (${parts.join('; ')})` : ''}`, status: row.vsC >= want ? 'met' : 'missed' };
}

/** Bytes to MB (10^6, as the issue's "10 MB"). */
export function mb(kb: number): number {
  return (kb * 1024) / 1e6;
}
