/**
 * What the reliability tests tried and what happened, as JSON lines, for docs/reliability.md.
 * Written only when IP6SOCK_RELIABILITY_LOG names a file, so ordinary runs write nothing:
 *
 *   IP6SOCK_RELIABILITY_LOG=/tmp/reliability.jsonl npx jest test/stress/hostile.test.ts ...
 * @packageDocumentation
 */
import * as fs from 'node:fs';

/** Appends `{ source, ...facts }` as one line to $IP6SOCK_RELIABILITY_LOG, if set. */
export function record(source: string, facts: Record<string, unknown>): void {
  const file = process.env.IP6SOCK_RELIABILITY_LOG;
  if (file === undefined || file === '') return;
  fs.appendFileSync(file, `${JSON.stringify({ source, ...facts })}\n`);
}
