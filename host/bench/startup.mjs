// startup: `ic --help` in a new process, as a user starts it (median of 15 runs), against a bare `node -e ""`
// start measured in the same run. Target: under 400 ms. Only the invoked command's module (and the kernel
// behind it) is loaded, so the help of the whole program does not pay for the kernel.
// Usage: npm run bench -- startup [runs=15]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.argv[2] ?? 15);
const IC = fileURLToPath(new URL('../bin/ic.js', import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (args) => {
  const t0 = process.hrtime.bigint();
  execFileSync(process.execPath, args, { stdio: 'ignore' });
  return Number(process.hrtime.bigint() - t0) / 1e6;
};
const ic = [];
const bare = [];
for (let i = 0; i < RUNS; i++) {
  bare.push(time(['-e', '']));
  ic.push(time([IC, '--help']));
}
const value = median(ic);
const floor = median(bare);
console.log(
  `startup: ic --help median ${value.toFixed(0)} ms over ${RUNS} runs (min ${Math.min(...ic).toFixed(0)}, max ${Math.max(...ic).toFixed(0)}); bare node ${floor.toFixed(0)} ms`,
);
console.log(
  JSON.stringify({
    name: 'startup',
    metric: 'ms to print `ic --help` in a new process (median); lower is better, floor = bare node start',
    value: Math.round(value),
    unit: 'ms',
    floor: Math.round(floor),
    ratio: Math.round((value / floor) * 100) / 100,
    target: 400,
    pass: value < 400,
  }),
);
