#!/usr/bin/env node
// `npm run demo`: the main job on embedded defaults. Starts the bundled appliance simulator on loopback (HTTPS),
// creates a temporary data directory with a SQLite settings database, then — through the real `ic` binary,
// printing each command — adds the site, a File System destination under ./demo-output/files and a SQL
// destination on SQLite ./demo-output/sessions.db, runs one transfer of every data type, runs the schedule again
// (nothing is stored twice), and prints what landed.
// Options: --sessions N (default 200), --keep (keep the temporary data directory).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { OPERATIONS } from '../plugin-sdk/dist/index.js';
import { ApplianceSimulator } from '../integration-tests/dist/simulator/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const sessions = Number(args[args.indexOf('--sessions') + 1] || 200) || 200;
const keep = args.includes('--keep');
const outDir = resolve(root, 'demo-output');
const IC = join(root, 'host', 'bin', 'ic.js');

rmSync(outDir, { recursive: true, force: true });
const home = mkdtempSync(join(tmpdir(), 'ic-demo-home-'));
const sim = new ApplianceSimulator({ sessions, recordingBytes: 256 * 1024, backupBytes: 1024 * 1024 });
const site = await sim.start();
const t0 = Date.now();

/** Runs the built `ic` (asynchronously: the simulator serves from this process). */
async function ic(argv, { secret } = {}) {
  const shown = argv.map((a) =>
    a === site.clientSecret ? '"$IC_CLIENT_SECRET"' : /\s/.test(a) ? JSON.stringify(a) : a,
  );
  console.log(`\n$ ic ${shown.join(' ')}`);
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [IC, ...argv], {
      env: { ...process.env, IC_HOME: home, ...(secret ? { IC_CLIENT_SECRET: secret } : {}) },
    });
    process.stderr.write(stderr);
    return stdout;
  } catch (err) {
    process.stdout.write(err.stdout ?? '');
    process.stderr.write(err.stderr ?? '');
    throw new Error(`ic ${argv[0]} ${argv[1] ?? ''} exited ${err.code}`);
  }
}

let exit = 0;
try {
  console.log(`Appliance simulator: ${site.url} (${sessions} sessions, HTTPS with a test CA)`);
  console.log(`Temporary data directory (IC_HOME): ${home}`);
  process.stdout.write(await ic(['init']));
  process.stdout.write(
    await ic(
      [
        'site',
        'add',
        'demo',
        '--host',
        site.host,
        '--client-id',
        site.clientId,
        '--ca-file',
        ApplianceSimulator.caFile,
      ],
      {
        secret: site.clientSecret,
      },
    ),
  );
  process.stdout.write(
    await ic([
      'destination',
      'add',
      'files',
      '--plugin',
      'file-system',
      '--set',
      `destinationDirectory=${join(outDir, 'files')}`,
    ]),
  );
  process.stdout.write(
    await ic([
      'destination',
      'add',
      'sessions-db',
      '--plugin',
      'sql',
      '--set',
      `connectionString=sqlite:${join(outDir, 'sessions.db')}`,
    ]),
  );
  const fileTypes = OPERATIONS.filter((op) => op !== 'system-information');
  process.stdout.write(
    await ic([
      'schedule',
      'add',
      'demo',
      '--every',
      '1h',
      '--transfer',
      `demo:files:${fileTypes.join(',')}`,
      '--transfer',
      'demo:sessions-db:session-data,system-information',
    ]),
  );
  const run = JSON.parse(await ic(['schedule', 'run', 'demo', '--json']));
  console.log(
    `  run ${run.runId}: ${run.outcome}, ${run.transfers.map((t) => `${t.transfer} ${t.delivered} delivered`).join(', ')}`,
  );
  if (run.outcome !== 'succeeded') exit = 1;
  // Again: from the cursors (minus the overlap), so only what is new is delivered — here a site backup, taken per
  // run and byte-identical to the first (the simulator's clock stands still), which the File System destination
  // acknowledges without a second copy; what the overlap reads again is skipped by the delivered-items ledger.
  const again = JSON.parse(await ic(['schedule', 'run', 'demo', '--json']));
  console.log(
    `  run ${again.runId}: ${again.outcome}, ${again.transfers.map((t) => `${t.transfer} ${t.delivered} delivered, ${t.skipped} already delivered`).join(', ')}`,
  );
  if (again.outcome !== 'succeeded') exit = 1;

  const db = new Database(join(outDir, 'sessions.db'), { readonly: true });
  const count = (t) => db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get().n;
  const files = readdirSync(join(outDir, 'files'));
  const bytes = files.reduce((n, f) => n + statSync(join(outDir, 'files', f)).size, 0);
  const byType = run.transfers[0].byType;
  const seconds = (Date.now() - t0) / 1000;
  console.log(`
What landed after both runs (${seconds.toFixed(1)} s in all, first transfer ${run.seconds.toFixed(1)} s):
  SQLite  ${relative(process.cwd(), join(outDir, 'sessions.db'))}
    sessions ${count('session')}, events ${count('session_event')}, event data ${count('session_event_data')},
    system information ${count('system_information')}, representatives ${count('representative')}, customers ${count('customer')}
  Files   ${relative(process.cwd(), join(outDir, 'files'))}  (${files.length} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB)
    session XML ${byType['session-data'] ?? 0}, session recordings ${byType['session-recording'] ?? 0},
    command-shell recordings ${byType['command-shell-recording'] ?? 0}, Show My Screen recordings ${byType['show-my-screen-recording'] ?? 0},
    presentations ${byType['presentation-data'] ?? 0} (+ ${byType['presentation-recording'] ?? 0} recordings), site backups ${byType['site-backup'] ?? 0}

Look:
  ls demo-output/files | head
  sqlite3 demo-output/sessions.db "SELECT r.user_name, COUNT(*) FROM representative r GROUP BY 1"
${
  keep
    ? `Data directory kept: ${home}
  IC_HOME=${home} node host/bin/ic.js service status
  (the simulator has stopped: a run now fails, keeps its cursors and catches up once the site answers)`
    : 'Keep the data directory (settings, cursors, ledger, logs) with `npm run demo -- --keep`.'
}`);
  db.close();
} catch (err) {
  exit = 1;
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await sim.stop();
  if (!keep) rmSync(home, { recursive: true, force: true });
}
process.exitCode = exit;
