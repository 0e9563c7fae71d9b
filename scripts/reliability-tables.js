#!/usr/bin/env node
// Sums up the log that the reliability tests write with IP6SOCK_RELIABILITY_LOG=<file>
// (one JSON line per check, test/stress/fuzz/record.ts) into the tables of
// docs/reliability.md: the hostile-input table, one row per public call, and its totals.
//
//   node scripts/reliability-tables.js reliability.jsonl
'use strict';
const fs = require('node:fs');

const file = process.argv[2];
if (!file) {
  console.error('usage: node scripts/reliability-tables.js <IP6SOCK_RELIABILITY_LOG file>');
  process.exit(2);
}
const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const rows = new Map();
let failures = 0;
for (const l of lines.filter((x) => x.source === 'hostile')) {
  let row = rows.get(l.row);
  if (row === undefined) rows.set(l.row, (row = { positions: 0, cases: 0, codes: {}, afterClose: '-' }));
  failures += l.failures;
  if (l.position === 'after close()') {
    row.afterClose = Object.keys(l.codes).join(', ');
    continue;
  }
  row.positions++;
  row.cases += l.cases;
  for (const [code, n] of Object.entries(l.codes)) row.codes[code] = (row.codes[code] ?? 0) + n;
}
const fmt = (n) => n.toLocaleString('en-US');
const out = ['| Row | Positions | Wrong values tried | Refused with (code: count) | After close() |', '|---|---:|---:|---|---|'];
let positions = 0;
let cases = 0;
let closed = 0;
for (const [name, r] of rows) {
  const codes = Object.entries(r.codes).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${fmt(n)}`).join(', ');
  out.push(`| \`${name}\` | ${r.positions} | ${fmt(r.cases)} | ${codes} | ${r.afterClose} |`);
  positions += r.positions;
  cases += r.cases;
  if (r.afterClose !== '-') closed++;
}
console.log(out.join('\n'));
console.log(`\n${rows.size} rows, ${fmt(positions)} positions, ${fmt(cases)} hostile calls, plus ${closed} calls on closed objects; ${failures} not refused as expected`);
