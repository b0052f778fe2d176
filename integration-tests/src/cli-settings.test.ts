/**
 * `ic init`, `ic site`, `ic destination`, `ic schedule` run as a user runs them: the built binary in a child
 * process, a real settings database in a temporary IC_HOME, the appliance simulator over HTTPS.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSqlDestination, holdPair, runIc, type IcResult } from './ic-helpers.js';
import { IC_BIN } from './paths.js';
import { ApplianceSimulator } from './simulator/index.js';

let home: string;
let out: string;
let sim: ApplianceSimulator;

const ic = (args: string[], env: Record<string, string> = {}) => runIc(home, args, env);
const json = <T = Record<string, unknown>>(r: IcResult): T => JSON.parse(r.stdout) as T;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'ic-home-'));
  out = await mkdtemp(join(tmpdir(), 'ic-out-'));
  sim = new ApplianceSimulator({ sessions: 12, recordingBytes: 1024, backupBytes: 2048 });
  await sim.start();
});
afterAll(async () => {
  await sim.stop();
});

// Several tests run the built binary dozens of times: ~20 s each on this machine, more on a busy one.
describe('ic settings commands (built binary, real settings database, simulator)', { timeout: 120_000 }, () => {
  it('refuses to work before `ic init`, then init creates the key (0600) and the database', async () => {
    const before = await ic(['site', 'list']);
    expect(before.code).toBe(2);
    expect(before.stderr).toMatch(/IC_ERR_CONFIG_INVALID: no settings database .* run `ic init`/);
    const r = await ic(['init', '--json']);
    expect(r.code).toBe(0);
    expect(json(r)).toMatchObject({ home, created: true, schemaVersion: 4 });
    const again = await ic(['init', '--json']);
    expect(json(again)).toMatchObject({ created: false });
    // A lost key file is not silently replaced: a new key could not read what the old one sealed.
    const key = join(home, 'secret.key');
    await rename(key, `${key}.away`);
    for (const args of [['site', 'list'], ['init']]) {
      const lost = await ic(args);
      expect(lost.code, args.join(' ')).toBe(2);
      expect(lost.stderr).toMatch(
        /IC_ERR_CONFIG_INVALID: the secret key file .*secret\.key is missing, but this data directory holds settings whose secrets were encrypted with it: restore the file from a backup \(mode 0600\) or set IC_SECRET_KEY/,
      );
    }
    expect(existsSync(key)).toBe(false);
    await rename(`${key}.away`, key);
    expect((await ic(['site', 'list'])).code).toBe(0);
  });

  it('site add tests the credentials first, saves the secret encrypted, and never shows it', async () => {
    const a = sim.address;
    const base = [
      'site',
      'add',
      'main',
      '--host',
      a.host,
      '--client-id',
      a.clientId,
      '--ca-file',
      ApplianceSimulator.caFile,
    ];
    // No secret, and no terminal to ask on: the missing flag by name, not the schema's "required property".
    const noSecret = await ic(base);
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toMatch(
      /IC_ERR_CONFIG_INVALID: site "main" needs --client-secret \(or IC_CLIENT_SECRET\); give it .* or run `ic site add main` on a terminal to be asked/,
    );
    const bad = await ic([...base, '--client-secret', 'wrong-secret']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAILED \(bad-secret\)/);
    expect(bad.stderr).toMatch(/NOT saved/);
    expect(json<unknown[]>(await ic(['site', 'list', '--json']))).toEqual([]);
    const good = await ic(base, { IC_CLIENT_SECRET: a.clientSecret });
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/credentials accepted/);
    expect(good.stdout).toMatch(/^site "main" saved \(client secret stored encrypted\)$/m);
    const listed = await ic(['site', 'list', '--json']);
    expect(json<unknown[]>(listed)).toEqual([
      expect.objectContaining({ name: 'main', host: a.host, clientSecret: '********' }),
    ]);
    const shown = await ic(['site', 'show', 'main']);
    expect(shown.stdout).not.toContain(a.clientSecret);
    expect(await readFile(join(home, 'settings.db'))).not.toContain(Buffer.from(a.clientSecret));
    expect((await ic(['site', 'test', 'main'])).code).toBe(0);
    const dup = await ic(base, { IC_CLIENT_SECRET: a.clientSecret });
    expect(dup.code).toBe(2);
    expect(
      (await ic(['site', 'add', 'x', '--host', 'https://bad', '--client-id', 'i', '--client-secret', 's'])).stderr,
    ).toMatch(/\/host: is not valid \(Host name of the site, optionally with :port, without https:\/\/\)/);
    expect((await ic(['site', 'show', 'nope'])).code).toBe(2);
    const asJson = await ic(['site', 'show', 'nope', '--json']); // an error as one JSON line on stderr
    expect(asJson.code).toBe(2);
    expect(asJson.stdout).toBe('');
    expect(JSON.parse(asJson.stderr)).toEqual({
      error: { code: 'IC_ERR_NOT_FOUND', message: 'no site named "nope"; see `ic site list`', retryable: false },
    });
    // edit changes only what it is given; --no-… takes an optional field away again.
    const site = async () => json<Record<string, unknown>>(await ic(['site', 'show', 'main', '--json']));
    const edit = (args: string[], env: Record<string, string> = {}) => ic(['site', 'edit', 'main', ...args], env);
    const withBackup = await edit(['--insecure'], { IC_BACKUP_PASSWORD: 'backup-pw' });
    expect(withBackup.code).toBe(0);
    expect(withBackup.stdout).toMatch(/saved \(client secret and backup password stored encrypted\)$/m);
    expect(await site()).toMatchObject({
      insecure: true,
      backupPassword: '********',
      caFile: ApplianceSimulator.caFile,
    });
    expect(await readFile(join(home, 'settings.db'))).not.toContain(Buffer.from('backup-pw'));
    expect((await edit(['--rate-limit', '10'])).code).toBe(0);
    expect(await site()).toMatchObject({ insecure: true, rateLimitPerSecond: 10, backupPassword: '********' });
    expect((await edit(['--no-insecure', '--no-backup-password'])).code).toBe(0);
    expect(await site()).toMatchObject({ insecure: false, caFile: ApplianceSimulator.caFile });
    expect((await site()).backupPassword).toBeUndefined();
    expect((await edit(['--no-ca-file', '--no-test'])).code).toBe(0);
    expect((await site()).caFile).toBeUndefined();
    expect((await edit(['--ca-file', ApplianceSimulator.caFile])).code).toBe(0); // the credentials test passes again
    // A relative CA file is kept absolute (the service runs elsewhere); one that cannot be read is refused, also
    // with --no-test.
    expect((await edit(['--ca-file', relative(process.cwd(), ApplianceSimulator.caFile)])).code).toBe(0);
    expect((await site()).caFile).toBe(ApplianceSimulator.caFile);
    const missing = await edit(['--ca-file', join(home, 'no-such-ca.pem'), '--no-test']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/IC_ERR_CONFIG_INVALID: --ca-file \S+no-such-ca\.pem cannot be read \(ENOENT\)/);
    expect((await site()).caFile).toBe(ApplianceSimulator.caFile);
  });

  it("destination add validates against the plugin's schema naming the field, tests, and masks secrets", async () => {
    const bad = await addSqlDestination(home, 'db', 'sqlite:/tmp/x.db', ['--set', 'batchSize=0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/IC_ERR_CONFIG_INVALID: destination "db" is invalid: \/batchSize: must be >= 1/);
    // A value off its pattern is explained by the first sentence of the field's description (this one has six).
    const relative = await ic([
      'destination',
      'add',
      'f',
      '--plugin',
      'file-system',
      '--set',
      'destinationDirectory=relative/dir',
    ]);
    expect(relative.stderr.trim()).toBe(
      'error IC_ERR_CONFIG_INVALID: destination "f" is invalid: /destinationDirectory: is not valid (Absolute path of the directory that receives XML data, recordings and site backups); the plugin\'s fields: ic plugin show file-system',
    );
    // ... which lists them: type, required or default, secret, and the description.
    const shown = await ic(['plugin', 'show', 'sql']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('  operations: session-data, system-information\n');
    expect(shown.stdout).toMatch(
      /^ {2}connectionString \(string, required, secret: stored encrypted, never shown\)\n {6}Where session data is stored/m,
    );
    expect(shown.stdout).toMatch(/^ {2}batchSize \(integer, 1\.\.1000, default 500\)$/m);
    const schema = json<{ configSchema: { required: string[] } }>(
      await ic(['plugin', 'show', 'file-system', '--json']),
    );
    expect(schema.configSchema.required).toEqual(['destinationDirectory']);
    expect((await ic(['plugin', 'show', 'nosuch'])).stderr).toMatch(/IC_ERR_NOT_FOUND: no plugin with id "nosuch"/);
    const unknown = await ic(['destination', 'add', 'db', '--plugin', 'nosuch']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no plugin with id "nosuch"/);
    const unreachable = await addSqlDestination(home, 'db', 'postgres://u:pw@127.0.0.1:1/x');
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).toMatch(/FAIL connect: .*cannot be reached/);
    expect(unreachable.stdout + unreachable.stderr).not.toContain('u:pw');
    // A directory the file system will not create (procfs answers ENOENT): Node's mkdir { recursive: true } looped
    // there for ever at 100 % of a core, and `destination add` never came back (here: killed after 60 s, failing).
    if (existsSync('/proc/self')) {
      const proc = await runIc(
        home,
        ['destination', 'add', 'p', '--plugin', 'file-system', '--set', 'destinationDirectory=/proc/ic-no-such-dir'],
        {},
        60_000,
      );
      expect(proc.code).toBe(1);
      expect(proc.stdout).toMatch(/^FAIL directory: .*\/proc\/ic-no-such-dir.*ENOENT/m);
      expect(proc.stderr).toContain('destination "p" was NOT saved');
    }
    // Tested before it is saved: a check interrupted (Ctrl-C while it waits for a database that does not answer)
    // leaves nothing saved. It was saved first and taken back after a failed check, which Ctrl-C never reached.
    const silent = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const connected = once(silent, 'connection');
    const port = (silent.address() as AddressInfo).port;
    const child = spawn(
      process.execPath,
      [
        IC_BIN,
        'destination',
        'add',
        'mute',
        '--plugin',
        'sql',
        '--set',
        `connectionString=postgres://u@127.0.0.1:${port}/x`,
      ],
      { env: { ...process.env, IC_HOME: home }, stdio: 'ignore' },
    );
    await connected;
    child.kill('SIGINT');
    await once(child, 'exit');
    silent.close();
    expect((await ic(['destination', 'show', 'mute'])).stderr).toMatch(/IC_ERR_NOT_FOUND: no destination named "mute"/);
    const db = join(out, 'sessions.db');
    const sqlAdded = await addSqlDestination(home, 'db', `sqlite:${db}`);
    expect(sqlAdded.code).toBe(0);
    expect(sqlAdded.stdout).toMatch(/^destination "db" \(sql\) saved \(connectionString stored encrypted\)$/m);
    const filesAdded = await ic([
      'destination',
      'add',
      'files',
      '--plugin',
      'file-system',
      '--config',
      JSON.stringify({ destinationDirectory: join(out, 'files') }),
    ]);
    expect(filesAdded.stdout).toMatch(/^destination "files" \(file-system\) saved$/m); // it has no secret field
    expect(filesAdded.code).toBe(0);
    const list = json<{ name: string; config: Record<string, unknown> }[]>(await ic(['destination', 'list', '--json']));
    expect(list.map((d) => d.name)).toEqual(['db', 'files']);
    expect(list[0]!.config.connectionString).toBe('********');
    expect(JSON.stringify(list)).not.toContain(db);
    const test = await ic(['destination', 'test', 'db', '--json']);
    expect(json(test)).toMatchObject({ ok: true });
    // edit: --set changes a field, --unset takes it back to its default; --config replaces the whole config.
    const files = async () =>
      json<{ config: Record<string, unknown> }>(await ic(['destination', 'show', 'files', '--json'])).config;
    const edit = (...args: string[]) => ic(['destination', 'edit', 'files', ...args]);
    expect((await edit('--set', 'retentionCount=3', '--set', 'fileNameConflictHandling=Skip')).code).toBe(0);
    expect(await files()).toMatchObject({ retentionCount: 3, fileNameConflictHandling: 'Skip' });
    expect((await edit('--unset', 'retentionCount', '--unset', 'fileNameConflictHandling')).code).toBe(0);
    expect(await files()).toMatchObject({ fileNameConflictHandling: 'AppendNumber' });
    expect((await files()).retentionCount).toBeUndefined();
    expect((await edit('--unset', 'nosuch')).stderr).toMatch(/--unset nosuch: destination "files" has no field/);
    expect((await edit('--set', 'retentionCount=2')).code).toBe(0);
    const whole = { destinationDirectory: join(out, 'files'), createDirectory: false };
    expect((await edit('--config', JSON.stringify(whole))).code).toBe(0);
    expect(await files()).toMatchObject(whole);
    expect((await files()).retentionCount).toBeUndefined();
  });

  it('schedule add refuses recordings to SQL and bad periods, runs on demand, records the run; edit keeps, clears and switches', async () => {
    const wrong = await ic([
      'schedule',
      'add',
      'w',
      '--every',
      '1h',
      '--transfer',
      'main:db:session-data,session-recording',
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/IC_ERR_DESTINATION_OPERATION_UNSUPPORTED: .*cannot be stored in a SQL database/);
    expect((await ic(['schedule', 'add', 'w', '--every', '8d', '--transfer', 'main:db:session-data'])).stderr).toMatch(
      /must be at most 7d/,
    );
    expect((await ic(['schedule', 'add', 'w', '--every', '1h', '--transfer', 'main-db'])).stderr).toMatch(
      /must look like site:destination/,
    );
    expect((await ic(['schedule', 'add', 'w', '--every', '1h', '--transfer', 'ghost:db:session-data'])).stderr).toMatch(
      /no site named "ghost"/,
    );
    const add = await ic([
      'schedule',
      'add',
      'nightly',
      '--every',
      '1d',
      '--at',
      '02:00',
      '--transfer',
      'main:files:session-data,session-recording,command-shell-recording,show-my-screen-recording,presentation-data,presentation-recording,site-backup',
      '--transfer',
      'main:db:session-data,system-information',
    ]);
    expect(add.code).toBe(0);
    expect((await ic(['schedule', 'show', 'nightly'])).stdout).toMatch(
      /^ {2}main->db +system-information +none yet: the first run takes everything the appliance keeps$/m,
    );
    const run = await ic(['schedule', 'run', 'nightly', '--json']);
    expect(run.code).toBe(0);
    const outcome = json<{ outcome: string; transfers: { transfer: string; delivered: number }[] }>(run);
    expect(outcome.outcome).toBe('succeeded');
    const closed = sim.closedSessions().length;
    const rows = new Database(join(out, 'sessions.db'), { readonly: true });
    expect((rows.prepare('SELECT COUNT(*) AS n FROM session').get() as { n: number }).n).toBe(closed);
    rows.close();
    const files = await readdir(join(out, 'files'));
    expect(files.filter((f) => f.endsWith('.nsb'))).toHaveLength(1);
    // Housekeeping after a run, once a day: ledger entries older than ledgerDays (here, one of an appliance retired
    // long ago) go; what was delivered now stays, so the second run delivers nothing again.
    const settings = new Database(join(home, 'settings.db'));
    const longAgo = new Date(Date.now() - 200 * 86_400_000).toISOString();
    settings
      .prepare('INSERT INTO delivered (destination, item, delivered_at) VALUES (?, ?, ?)')
      .run('files', 'session-data|retired.example.com|0f0f', longAgo);
    const ledger = () => (settings.prepare('SELECT COUNT(*) AS n FROM delivered').get() as { n: number }).n;
    const before = ledger();
    settings.prepare(`UPDATE ic_settings_meta SET value = ? WHERE key = 'pruned_at'`).run(longAgo); // due again
    const text = await ic(['schedule', 'run', 'nightly']);
    expect(text.stdout).toMatch(/main->db\s+0\s+/);
    expect(text.stdout).toMatch(/run 2 succeeded/);
    expect(ledger()).toBe(before - 1);
    expect(settings.prepare('SELECT item FROM delivered WHERE item LIKE ?').all('%retired%')).toEqual([]);
    settings.close();
    expect((await ic(['logs', '-n', '20'])).stdout).toMatch(
      /settings database pruned \(once a day\): 1 ledger entries older than 120 days, 0 runs older than 365 days/,
    );
    // Once a day after a run (unit-tested in settings-db.test.ts); `ic settings prune` does it now.
    const again = new Database(join(home, 'settings.db'));
    const insertOld = () =>
      again
        .prepare('INSERT INTO delivered (destination, item, delivered_at) VALUES (?, ?, ?)')
        .run('files', 'session-data|retired.example.com|0f0e', longAgo);
    insertOld();
    expect(json(await ic(['settings', 'prune', '--json']))).toEqual({
      delivered: 1,
      failedItems: 0,
      runs: 0,
      ledgerDays: 120,
      runHistoryDays: 365,
    });
    const held = json<{ holdings: { ledgerEntries: number; runs: number; lastPrunedAt: string } }>(
      await ic(['settings', 'show', '--json']),
    ).holdings;
    expect(held).toEqual({ ledgerEntries: before - 1, runs: 2, lastPrunedAt: expect.any(String) });
    expect(Date.now() - Date.parse(held.lastPrunedAt)).toBeLessThan(60_000);
    expect((await ic(['settings', 'show'])).stdout).toMatch(
      new RegExp(
        `^the settings database holds ${before - 1} delivered-items ledger entries and 2 runs; last pruned \\S+Z \\(ic settings prune\\)$`,
        'm',
      ),
    );
    insertOld();
    expect((await ic(['settings', 'prune'])).stdout).toMatch(
      /^removed 1 delivered-items ledger entries older than 120 days \(with 0 failed-item attempts they had closed\) and 0 runs older than 365 days$/m,
    );
    again.close();
    const list = json<{ name: string; lastRun: { outcome: string } }[]>(await ic(['schedule', 'list', '--json']));
    expect(list[0]).toMatchObject({ name: 'nightly', lastRun: { outcome: 'succeeded' } });
    const detail = (await ic(['schedule', 'show', 'nightly'])).stdout;
    expect(detail).toMatch(/^recent runs:\n {2}run 2 {2}\S+ {2}succeeded/m);
    expect(detail).toMatch(/^ {2}run 1 {2}\S+ {2}succeeded {2}delivered \d+, [\d.]+ (KiB|MiB)/m); // counts in words
    expect(detail).not.toContain('{');
    // Cursors, per transfer and data type (a backup has none), at the appliance's now less the settle time.
    const { cursors } = json<{ cursors: { transfer: string; dataType: string; position: number }[] }>(
      await ic(['schedule', 'show', 'nightly', '--json']),
    );
    expect(cursors.map((c) => `${c.transfer} ${c.dataType}`)).toEqual([
      ...['session-data', 'session-recording', 'command-shell-recording', 'show-my-screen-recording'].map(
        (t) => `main->files ${t}`,
      ),
      'main->files presentation-data',
      'main->files presentation-recording',
      'main->db session-data',
      'main->db system-information',
    ]);
    // The appliance's time when each report was asked for (its Date header, in whole seconds, less the time the
    // answer took), less the 60 s settle time.
    for (const c of cursors) expect(sim.now - 60 - c.position).toBeOneOf([0, 1]);
    const position = cursors.find((c) => c.transfer === 'main->db' && c.dataType === 'session-data')!.position;
    const at = new Date(position * 1000).toISOString().replace(/\./g, '\\.');
    expect(detail).toMatch(new RegExp(`^ {2}main->db +session-data +${at} +moved \\S+$`, 'm'));
    expect((await ic(['site', 'remove', 'main'])).stderr).toMatch(
      /used by schedule\(s\) nightly: take it out of their transfers first \(`ic schedule edit nightly --transfer …` replaces them all\) or remove the schedule/,
    );
    // edit: the time of day is kept until --no-at clears it; --disabled and --enabled switch it off and on.
    const shown = async () =>
      json<{ period: string; timeOfDay?: string; enabled: boolean }>(
        await ic(['schedule', 'show', 'nightly', '--json']),
      );
    const hourly = await ic(['schedule', 'edit', 'nightly', '--every', '12h']);
    expect(hourly.code).toBe(2);
    expect(hourly.stderr).toMatch(/runs at 02:00, which only whole-day periods have; add --no-at/);
    expect((await ic(['schedule', 'edit', 'nightly', '--every', '12h', '--no-at', '--disabled'])).stdout).toMatch(
      /every 12h, 2 transfer\(s\), disabled \(switch it on with `ic schedule edit nightly --enabled`\)/,
    );
    expect(await shown()).toMatchObject({ period: '12h', enabled: false });
    expect((await shown()).timeOfDay).toBeUndefined();
    expect((await ic(['schedule', 'edit', 'nightly', '--every', '2d', '--at', '03:30'])).code).toBe(0);
    expect(await shown()).toMatchObject({ period: '2d', timeOfDay: '03:30', enabled: false });
    expect((await ic(['schedule', 'edit', 'nightly', '--enabled', '--disabled'])).code).toBe(2);
    expect((await ic(['schedule', 'edit', 'nightly', '--enabled'])).code).toBe(0);
    expect(await shown()).toMatchObject({ period: '2d', timeOfDay: '03:30', enabled: true });
    // A second schedule moving a data type of the same site → destination pair shares its cursor: said on save.
    const twin = await ic([
      'schedule',
      'add',
      'twin',
      '--every',
      '1h',
      '--transfer',
      'main:db:session-data,system-information',
    ]);
    expect(twin.stdout).toMatch(
      /^note: main->db session-data,system-information is also moved by schedule "nightly": the two share its cursor/m,
    );
    const twinJson = await ic(['schedule', 'edit', 'twin', '--transfer', 'main:db:system-information', '--json']);
    expect(json(twinJson)).toEqual({
      saved: 'twin',
      sharedCursors: [{ transfer: 'main->db', dataTypes: ['system-information'], schedule: 'nightly' }],
    });
    expect((await ic(['schedule', 'remove', 'twin'])).code).toBe(0);
    expect((await ic(['schedule', 'remove', 'nightly'])).code).toBe(0);
    // Removed, the destination's cursors and ledger go with it: added again under its name, writing somewhere else,
    // it is given every session (it kept the old cursor before and got only what came after).
    const removed = await ic(['destination', 'remove', 'db', '--json']);
    expect(json(removed)).toEqual({
      removed: 'db',
      forgotten: { cursors: 2, delivered: 2 * sim.closedSessions().length, failedItems: 0 },
    });
    const elsewhere = join(out, 'sessions-2.db');
    expect((await addSqlDestination(home, 'db', `sqlite:${elsewhere}`)).code).toBe(0);
    expect((await ic(['schedule', 'add', 'anew', '--every', '1h', '--transfer', 'main:db:session-data'])).code).toBe(0);
    expect((await ic(['schedule', 'run', 'anew'])).code).toBe(0);
    const anew = new Database(elsewhere, { readonly: true });
    expect((anew.prepare('SELECT COUNT(*) AS n FROM session').get() as { n: number }).n).toBe(
      sim.closedSessions().length,
    );
    anew.close();
    // Edited after it was given something, it says it goes on from its cursors (an edit with no change says nothing).
    const edited = await ic(['destination', 'edit', 'db', '--set', 'batchSize=100']);
    expect(edited.stdout).toMatch(
      new RegExp(
        `^note: it goes on from its cursors — the ${sim.closedSessions().length} items it was given before are not given again; if it now writes somewhere new`,
        'm',
      ),
    );
    expect((await ic(['destination', 'edit', 'db', '--set', 'batchSize=100'])).stdout).not.toMatch(/note:/);
    expect((await ic(['schedule', 'remove', 'anew'])).code).toBe(0);
    expect((await ic(['destination', 'remove', 'db'])).stdout).toMatch(
      /^destination "db" removed, with its 1 cursor\(s\), \d+ delivered-items ledger entries: a destination added again under this name is given everything the appliances keep$/m,
    );
  });

  it('a run against an appliance that is down exits 1 and says where the details are', async () => {
    await ic(['schedule', 'add', 'again', '--every', '1h', '--transfer', 'main:files:session-data']);
    const port = Number(new URL(sim.address.url).port);
    await sim.stop();
    try {
      const r = await ic(['schedule', 'run', 'again']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/failed.*IC_ERR_SITE_UNREACHABLE/s);
      expect(r.stdout).toContain(`details: ic logs (${join(home, 'logs')})`);
      // service status says why the last schedule run did not succeed
      expect((await ic(['service', 'status'])).stdout).toMatch(
        /^last schedule run: again \S+ failed\n {2}IC_ERR_SITE_UNREACHABLE: .* \(ic schedule show again\)$/m,
      );
    } finally {
      await sim.start(port);
    }
  }, 120_000);

  it('a schedule cannot name one pair twice; a run whose pair another run is moving waits for it and says so', async () => {
    const dup = await ic([
      'schedule',
      'add',
      'dup',
      '--every',
      '1h',
      '--transfer',
      'main:files:session-data',
      '--transfer',
      'main:files:site-backup',
    ]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(
      /IC_ERR_CONFIG_INVALID: schedule "dup" is invalid: \/transfers\/1: repeats site "main" → destination "files" of transfer 1: name all the data types of a pair in one transfer \(main:files:session-data,site-backup\)/,
    );
    // Another host's run (the settings database shared) moves main->files for 5 more seconds.
    const holder = 'elsewhere:1 run 9 of schedule "x", transfer 1';
    holdPair(home, 'main->files', holder, 5); // longer than the command takes to start, even on a busy machine
    const t0 = Date.now();
    const r = await ic(['schedule', 'run', 'again']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `main->files waits: another run is moving this pair (${holder}); it goes on from where that one leaves off\n`,
    );
    expect(Date.now() - t0).toBeGreaterThan(1000);

    // A destination no schedule names any more, but that a run still moves (its schedule removed meanwhile, or
    // `ic failed retry`), is not removed under it: the run would write cursors the removal forgot.
    const spare = ['--plugin', 'file-system', '--set', `destinationDirectory=${join(out, 'spare')}`];
    expect((await ic(['destination', 'add', 'spare', ...spare])).code).toBe(0);
    const release = holdPair(home, 'main->spare', 'elsewhere:1 ic failed retry', 60);
    const refused = await ic(['destination', 'remove', 'spare']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /IC_ERR_CONFIG_INVALID: destination "spare" is being moved by a run now \(main->spare: elsewhere:1 ic failed retry\); try again when it has finished/,
    );
    release();
    expect((await ic(['destination', 'remove', 'spare'])).code).toBe(0);
  });

  it('schedule run shows on a terminal what each transfer has delivered so far (not in --json or a pipe)', async () => {
    await ic([
      'destination',
      'add',
      'tty',
      '--plugin',
      'file-system',
      '--set',
      `destinationDirectory=${join(out, 'tty')}`,
    ]);
    await ic(['schedule', 'add', 'watched', '--every', '1h', '--transfer', 'main:tty:session-data,session-recording']);
    // `script` gives the command a pseudo-terminal, so standard error is a terminal as for a user.
    const run = (args: string) =>
      promisify(execFile)(
        'script',
        ['-qfec', `${process.execPath} ${IC_BIN} schedule run watched${args}`, '/dev/null'],
        {
          env: { ...process.env, IC_HOME: home },
        },
      );
    const { stdout } = await run('');
    const frames = stdout.split('\r').filter((f) => f.startsWith('main->'));
    expect(frames[0]).toMatch(/^main->tty 1 item, [\d.]+ (B|KiB) {2}\(\d+ s\)/);
    // Counts only grow, up to every session and recording (frames are drawn at most ten times a second).
    const counts = frames.map((f) => Number(/^main->tty (\d+) item/.exec(f)![1]));
    const closed = sim.closedSessions();
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(counts.at(-1)).toBeLessThanOrEqual(closed.length + closed.filter((s) => s.hasRecording).length);
    expect(stdout).toMatch(/main->tty +\d+ +0 +0 +0 +0 +[\d.]+ (KiB|MiB)\s+run \d+ succeeded/);
    expect((await run(' --json')).stdout).not.toContain('main->tty 1 item');
    const piped = await ic(['schedule', 'run', 'watched']);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
  });

  it('a reader that stops reading ends a command quietly (no EPIPE stack trace)', async () => {
    const child = spawn(process.execPath, [IC_BIN, 'service', 'status'], {
      env: { ...process.env, IC_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy(); // as `| head -0` would, before the first line
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('every command has help with an example', async () => {
    for (const cmd of [['site', 'add'], ['destination', 'add'], ['schedule', 'add'], ['schedule', 'run'], ['init']]) {
      const r = await ic([...cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Example/);
    }
  });
});

describe('ic site add on a terminal', () => {
  it('asks for the required fields it was not given, the client secret without echo, then tests and saves', async () => {
    const a = sim.address;
    const child = promisify(execFile)(
      'script',
      ['-qfec', `${process.execPath} ${IC_BIN} site add asked --ca-file ${ApplianceSimulator.caFile}`, '/dev/null'],
      { env: { ...process.env, IC_HOME: home } },
    );
    child.child.stdin!.end(`${a.host}\n${a.clientId}\n${a.clientSecret}\n`);
    const { stdout } = await child;
    expect(stdout).toMatch(/Site host\r?\n/);
    expect(stdout).toMatch(/Client Secret\r?\n/);
    const promptLine = stdout.split(/\r?\n/).find((l) => l.includes('clientSecret (required):'))!;
    expect(promptLine).not.toContain(a.clientSecret);
    expect(stdout).toMatch(/^site "asked" saved \(client secret stored encrypted\)/m);
    expect(json(await ic(['site', 'show', 'asked', '--json']))).toMatchObject({
      host: a.host,
      clientId: a.clientId,
      clientSecret: '********',
    });
    expect((await ic(['site', 'test', 'asked'])).code).toBe(0); // the secret typed is the one stored
    expect((await ic(['site', 'remove', 'asked'])).code).toBe(0);
  });
});

describe('ic destination add on a terminal', () => {
  it("asks for each field from the plugin's schema, types the answers, re-asks invalid ones, and hides secrets", async () => {
    const db = join(out, 'prompted.db');
    // `script` gives the command a pseudo-terminal; the answers are typed ahead on its input.
    const child = promisify(execFile)(
      'script',
      ['-qfec', `${process.execPath} ${IC_BIN} destination add prompted --plugin sql`, '/dev/null'],
      {
        env: { ...process.env, IC_HOME: home },
      },
    );
    child.child.stdin!.end(`sqlite:${db}\nmaybe\nfalse\n\n`);
    const { stdout } = await child;
    expect(stdout).toMatch(/Connection String\r?\n/);
    expect(stdout).toMatch(/storeSystemInformation \[true\]: .*not a valid boolean; try again/);
    const promptLine = stdout.split(/\r?\n/).find((l) => l.includes('connectionString (required):'))!;
    expect(promptLine).not.toContain('sqlite:');
    expect(stdout).toMatch(/destination "prompted" \(sql\) saved/);
    const shown = json<{ config: Record<string, unknown> }>(await ic(['destination', 'show', 'prompted', '--json']));
    expect(shown.config).toEqual({ connectionString: '********', storeSystemInformation: false, batchSize: 500 });
  });
});
