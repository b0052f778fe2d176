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
