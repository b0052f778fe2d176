// Shared helpers of the benchmarks in this folder.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { tuneHeapForStreaming } from '@integration-client/core';

// The benchmarks measure the `ic` process, which tunes V8 this way when it opens its data directory.
tuneHeapForStreaming();

/** Samples this process's RSS every 20 ms; call the result to stop and get { base, peak } in MiB. */
export function rssSampler() {
  const base = process.memoryUsage.rss();
  let peak = base;
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  return () => {
    clearInterval(t);
    peak = Math.max(peak, process.memoryUsage.rss());
    return { base: base / 2 ** 20, peak: peak / 2 ** 20 };
  };
}

/** Seconds `fn` takes. */
export async function seconds(fn) {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { s: Number(process.hrtime.bigint() - t0) / 1e9, value };
}

/** Prints the closing JSON line every benchmark ends with. */
export function result(name, metric, value, unit, floor, target, extra = {}) {
  const ratio = floor ? value / floor : 0;
  const pass = ratio >= target;
  console.log(
    JSON.stringify({
      name,
      metric,
      value: round(value),
      unit,
      floor: round(floor),
      ratio: round(ratio, 3),
      target,
      pass,
      ...extra,
    }),
  );
}

/** The median round by its `ratio` (the lower middle one for an even count). */
export function medianRound(rounds) {
  return rounds.slice().sort((a, b) => a.ratio - b.ratio)[Math.floor((rounds.length - 1) / 2)];
}

export const round = (n, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

/** Starts the appliance simulator CLI in a child process; resolves to its address, a stop function and its CPU use. */
export async function startSimulator(args) {
  const bin = fileURLToPath(new URL('../bin/ic-appliance-sim.js', import.meta.url));
  const child = spawn(process.execPath, [bin, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: child.stdout }), 'line');
  return {
    address: JSON.parse(line),
    stop: () => child.kill('SIGTERM'),
    cpuSeconds: () => processCpuSeconds(child.pid),
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function processCpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 per second)
}

/** Site settings for a started simulator (no rate limit to speak of). */
export function benchSite(sim) {
  return {
    name: 'bench',
    host: sim.host,
    clientId: sim.clientId,
    clientSecret: sim.clientSecret,
    caFile: sim.caFile,
    rateLimitPerSecond: 1000,
  };
}

/**
 * The whole machine's CPU use since `start()` (from /proc/stat): how many cores were busy on average. Every
 * process counts — this one, its worker threads, the simulator, the database server — so a figure near the
 * number of cores says the run was CPU-bound.
 */
export function machineCpu() {
  const read = () => {
    const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    const idle = f[3] + f[4]; // idle + iowait
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  };
  const a = read();
  return () => {
    const b = read();
    return round(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * cpus().length, 2);
  };
}

/** CPU seconds so far of each thread of this process, by thread id (from /proc; threads that ended are gone). */
export function threadCpuSeconds() {
  const out = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
      out.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/**
 * Where the CPU of a run went, in µs per item: this process's main thread, the threads started since `known` was
 * taken (a plugin's worker), the other threads of this process (V8's GC and compiler helpers, libuv's pool), the
 * simulator, and everything else on the machine (a database server). `before`/`after` are threadCpuSeconds()
 * snapshots; `machineCores` is machineCpu()'s figure and `wallS` the run's seconds.
 */
export function cpuShares({ known, before, after, simulatorS, machineCores, wallS, items }) {
  const us = (s) => Math.round((s * 1e6) / items);
  let main = 0;
  let started = 0;
  let helpers = 0;
  for (const [tid, cpu] of after) {
    const d = cpu - (before.get(tid) ?? 0);
    if (tid === process.pid) main += d;
    else if (!known.has(tid)) started += d;
    else helpers += d;
  }
  const total = machineCores * wallS;
  return {
    main: us(main),
    pluginWorker: us(started),
    v8Helpers: us(helpers),
    simulator: us(simulatorS),
    otherProcesses: us(Math.max(0, total - main - started - helpers - simulatorS)),
    total: us(total),
  };
}
