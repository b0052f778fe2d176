// Runs the integration client's conformance suite on this package, then the plugin's own promises.
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFakeContext, runConformance, sampleItem } from '@integration-client/plugin-sdk/testing';
import plugin from '../index.js';

const packageDir = new URL('..', import.meta.url).pathname;
const signal = new AbortController().signal;
const lines = async (path) =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

test('passes the SDK conformance suite', async () => {
  const path = join(await mkdtemp(join(tmpdir(), 'jsonl-')), 'out.jsonl');
  const report = await runConformance({ packageDir, config: { path } });
  assert.deepEqual(report.codes, [], JSON.stringify(report.checks, null, 2));
  assert.ok(report.ok);
});

test('one line per session; a session delivered again, even by a new instance, is skipped', async () => {
  const path = join(await mkdtemp(join(tmpdir(), 'jsonl-')), 'deep', 'out.jsonl');
  const first = await plugin.create(createFakeContext({ config: { path } }));
  const a = sampleItem('session-data', { lsid: 'a' }).item;
  const b = sampleItem('session-data', { lsid: 'b' }).item;
  const acks = await Promise.all([a, b, a].map((i) => first.handlers['session-data'](i, { signal })));
  assert.deepEqual(
    acks.map((x) => x.status),
    ['written', 'written', 'skipped'],
  );
  await first.close();
  const second = await plugin.create(createFakeContext({ config: { path } }));
  assert.equal((await second.handlers['session-data'](b, { signal })).status, 'skipped');
  await second.close();
  assert.deepEqual(
    (await lines(path)).map((l) => l.session.lsid),
    ['a', 'b'],
  );
});

test('signs each line when a signing key is set', async () => {
  const path = join(await mkdtemp(join(tmpdir(), 'jsonl-')), 'out.jsonl');
  const d = await plugin.create(createFakeContext({ config: { path, signingKey: 'k3y' } }));
  await d.handlers['session-data'](sampleItem('session-data', { lsid: 's' }).item, { signal });
  const [row] = await lines(path);
  assert.equal(row.hmac, createHmac('sha256', 'k3y').update(JSON.stringify(row.session)).digest('hex'));
});

test(
  'sessions that arrive a millisecond apart share appends: one append (and fsync) per 20 ms at most',
  { skip: process.platform !== 'linux' && 'counts write calls in /proc/self/io (Linux)' },
  async () => {
    // Counted as the process's write system calls (Linux /proc/self/io). One append costs at most 5: the data, and
    // the wake-up of the event loop after each of its four steps in the thread pool (open, write, fsync, close).
    const writes = async () => Number(/syscw: (\d+)/.exec(await readFile('/proc/self/io', 'utf8'))[1]);
    const path = join(await mkdtemp(join(tmpdir(), 'jsonl-')), 'out.jsonl');
    const d = await plugin.create(createFakeContext({ config: { path } }));
    const before = await writes();
    const t0 = performance.now();
    const acks = [];
    for (let i = 0; i < 60; i++) {
      acks.push(d.handlers['session-data'](sampleItem('session-data', { lsid: `s${i}` }).item, { signal }));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.deepEqual(new Set((await Promise.all(acks)).map((a) => a.status)), new Set(['written']));
    const ms = performance.now() - t0;
    const calls = (await writes()) - before;
    await d.close();
    assert.equal((await lines(path)).length, 60);
    // Appends start ~20 ms apart (timers run on a millisecond clock): at most floor(ms / 20) + 2 of them (an append
    // per line or two: ~170–220 calls), plus the four steps of the second read of /proc/self/io and two to spare.
    const most = 5 * (Math.floor(ms / 20) + 2) + 6;
    assert.ok(calls <= most, `${calls} write calls in ${ms.toFixed(0)} ms for 60 sessions (at most ${most} expected)`);
  },
);
