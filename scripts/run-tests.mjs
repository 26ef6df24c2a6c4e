#!/usr/bin/env node
// Runs the vitest suite and prints the plain closing line CI reads ("vitest: N passed, N failed").
// Extra arguments are passed to vitest (e.g. `npm test -- test/packet`).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const report = '.vitest-report.json';
rmSync(report, { force: true });
const r = spawnSync(
  'npx',
  ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: 'inherit', env: { ...process.env, NO_COLOR: '1' } },
);
let rc = r.status ?? 1;
try {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  console.log(`vitest: ${j.numPassedTests} passed, ${j.numFailedTests} failed, ${j.numPendingTests + j.numTodoTests} skipped`);
  if (j.numTotalTests === 0) rc = 1;
} catch {
  console.log('vitest: 0 passed, 1 failed (no report written)');
  rc = rc || 1;
}
process.exit(rc);
