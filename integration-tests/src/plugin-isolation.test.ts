/**
 * Isolation of destination instances in worker threads (ADR 009), with a fixture plugin that misbehaves on
 * purpose: every failure is contained, coded and retryable, the plugin is restarted, recordings cross the
 * boundary as streams with flow control, and the host keeps running.
 */
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { WorkerDestination, type IsolationOptions } from '@integration-client/core';
import {
  entryFacts,
  inspectPluginPackage,
  MODEL_JSON,
  modelJson,
  type Ack,
  type Handler,
  type Item,
  type PluginEntryFacts,
  type SessionDataItem,
} from '@integration-client/plugin-sdk';
import { sampleItem } from '@integration-client/plugin-sdk/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './paths.js';
import { captureLogger, collectGarbage } from './site-helpers.js';

const FIXTURE = join(REPO_ROOT, 'integration-tests/fixtures/unruly-plugin');
const open: { d: WorkerDestination; dir: string }[] = [];

afterEach(async () => {
  for (const { d, dir } of open.splice(0)) {
    await d.close();
    await rm(dir, { recursive: true, force: true });
  }
});

async function unruly(
  config: Record<string, unknown>,
  limits: Partial<IsolationOptions> = {},
  facts?: PluginEntryFacts,
) {
  const dir = await mkdtemp(join(tmpdir(), 'ic-iso-'));
  const log = captureLogger();
  const out = join(dir, 'out.jsonl');
  const d = await WorkerDestination.start(
    {
      packageDir: FIXTURE,
      ...(facts ? { package: facts } : {}),
      pluginId: 'unruly',
      operations: ['session-data', 'session-recording', 'site-backup'],
      config: { out, behaviour: 'none', times: 1_000_000, ...config },
      destinationName: 'u',
      dataDir: dir,
      hostVersion: '0.1.0',
      logLevel: 'debug',
    },
    log.logger,
    { callTimeoutMs: 2000, memoryLimitMb: 64, backoffMs: 50, pingGraceMs: 300, ...limits },
  );
  open.push({ d, dir });
  const call = (item: Item) =>
    (d.handlers[item.operation] as Handler<typeof item.operation>)(item, {
      signal: new AbortController().signal,
    });
  const stored = async () =>
    (await readFile(out, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { d, dir, log, call, stored };
}

const session = (lsid: string) => sampleItem('session-data', { lsid }).item;

async function rejection(p: Promise<Ack>) {
  return p.then(
    () => expect.unreachable('the call should have failed'),
    (err: unknown) => err as { code: string; retryable: boolean; message: string },
  );
}

describe('plugin isolation (worker threads)', () => {
  it('delivers items and a 24 MiB recording stream across the boundary byte for byte; plugin logs and console reach the host log', async () => {
    const u = await unruly({});
    expect(await u.call(session('s-1'))).toEqual({ status: 'written', location: expect.any(String) as string });
    const { item, stream } = sampleItem('session-recording', { streamBytes: 24 << 20, lsid: 'r-1' });
    const expected = createHash('sha256');
    for await (const chunk of sampleItem('session-recording', { streamBytes: 24 << 20 }).stream!)
      expected.update(chunk as Buffer);
    const ack = await u.call(item);
    expect(ack.bytes).toBe(24 << 20);
    expect(stream!.bytesRead).toBe(24 << 20);
    expect((await u.stored())[1]).toEqual({ lsid: 'r-1', bytes: 24 << 20, sha256: expected.digest('hex') });
    expect(u.log.lines.some((l) => l.msg === 'stored' && l.lsid === 's-1' && l.destination === undefined)).toBe(true);
    expect(u.log.lines.some((l) => l.msg === 'unruly stores s-1' && l.console === 'stdout')).toBe(true);
    expect((await u.d.check()).ok).toBe(true);
  });

  it('an uncaught throw fails the call retryable (IC_ERR_PLUGIN_CRASHED), is logged, and the restarted plugin takes the retry', async () => {
    const u = await unruly({ behaviour: 'throw-uncaught', times: 1 });
    const err = await rejection(u.call(session('s-1')));
    expect(err).toMatchObject({ code: 'IC_ERR_PLUGIN_CRASHED', retryable: true });
    expect(err.message).toContain('thrown outside any promise');
    expect(u.log.lines.some((l) => l.level === 50 && l.code === 'IC_ERR_PLUGIN_CRASHED')).toBe(true);
    expect(await u.call(session('s-1'))).toMatchObject({ status: 'written' });
    expect(await u.stored()).toEqual([{ lsid: 's-1' }]);
  });

  it('calls that finished before a crash keep their answers: only the call in flight is retried', async () => {
    const u = await unruly({ behaviour: 'throw-uncaught', times: 1 });
    // One turn: the first call misbehaves (throws on the next timer), the other two store and answer.
    const [a, b, c] = await Promise.allSettled([
      u.call(session('s-1')),
      u.call(session('s-2')),
      u.call(session('s-3')),
    ]);
    expect(a).toMatchObject({ status: 'rejected', reason: { code: 'IC_ERR_PLUGIN_CRASHED' } });
    expect([b, c]).toEqual([
      { status: 'fulfilled', value: expect.objectContaining({ status: 'written' }) as unknown },
      { status: 'fulfilled', value: expect.objectContaining({ status: 'written' }) as unknown },
    ]);
    expect(await u.stored()).toEqual([{ lsid: 's-2' }, { lsid: 's-3' }]);
  });

  it('a crash says how many calls it took down (details.inFlight): the engine pins it on an item only when it was alone', async () => {
    const u = await unruly({ crashOn: ['s-1'], slowMs: 100 });
    const all = await Promise.all(['s-1', 's-2', 's-3'].map((lsid) => rejection(u.call(session(lsid)))));
    for (const err of all) expect(err).toMatchObject({ code: 'IC_ERR_PLUGIN_CRASHED', details: { inFlight: 3 } });
    expect(await u.call(session('s-2'))).toMatchObject({ status: 'written' });
    expect(await rejection(u.call(session('s-1')))).toMatchObject({
      code: 'IC_ERR_PLUGIN_CRASHED',
      details: { inFlight: 1 },
      message: expect.stringContaining('unruly: crashes on s-1') as unknown,
    });
  });

  it('an answer given just before the worker died reaches the host: the item is not delivered again', async () => {
    // The plugin answers s-1 and s-2, then throws before its answers would have left in the next turn.
    const u = await unruly({ behaviour: 'crash-after-answer', times: 1 });
    const settled = Promise.allSettled([u.call(session('s-1')), u.call(session('s-2'))]);
    // Hold this thread while the worker answers and dies, so its answers and its death are both waiting when the
    // host looks again: the host must not let the order Node reports them in decide.
    await new Promise((r) => setTimeout(r, 5));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    expect(await settled).toEqual([
      { status: 'fulfilled', value: expect.objectContaining({ status: 'written' }) as unknown },
      { status: 'fulfilled', value: expect.objectContaining({ status: 'written' }) as unknown },
    ]);
    await expect.poll(() => u.log.lines.some((l) => l.code === 'IC_ERR_PLUGIN_CRASHED')).toBe(true);
    expect(await u.call(session('s-3'))).toMatchObject({ status: 'written' });
    const lsids = (await u.stored()).map((r) => r.lsid as string);
    expect(lsids.sort()).toEqual(['s-1', 's-2', 's-3']); // each once
  });

  it('process.exit() in a plugin ends only its worker', async () => {
    const u = await unruly({ behaviour: 'exit', times: 1 });
    const err = await rejection(u.call(session('s-1')));
    expect(err).toMatchObject({ code: 'IC_ERR_PLUGIN_CRASHED', retryable: true });
    expect(err.message).toContain('exited with code 3');
    expect(await u.call(session('s-2'))).toMatchObject({ status: 'written' });
  });

  it('an uncoded rejection is wrapped IC_ERR_PLUGIN_ERROR_UNCODED (retryable) without a restart', async () => {
    const u = await unruly({ behaviour: 'reject-uncoded', times: 1 });
    expect(await rejection(u.call(session('s-1')))).toMatchObject({
      code: 'IC_ERR_PLUGIN_ERROR_UNCODED',
      retryable: true,
    });
    expect(await u.call(session('s-2'))).toMatchObject({ status: 'written' });
    expect(u.log.lines.some((l) => l.code === 'IC_ERR_PLUGIN_CRASHED')).toBe(false);
  });

  it('a call that never settles times out (IC_ERR_PLUGIN_TIMEOUT); a worker that still answers is kept', async () => {
    const u = await unruly({ behaviour: 'hang', times: 1 }, { callTimeoutMs: 300 });
    expect(await rejection(u.call(session('s-1')))).toMatchObject({ code: 'IC_ERR_PLUGIN_TIMEOUT', retryable: true });
    await new Promise((r) => setTimeout(r, 500));
    expect(u.log.lines.some((l) => l.code === 'IC_ERR_PLUGIN_CRASHED')).toBe(false);
    expect(await u.call(session('s-2'))).toMatchObject({ status: 'written' });
  });

  it('keeps nothing of an item in the host while the plugin works on it (it was copied to the worker)', async () => {
    const u = await unruly({ behaviour: 'hang', times: 1_000_000 }, { callTimeoutMs: 3000 });
    const refs: WeakRef<object>[] = [];
    const calls = Array.from({ length: 20 }, (_, i) => {
      const item = session(`held-${i}`);
      refs.push(new WeakRef((item as { session: object }).session));
      return rejection(u.call(item));
    });
    await new Promise((r) => setTimeout(r, 200)); // the calls went out and are held in the worker
    collectGarbage();
    await new Promise((r) => setTimeout(r, 0));
    collectGarbage();
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
    for (const err of await Promise.all(calls)) expect(err).toMatchObject({ code: 'IC_ERR_PLUGIN_TIMEOUT' });
  });

  it("a caller's signal stops its calls in the worker, with one listener per signal, gone once they settled", async () => {
    const u = await unruly({ behaviour: 'wait-for-abort' }, { callTimeoutMs: 10_000 });
    const [a, b] = [new AbortController(), new AbortController()];
    const call = (item: Item, signal: AbortSignal) =>
      (u.d.handlers[item.operation] as Handler<typeof item.operation>)(item, { signal });
    const onA = Array.from({ length: 5 }, (_, i) => rejection(call(session(`a-${i}`), a.signal)));
    let bSettled = false;
    const onB = rejection(call(session('b-0'), b.signal)).finally(() => (bSettled = true));
    await new Promise((r) => setTimeout(r, 200)); // the calls are in the worker
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(1); // not one per call
    a.abort();
    for (const err of await Promise.all(onA))
      expect(err).toMatchObject({ code: 'IC_ERR_PLUGIN_TIMEOUT', message: expect.stringContaining('host aborted') });
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(0);
    expect(bSettled).toBe(false); // another signal's call goes on
    expect(getEventListeners(b.signal, 'abort')).toHaveLength(1);
    b.abort();
    expect(await onB).toMatchObject({ code: 'IC_ERR_PLUGIN_TIMEOUT' });
    expect(getEventListeners(b.signal, 'abort')).toHaveLength(0);
  });

  it('calls in flight share one timeout timer (none per call), which goes once they have settled', async () => {
    const u = await unruly({ behaviour: 'wait-for-abort' }, { callTimeoutMs: 10_000 });
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const idle = timers();
    const stop = new AbortController();
    const calls = Array.from({ length: 200 }, (_, i) =>
      rejection(
        (u.d.handlers['session-data'] as Handler<'session-data'>)(session(`t-${i}`) as SessionDataItem, {
          signal: stop.signal,
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, 200)); // the calls are in the worker
    expect(timers()).toBe(idle + 1); // the destination's deadline sweep; was one setTimeout per call
    stop.abort();
    for (const err of await Promise.all(calls)) expect(err).toMatchObject({ code: 'IC_ERR_PLUGIN_TIMEOUT' });
    expect(timers()).toBe(idle);
  });

  it('the model crosses as JSON text and is parsed in the worker only when the handler reads it', async () => {
    const u = await unruly({ behaviour: 'describe-item' });
    const item = session('lazy-1') as SessionDataItem;
    const ack = await u.call(item);
    const facts = JSON.parse(ack.location!) as Record<string, unknown>;
    expect(facts).toEqual({
      unparsedBeforeRead: true, // modelJson(item) and item.lsid did not parse it
      plainAfterRead: true,
      sameObjectOnNextRead: true,
      textIsTheModel: true,
      lsid: 'lazy-1',
      modelLsid: 'lazy-1',
      text: JSON.stringify(item.session), // exactly the host's serialisation
    });
    // In-process (no crossing) modelJson serialises the object itself.
    expect(modelJson(item)).toBe(JSON.stringify(item.session));
    expect(modelJson({ ...item, [MODEL_JSON]: '{"lsid":"x"}' } as SessionDataItem)).toBe('{"lsid":"x"}');
  });

  it('a model text the engine made at parse time is the one that crosses (not serialised again)', async () => {
    const u = await unruly({ behaviour: 'describe-item' });
    const item = session('made-1') as SessionDataItem;
    // A text that is not the object's serialisation shows which one crossed.
    const text = JSON.stringify({ ...item.session, lsid: 'from-the-text' });
    const ack = await u.call({ ...item, [MODEL_JSON]: text } as SessionDataItem);
    expect(JSON.parse(ack.location!)).toMatchObject({ lsid: 'made-1', modelLsid: 'from-the-text', text });
  });

  it('items arrive in the worker with one hidden class, whether or not their model was read', async () => {
    // The lazy model's accessors are shared by every item. A getter closure per item gave each item hidden classes
    // of its own, made in V8's old generation: ~180 MB per 10,000 sessions there, a full collection every ~800.
    const u = await unruly({ behaviour: 'same-shape' });
    const shapes = [];
    for (const lsid of ['a', 'b', 'c', 'd-read', 'e-read']) shapes.push((await u.call(session(lsid))).location);
    expect(shapes).toEqual(['null', 'true', 'true', 'false', 'true']);
  });

  it("a worker given the host's checked package facts imports the entry only: no ajv, no semver loaded", async () => {
    // The host's catalog ran the no-code checks; running them again in every worker (ajv compiling the manifest and
    // config schemas, semver checking the host range) took ~100–200 ms of each worker start.
    const facts = entryFacts(await inspectPluginPackage(FIXTURE, '0.1.0'));
    const given = await unruly({ behaviour: 'loaded-libraries' }, {}, facts);
    expect((await given.call(session('s-1'))).location).toBe('');
    // Without them (a probe after an install) the worker checks the package itself, with both.
    const alone = await unruly({ behaviour: 'loaded-libraries' });
    expect((await alone.call(session('s-1'))).location).toBe('ajv,ajv-formats,semver');
  });

  it.runIf(process.platform === 'linux')(
    "the worker thread runs `nice` steps below the host's thread, which keeps its priority",
    async () => {
      const host = getPriority();
      const niceOf = async (u: Awaited<ReturnType<typeof unruly>>) => {
        expect(await u.call(session('s-1'))).toMatchObject({ status: 'written' });
        return Number(await readFile(join(u.dir, 'nice'), 'utf8'));
      };
      expect(await niceOf(await unruly({ behaviour: 'thread-priority' }, { nice: 10 }))).toBe(Math.min(19, host + 10));
      expect(getPriority()).toBe(host);
      expect(await niceOf(await unruly({ behaviour: 'thread-priority' }, { nice: 0 }))).toBe(host);
    },
  );

  it('a plugin spinning forever times out, does not answer the ping, is terminated and restarted', async () => {
    const u = await unruly({ behaviour: 'busy-loop', times: 1 }, { callTimeoutMs: 300 });
    const started = Date.now();
    // Alone in the plugin: the engine pins the hang on its item (details.inFlight, as for a crash).
    expect(await rejection(u.call(session('s-1')))).toMatchObject({
      code: 'IC_ERR_PLUGIN_TIMEOUT',
      details: { inFlight: 1 },
    });
    expect(await u.call(session('s-2'))).toMatchObject({ status: 'written' });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(
      u.log.lines.some((l) => l.code === 'IC_ERR_PLUGIN_CRASHED' && String(l.msg).includes('stopped answering')),
    ).toBe(true);
  });

  it('a plugin that leaks memory is stopped at its heap limit; the host is untouched', async () => {
    const u = await unruly({ behaviour: 'leak', times: 1 }, { memoryLimitMb: 48, callTimeoutMs: 20_000 });
    const heapBefore = process.memoryUsage().heapUsed;
    const err = await rejection(u.call(session('s-1')));
    expect(err).toMatchObject({ code: 'IC_ERR_PLUGIN_CRASHED', retryable: true });
    expect(err.message).toContain('ran out of memory');
    expect(await u.call(session('s-2'))).toMatchObject({ status: 'written' });
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(32 << 20); // the leak was in the worker's heap
  }, 30_000);

  it('consecutive crashes back off: the second restart waits twice as long as the first', async () => {
    const u = await unruly({ behaviour: 'exit', times: 3 }, { backoffMs: 200 });
    await rejection(u.call(session('a')));
    await rejection(u.call(session('b')));
    const t = Date.now();
    await rejection(u.call(session('c')));
    expect(Date.now() - t).toBeGreaterThanOrEqual(350);
    const restarts = u.log.lines.filter((l) => l.code === 'IC_ERR_PLUGIN_CRASHED').map((l) => l.restartInMs);
    expect(restarts).toEqual([200, 400, 800]);
  });

  it('flow control: a reader that stalls holds back the source (about 1 MiB in flight), and giving up destroys the source', async () => {
    const u = await unruly({ behaviour: 'stall-stream' });
    let pulled = 0;
    const source = new Readable({
      read() {
        pulled += 65536;
        this.push(Buffer.alloc(65536, 1));
      },
    });
    const { item } = sampleItem('session-recording', { lsid: 'r' });
    const ack = await u.call({ ...item, stream: source } as Item);
    expect(ack.status).toBe('skipped');
    expect(pulled).toBeLessThan(3 << 20);
    expect(source.destroyed).toBe(true);
  });

  it('a source failing mid-stream fails the plugin read with the source error code, and nothing is stored', async () => {
    const u = await unruly({});
    const { item } = sampleItem('session-recording', { streamBytes: 4 << 20, failAfter: 1 << 20 });
    expect(await rejection(u.call(item))).toMatchObject({ code: expect.stringMatching(/^IC_ERR_/) as string });
    expect(await u.stored()).toEqual([]);
  });
});
