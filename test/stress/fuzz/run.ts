/**
 * `npm run fuzz`: feeds every parser target (test/stress/fuzz/targets.ts) a million random and
 * mutated inputs (by default) and prints, per target, how many were accepted, how many
 * were rejected with which accepted error code, and how many ended any other way. Exits 1
 * if any input ended another way, printing the first few with what reproduces them.
 *
 *   node build/fuzz/test/stress/fuzz/run.js [--iterations N] [--seed S] [--target NAME]...
 *                                    [--json FILE] [--markdown]
 *
 * The compiled form runs with plain node (test/stress/fuzz/tsconfig.json compiles it with lib/
 * and the examples into build/fuzz/), so nothing beyond `npm ci` is needed.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { allTargets, runTarget, type AnyTarget, type TargetResult } from './targets';

/** What one run did, as --json writes it. */
export interface FuzzReport {
  seed: number;
  iterationsPerTarget: number;
  node: string;
  results: TargetResult[];
  totalInputs: number;
  totalUnexpected: number;
  milliseconds: number;
}

/** Runs the chosen targets (all when `names` is empty) and returns the counts. */
export function runFuzz(iterations: number, seed: number, names: readonly string[] = [], onResult?: (r: TargetResult) => void): FuzzReport {
  const targets = allTargets().filter((t) => names.length === 0 || names.includes(t.name));
  const unknown = names.filter((n) => !allTargets().some((t) => t.name === n));
  if (unknown.length > 0) throw new Error(`unknown target(s): ${unknown.join(', ')}; targets are: ${allTargets().map((t) => t.name).join(', ')}`);
  const started = performance.now();
  const results = targets.map((t: AnyTarget) => {
    // Each target has its own input type; runTarget is generic over it.
    const r = runTarget(t as Parameters<typeof runTarget>[0], iterations, seed);
    onResult?.(r);
    return r;
  });
  return {
    seed,
    iterationsPerTarget: iterations,
    node: process.version,
    results,
    totalInputs: results.reduce((n, r) => n + r.inputs, 0),
    totalUnexpected: results.reduce((n, r) => n + r.unexpected, 0),
    milliseconds: Math.round(performance.now() - started),
  };
}

const fmt = (n: number): string => n.toLocaleString('en-US');

function codes(r: TargetResult): string {
  const list = Object.entries(r.codes).map(([code, n]) => `${code} ${fmt(n)}`);
  // A parser that skips what it cannot read (the /proc tables) rejects by returning nothing.
  const unparsed = r.rejected - Object.values(r.codes).reduce((a, b) => a + b, 0);
  if (unparsed > 0) list.push(`nothing parsed ${fmt(unparsed)}`);
  return list.length > 0 ? list.join(', ') : '-';
}

/** The report as a Markdown table (what docs/reliability.md shows). */
export function markdown(report: FuzzReport): string {
  const lines = [
    `Seed ${report.seed}, ${fmt(report.iterationsPerTarget)} inputs per target, Node ${report.node}, ${(report.milliseconds / 1000).toFixed(1)} s in all.`,
    '',
    '| Target | Inputs | Parsed | Rejected (code, count) | Unexpected | Seconds |',
    '|---|---:|---:|---|---:|---:|',
    ...report.results.map((r) => `| ${r.target} | ${fmt(r.inputs)} | ${fmt(r.accepted)} | ${codes(r)} | ${fmt(r.unexpected)} | ${(r.milliseconds / 1000).toFixed(1)} |`),
    `| **all** | **${fmt(report.totalInputs)}** | ${fmt(report.results.reduce((n, r) => n + r.accepted, 0))} | ${fmt(report.results.reduce((n, r) => n + r.rejected, 0))} | **${fmt(report.totalUnexpected)}** | ${(report.milliseconds / 1000).toFixed(1)} |`,
  ];
  return `${lines.join('\n')}\n`;
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      iterations: { type: 'string', default: '1000000' },
      seed: { type: 'string', default: '1' },
      target: { type: 'string', multiple: true, default: [] },
      json: { type: 'string' },
      markdown: { type: 'boolean', default: false },
    },
  });
  const iterations = Number(values.iterations);
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new Error(`--iterations must be a positive integer, got ${values.iterations}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed must be an integer 0..4294967295, got ${values.seed}`);

  console.log(`fuzzing with seed ${seed}, ${fmt(iterations)} inputs per target`);
  const report = runFuzz(iterations, seed, values.target, (r) => {
    const status = r.unexpected === 0 ? 'ok' : `${fmt(r.unexpected)} UNEXPECTED`;
    console.log(`${r.target.padEnd(42)} ${fmt(r.inputs).padStart(11)} inputs  ${fmt(r.accepted).padStart(11)} parsed  ${fmt(r.rejected).padStart(11)} rejected  ${(r.milliseconds / 1000).toFixed(1).padStart(6)} s  ${status}`);
    for (const f of r.failures) console.log(`    #${f.iteration}: ${f.detail}\n      input: ${f.input.length > 600 ? `${f.input.slice(0, 600)}...` : f.input}`);
  });
  console.log(`${fmt(report.totalInputs)} inputs in ${(report.milliseconds / 1000).toFixed(1)} s; ${fmt(report.totalUnexpected)} unexpected`);
  if (values.markdown) process.stdout.write(`\n${markdown(report)}`);
  if (values.json !== undefined) fs.writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  if (report.totalUnexpected > 0) console.log(`reproduce with: --seed ${seed} --iterations ${iterations} --target NAME`);
  return report.totalUnexpected === 0 ? 0 : 1;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 2;
  }
}
