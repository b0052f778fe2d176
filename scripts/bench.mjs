#!/usr/bin/env node
// One runner for every benchmark: `npm run bench -- <name> [args]`. A benchmark is a file `bench/<name>.mjs`
// in any package; it prints a readable report and, as its last line, one JSON object
// {"name","metric","value","unit","floor","ratio","target","pass"} with the floor measured in the same run.
// Benchmarks never fail the test suite. Without a name, lists what exists. Build first (`npm run build`).
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SERVICE_NODE_FLAGS } from '../core/dist/runtime/heap-tuning.js';

const roots = [
  'schemas',
  'plugin-sdk',
  'core',
  'host',
  'integration-tests',
  ...(await readdir('plugins')).map((p) => join('plugins', p)),
];
const benches = new Map();
for (const root of roots) {
  for (const f of await readdir(join(root, 'bench')).catch(() => []))
    if (f.endsWith('.mjs')) benches.set(f.slice(0, -4), join(root, 'bench', f));
}
const [name, ...args] = process.argv.slice(2);
if (!name || !benches.has(name)) {
  console.log(`usage: npm run bench -- <name>\navailable: ${[...benches.keys()].sort().join(', ') || '(none)'}`);
  process.exit(name ? 2 : 0);
}
// With the node flags of the service's unit: a benchmark measures the process as `ic service install` starts it.
const child = spawn(process.execPath, ['--expose-gc', ...SERVICE_NODE_FLAGS, benches.get(name), ...args], {
  stdio: 'inherit',
});
child.on('exit', (code) => process.exit(code ?? 1));
