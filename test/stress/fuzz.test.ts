/**
 * The slice of `npm run fuzz` that every `npm test` runs: 20,000 seeded inputs per parser
 * target (test/stress/fuzz/targets.ts). Each input must end in a result that passes the target's
 * invariants or in an Error with one of the target's codes; both outcomes must be reached,
 * so the mutations demonstrably get past the first length check.
 *
 * Reproduce or widen: FUZZ_SEED=<n> FUZZ_ITERATIONS=<n> npx jest test/stress/fuzz.test.ts
 */
import { record } from './fuzz/record';
import { allTargets, runTarget, type TargetResult } from './fuzz/targets';

const SEED = Number(process.env.FUZZ_SEED ?? 20251122) >>> 0;
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 20000);

describe(`fuzz slice: ${ITERATIONS.toLocaleString('en-US')} inputs per parser, seed ${SEED}`, () => {
  const results: TargetResult[] = [];

  test.each(allTargets().map((t) => [t.name, t] as const))('%s', (_name, target) => {
    const r = runTarget(target as Parameters<typeof runTarget>[0], ITERATIONS, SEED);
    results.push(r);
    record('fuzz slice', { target: r.target, seed: SEED, inputs: r.inputs, parsed: r.accepted, rejected: r.rejected, codes: r.codes, unexpected: r.unexpected });
    // Failures first, with their inputs, so a red run says what to reproduce.
    expect(r.failures).toEqual([]);
    expect(r.unexpected).toBe(0);
    expect(r.inputs).toBe(ITERATIONS);
    expect(r.accepted + r.rejected).toBe(ITERATIONS);
    // Both sides reached, and by a real margin: at least 1% of inputs each.
    expect(r.accepted).toBeGreaterThan(ITERATIONS / 100);
    expect(r.rejected).toBeGreaterThan(ITERATIONS / 100);
    for (const code of Object.keys(r.codes)) expect(target.accepts).toContain(code);
  }, 120_000);

  test('every target ran', () => {
    expect(results.map((r) => r.target)).toEqual(allTargets().map((t) => t.name));
  });
});
