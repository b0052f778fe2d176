#!/usr/bin/env node
// `npm test`: runs vitest over every package (after `pretest` built and linted), then prints one closing line
// `N passed, N failed` summing every test that ran, read from vitest's JSON report. Exits non-zero when any
// test failed or when no test ran at all. Extra arguments go to vitest (e.g. `npm test -- core`).
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';

const report = '.vitest-results.json';
await rm(report, { force: true });
const args = [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
];
const code = await new Promise((resolve) => {
  spawn('npx', args, { stdio: 'inherit' }).on('exit', (c, signal) => resolve(signal ? 1 : (c ?? 1)));
});
let passed = 0;
let failed = 0;
try {
  const r = JSON.parse(await readFile(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numRuntimeErrors ?? 0);
} catch {
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(code !== 0 || failed > 0 || passed === 0 ? 1 : 0);
