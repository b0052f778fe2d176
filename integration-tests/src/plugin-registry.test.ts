/**
 * The plugin host against a real registry: verdaccio on loopback; the SDK, the example `jsonl` plugin and the
 * fixture plugins are published to it; `ic plugin install --registry` installs into $IC_HOME/plugins; a
 * transfer from the appliance simulator runs through the installed plugin (in its worker); the plugin is
 * upgraded (a transfer already open keeps its version) and removed; broken fixtures are refused with their
 * codes; a fixture that crashes, spins and leaks is contained.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DestinationLoader, PluginCatalog, SecretBox, SettingsDb } from '@integration-client/core';
import { sampleItem } from '@integration-client/plugin-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSimulatorSite, runIc } from './ic-helpers.js';
import { fixture, REPO_ROOT } from './paths.js';
import { startRegistry, type Registry } from './registry.js';
import { captureLogger } from './site-helpers.js';
import { ApplianceSimulator } from './simulator/index.js';

const JSONL = join(REPO_ROOT, 'integration-tests/examples/jsonl');
let registry: Registry;
let sim: ApplianceSimulator;
let home: string;
let env: Record<string, string>;
const ic = (...args: string[]) => runIc(home, args, env);
const jsonLines = async (path: string) =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { site: string; session: { lsid: string }; hmac?: string; writer?: string });

beforeAll(async () => {
  registry = await startRegistry();
  env = registry.env;
  await registry.publish(join(REPO_ROOT, 'schemas'));
  await registry.publish(join(REPO_ROOT, 'plugin-sdk'));
  await registry.publish(JSONL);
  // 1.1.0 marks every line it writes, so a test can tell which version wrote what.
  await registry.publish(JSONL, async (pkg, dir) => {
    pkg.version = '1.1.0';
    const { readFile: rf, writeFile: wf } = await import('node:fs/promises');
    const src = await rf(join(dir, 'index.js'), 'utf8');
    const marked = src.replace('const line = `{"site":', 'const line = `{"writer":"1.1.0","site":');
    if (marked === src) throw new Error('could not mark the 1.1.0 copy');
    await wf(join(dir, 'index.js'), marked);
  });
  for (const f of [
    'host-range-mismatch',
    'invalid-manifest',
    'invalid-schema',
    'missing-operation',
    'broken-plugin',
    'unruly-plugin',
  ])
    await registry.publish(fixture(f));
  sim = new ApplianceSimulator({ sessions: 30, recordingBytes: 1024, backupBytes: 1024 });
  await sim.start();
  home = await mkdtemp(join(tmpdir(), 'ic-reg-home-'));
  expect((await ic('init')).code).toBe(0);
  expect((await addSimulatorSite(home, sim.address, ApplianceSimulator.caFile)).code).toBe(0);
}, 240_000);

afterAll(async () => {
  await sim?.stop();
  await registry?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('plugins from a registry', () => {
  it('installs jsonl from the registry, runs a transfer through it, keeps its secret field sealed', async () => {
    const installed = await ic('plugin', 'install', 'ic-plugin-jsonl@1.0.0', '--registry', registry.url, '--json');
    expect(installed.stderr).toBe('');
    expect(installed.code).toBe(0);
    expect(JSON.parse(installed.stdout)).toMatchObject({
      id: 'jsonl',
      name: 'ic-plugin-jsonl',
      version: '1.0.0',
      operations: ['session-data'],
    });
    const pluginsPkg = JSON.parse(await readFile(join(home, 'plugins/package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      overrides?: unknown;
    };
    expect(pluginsPkg.dependencies).toEqual({ 'ic-plugin-jsonl': '1.0.0' });
    expect(pluginsPkg.overrides).toBeUndefined(); // with a registry, the SDK is the registry's (published above)

    const list = JSON.parse((await ic('plugin', 'list', '--json')).stdout) as {
      id: string;
      source: string;
      status: string;
      version: string;
    }[];
    expect(list.map((p) => [p.id, p.source, p.status])).toEqual([
      ['file-system', 'bundled', 'ok'],
      ['sql', 'bundled', 'ok'],
      ['jsonl', 'installed', 'ok'],
    ]);

    const out = join(home, 'out/sessions.jsonl');
    const secret = 'hmac-secret-d4e1f0';
    const add = await ic(
      'destination',
      'add',
      'lines',
      '--plugin',
      'jsonl',
      '--set',
      `path=${out}`,
      '--set',
      `signingKey=${secret}`,
    );
    expect(add.code, add.stderr).toBe(0);
    const show = await ic('destination', 'show', 'lines', '--json');
    expect(show.stdout).not.toContain(secret);
    expect(JSON.parse(show.stdout)).toMatchObject({
      config: { path: out, signingKey: expect.not.stringContaining(secret) as string },
    });
    expect((await ic('schedule', 'add', 'hourly', '--every', '1h', '--transfer', 'main:lines:session-data')).code).toBe(
      0,
    );
    const ran = await ic('schedule', 'run', 'hourly', '--json');
    expect(ran.code, ran.stderr).toBe(0);
    const lines = await jsonLines(out);
    expect(lines.map((l) => l.session.lsid).sort()).toEqual(
      sim
        .closedSessions()
        .map((s) => s.lsid)
        .sort(),
    );
    expect(lines.every((l) => typeof l.hmac === 'string' && l.hmac.length === 64)).toBe(true);
    expect(await readFile(join(home, 'settings.db')).then((b) => b.includes(secret))).toBe(false);
    const logs = await runIc(home, ['logs'], env);
    expect(logs.stdout).not.toContain(secret);
  }, 180_000);

  it('upgrades without a restart: a transfer that already opened the plugin finishes on 1.0.0, the next one runs 1.1.0', async () => {
    const box = await SecretBox.open(join(home, 'secret.key'));
    const db = await SettingsDb.open(`sqlite:${join(home, 'settings.db')}`, box);
    const catalog = new PluginCatalog({
      bundledDirs: [join(REPO_ROOT, 'plugins/file-system'), join(REPO_ROOT, 'plugins/sql')],
      pluginsDir: join(home, 'plugins'),
      hostVersion: '0.1.0',
    });
    const upgradeOut = join(home, 'out/upgrade.jsonl');
    await db.putDestination({ name: 'upgrade', plugin: 'jsonl', config: { path: upgradeOut } }, ['signingKey']);
    const loader = new DestinationLoader({
      db,
      logger: captureLogger().logger,
      catalog,
      dataDir: join(home, 'data'),
      hostVersion: '0.1.0',
    });
    const signal = new AbortController().signal;
    const deliver = (d: Awaited<ReturnType<DestinationLoader['open']>>, lsid: string) =>
      d.instance.handlers['session-data']!(sampleItem('session-data', { lsid }).item as never, { signal });
    try {
      const running = await loader.open('upgrade');
      await deliver(running, 'before-upgrade');
      const upgraded = await ic('plugin', 'install', 'ic-plugin-jsonl@1.1.0', '--json');
      expect(upgraded.code, upgraded.stderr).toBe(0);
      expect(JSON.parse(upgraded.stdout)).toMatchObject({ version: '1.1.0', previousVersion: '1.0.0' });
      await deliver(running, 'old-transfer-after-upgrade');
      await running.instance.close();
      const next = await loader.open('upgrade');
      await deliver(next, 'new-transfer');
      await next.instance.close();
      expect((await jsonLines(upgradeOut)).map((l) => [l.session.lsid, l.writer ?? '1.0.0'])).toEqual([
        ['before-upgrade', '1.0.0'],
        ['old-transfer-after-upgrade', '1.0.0'],
        ['new-transfer', '1.1.0'],
      ]);
      // The registry remembered from the first install served the upgrade (no --registry given).
      expect((await ic('plugin', 'list', '--json')).stdout).toContain('"version": "1.1.0"');
    } finally {
      loader.shutdown();
      await db.close();
    }
  }, 120_000);

  it('refuses broken packages with their codes before anything reaches the plugins project', async () => {
    const before = await readFile(join(home, 'plugins/package.json'), 'utf8');
    const refused = async (spec: string) => {
      const r = await ic('plugin', 'install', spec);
      expect(r.code, spec).not.toBe(0);
      return r.stderr;
    };
    expect(await refused('@integration-client-fixtures/host-range-mismatch@1.0.0')).toContain(
      'IC_ERR_PLUGIN_HOST_RANGE',
    );
    expect(await refused('@integration-client-fixtures/invalid-manifest@1.0.0')).toContain(
      'IC_ERR_PLUGIN_MANIFEST_INVALID',
    );
    expect(await refused('@integration-client-fixtures/invalid-schema@1.0.0')).toContain(
      'IC_ERR_PLUGIN_CONFIG_SCHEMA_INVALID',
    );
    expect(await refused('ic-plugin-does-not-exist@9.9.9')).toContain('IC_ERR_PLUGIN_INSTALL_FAILED');
    expect(await readFile(join(home, 'plugins/package.json'), 'utf8')).toBe(before);
    // Its code throws on import: installed, probed in a worker, rolled back.
    expect(await refused('@integration-client-fixtures/broken-plugin@1.0.0')).toContain('IC_ERR_PLUGIN_LOAD_FAILED');
    expect(await readFile(join(home, 'plugins/package.json'), 'utf8')).toBe(before);
    // A missing handler shows when an instance is created: the destination is refused.
    const mo = await ic('plugin', 'install', '@integration-client-fixtures/missing-operation@1.0.0');
    expect(mo.code, mo.stderr).toBe(0);
    const add = await ic(
      'destination',
      'add',
      'mo',
      '--plugin',
      'missing-operation',
      '--set',
      `file=${join(home, 'mo.jsonl')}`,
    );
    expect(add.code).not.toBe(0);
    expect(add.stdout + add.stderr).toContain('IC_ERR_PLUGIN_OPERATION_MISSING');
    expect((await ic('plugin', 'remove', 'missing-operation')).code).toBe(0);
  }, 180_000);

  it('contains a plugin that crashes, spins and leaks: the run fails retryable, the host lives, the next run lands everything once', async () => {
    expect((await ic('plugin', 'install', '@integration-client-fixtures/unruly-plugin@1.0.0')).code).toBe(0);
    const limits = ['--plugin-call-timeout', '10', '--plugin-memory-limit', '48', '--plugin-nice', '7'];
    expect((await ic('settings', 'set', ...limits)).code).toBe(0);
    const transfers: string[] = [];
    // thread-priority: behaves, and notes its worker's nice value (the host's + pluginNice) in its data directory.
    const behaviours = ['throw-uncaught', 'busy-loop', 'leak', 'thread-priority'];
    for (const behaviour of behaviours) {
      const add = await ic(
        'destination',
        'add',
        behaviour,
        '--plugin',
        'unruly',
        '--set',
        `out=${join(home, `${behaviour}.jsonl`)}`,
        '--set',
        `behaviour=${behaviour}`,
        '--set',
        'times=1',
      );
      expect(add.code, add.stderr).toBe(0);
      transfers.push('--transfer', `main:${behaviour}:session-data`);
    }
    expect((await ic('schedule', 'add', 'unruly', '--every', '1h', ...transfers)).code).toBe(0);
    const first = await ic('schedule', 'run', 'unruly');
    expect(first.code).toBe(1);
    expect(first.stdout + first.stderr).toMatch(/IC_ERR_PLUGIN_(CRASHED|TIMEOUT)/);
    // The three that broke were replaced, and the run says so; the one that behaves was not.
    for (const behaviour of ['throw-uncaught', 'busy-loop', 'leak'])
      expect(first.stdout).toMatch(
        new RegExp(
          `^destination ${behaviour}: its plugin crashed or stopped answering (once|\\d+ times) and was restarted`,
          'm',
        ),
      );
    expect(first.stdout).not.toMatch(/^destination thread-priority:/m);
    const second = await ic('schedule', 'run', 'unruly', '--json');
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const want = sim
      .closedSessions()
      .map((s) => s.lsid)
      .sort();
    for (const behaviour of behaviours) {
      const got = (await jsonLines(join(home, `${behaviour}.jsonl`)))
        .map((l) => (l as unknown as { lsid: string }).lsid)
        .sort();
      expect(got, behaviour).toEqual(want);
    }
    if (process.platform === 'linux')
      expect(Number(await readFile(join(home, 'data', 'thread-priority', 'nice'), 'utf8'))).toBe(
        Math.min(19, getPriority() + 7),
      );
    const log = (await runIc(home, ['logs', '--json', '--lines', '100000'], env)).stdout;
    expect(log).toContain('ran out of memory');
    expect(log).toContain('IC_ERR_PLUGIN_TIMEOUT');
  }, 180_000);

  it('removes a plugin: refused while a destination uses it, then gone from the project and the list', async () => {
    const refused = await ic('plugin', 'remove', 'jsonl');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('lines');
    for (const args of [
      ['schedule', 'remove', 'hourly'],
      ['destination', 'remove', 'lines'],
      ['destination', 'remove', 'upgrade'],
    ])
      expect((await ic(...args)).code, args.join(' ')).toBe(0);
    const removed = await ic('plugin', 'remove', 'jsonl', '--json');
    expect(removed.code, removed.stderr).toBe(0);
    const pluginsPkg = JSON.parse(await readFile(join(home, 'plugins/package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(pluginsPkg.dependencies)).not.toContain('ic-plugin-jsonl');
    expect((await ic('plugin', 'list', '--json')).stdout).not.toContain('"jsonl"');
    expect((await ic('plugin', 'remove', 'file-system')).code).toBe(2);
  }, 120_000);

  it('installs from a local folder and from a tarball, kept under plugins/packages', async () => {
    const fromFolder = await ic('plugin', 'install', JSONL, '--json');
    expect(fromFolder.code, fromFolder.stderr).toBe(0);
    expect(JSON.parse(fromFolder.stdout)).toMatchObject({ id: 'jsonl', version: '1.0.0' });
    let deps = JSON.parse(await readFile(join(home, 'plugins/package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(deps.dependencies['ic-plugin-jsonl']).toBe('file:packages/ic-plugin-jsonl-1.0.0.tgz');
    expect((await ic('plugin', 'remove', 'jsonl')).code).toBe(0);
    expect(existsSync(join(home, 'plugins/packages/ic-plugin-jsonl-1.0.0.tgz'))).toBe(false);

    const packDir = await mkdtemp(join(tmpdir(), 'ic-pack-'));
    await promisify(execFile)('npm', ['pack', JSONL, '--pack-destination', packDir, '--ignore-scripts'], {
      cwd: packDir,
    });
    const fromTarball = await ic('plugin', 'install', join(packDir, 'ic-plugin-jsonl-1.0.0.tgz'), '--json');
    expect(fromTarball.code, fromTarball.stderr).toBe(0);
    deps = JSON.parse(await readFile(join(home, 'plugins/package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(deps.dependencies['ic-plugin-jsonl']).toBe('file:packages/ic-plugin-jsonl-1.0.0.tgz');
    await rm(packDir, { recursive: true, force: true });
    // Still usable once the original tarball is gone.
    const list = JSON.parse((await ic('plugin', 'list', '--json')).stdout) as { id: string; status: string }[];
    expect(list.find((p) => p.id === 'jsonl')?.status).toBe('ok');
  }, 120_000);
});
