/**
 * `ic schedule run` interrupted as a user interrupts it (Ctrl-C: SIGINT to the built binary in the middle of a run
 * against a slow appliance): it says what it does, stops cleanly, and the next run lands everything exactly once.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFilesDestination, addSimulatorSite, logLines, runIc } from './ic-helpers.js';
import { IC_BIN } from './paths.js';
import { ApplianceSimulator } from './simulator/index.js';

let home: string;
let files: string;
let sim: ApplianceSimulator;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'ic-int-'));
  files = join(home, 'files');
  sim = new ApplianceSimulator({ sessions: 60, recordingBytes: 64 * 1024, faults: { latencyMs: 40 } });
  const a = await sim.start();
  expect((await runIc(home, ['init'])).code).toBe(0);
  expect((await addSimulatorSite(home, a, ApplianceSimulator.caFile)).code).toBe(0);
  expect((await addFilesDestination(home, files)).code).toBe(0);
  const add = await runIc(home, [
    'schedule',
    'add',
    'now',
    '--every',
    '1h',
    '--transfer',
    'main:files:session-data,session-recording,command-shell-recording',
  ]);
  expect(add.code).toBe(0);
});
afterAll(async () => {
  await sim.stop();
});

describe('ic schedule run, interrupted', () => {
  it('Ctrl-C says it is stopping, finishes what is under way, exits 1 with the run "stopped" and no error logged (errors are mailed); the next run lands the rest once', async () => {
    const child = spawn(process.execPath, [IC_BIN, 'schedule', 'run', 'now'], {
      env: { ...process.env, IC_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const end = Date.now() + 60_000;
    while ((await readdir(files).catch(() => [])).length < 5 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /SIGINT: stopping: the deliveries under way finish and each cursor stays before what was not delivered; Ctrl-C again ends it at once/,
    );
    expect(stdout).toMatch(
      /^run \d+ stopped in [\d.]+ s: IC_ERR_RUN_STOPPED: the run was stopped before the window was complete\nnothing is lost: the next run goes on from where this one stopped \(ic schedule run now\)$/m,
    );
    const lines = await logLines(home);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.some((l) => l.level === 40 && /^stopped before the window was complete/.test(l.msg))).toBe(true);
    const closed = sim.closedSessions();
    const recordings = closed.reduce((n, s) => n + (s.hasRecording ? 1 : 0) + s.shellInstances, 0);
    const flv = async () => (await readdir(files)).filter((f) => f.endsWith('.flv')).length;
    expect(await flv()).toBeLessThan(recordings); // stopped in the middle
    expect((await runIc(home, ['schedule', 'run', 'now'])).code).toBe(0);
    const names = await readdir(files);
    expect(names.filter((f) => f.endsWith('.xml'))).toHaveLength(closed.length);
    expect(await flv()).toBe(recordings);
    expect(names.filter((n) => /\.\d+\.(xml|flv)$/.test(n))).toEqual([]); // nothing twice
  });
});
