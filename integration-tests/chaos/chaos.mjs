#!/usr/bin/env node
// `npm run chaos`: kills the service with SIGKILL at random moments while it transfers >= 2,000 sessions with
// recordings into a File System destination and a SQL destination (SQLite; `--engine postgres` or `mysql` for the
// services), restarts it, repeats, then lets one last run finish and checks that every simulated session is in SQL
// exactly once and every file (session XML, session / command-shell / Show My Screen recordings) exists exactly once
// with the right bytes.
// Every kill must land while files are still being transferred: the site is rate-limited (--rate-limit, API calls
// per second) so that the transfer outlasts the kills, and a kill after the last file landed is counted and fails
// the run (lower --rate-limit or use more sessions). Without the limit, the 2,000 sessions landed by about the
// sixth kill and the later ones hit an idle service.
// Last line: {"trials","lost","duplicated"}. Exit 0 only when nothing was lost or duplicated and every kill landed
// during the transfers.
// Options: --trials 20 --sessions 2000 --recording-bytes 16384 --seed <n> (random kill times, reproducible)
// --engine sqlite|postgres|mysql (the SQL destination's engine; the server ones use a fresh database, dropped after)
// --rate-limit 25 (the site's API calls per second).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import { ApplianceSimulator, binaryChunks } from '../dist/simulator/index.js';
import { openDriver, parseConnectionString } from '../../plugins/sql/dist/index.js';
import { freshDatabase } from '../../plugins/sql/bench/lib/floors.mjs';

const { values: v } = parseArgs({
  options: {
    trials: { type: 'string', default: '20' },
    sessions: { type: 'string', default: '2000' },
    'recording-bytes': { type: 'string', default: '16384' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    engine: { type: 'string', default: 'sqlite' },
    'rate-limit': { type: 'string', default: '25' },
  },
});
const TRIALS = Number(v.trials);
const SESSIONS = Number(v.sessions);
const BYTES = Number(v['recording-bytes']);
let rnd = Number(v.seed) || 1;
const random = () => (rnd = (rnd * 48271) % 2147483647) / 2147483647;

const IC = new URL('../../host/bin/ic.js', import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), 'ic-chaos-'));
const files = join(home, 'files');
const env = { ...process.env, IC_HOME: home };

const sim = new ApplianceSimulator({ sessions: SESSIONS, recordingBytes: BYTES, backupBytes: 1024 });
const site = await sim.start();
const ic = async (...args) => (await promisify(execFile)(process.execPath, [IC, ...args], { env })).stdout;

const target = await freshDatabase(v.engine, 'chaos');
// Passed or failed, no service is left running, the simulator stops and the fresh database is dropped (IC_HOME is
// kept to look at).
const services = new Set();
const cleanUp = async () => {
  for (const child of services) child.kill('SIGKILL');
  await sim.stop();
  await target.drop();
};
try {
  console.log(
    `chaos: ${SESSIONS} sessions, ${BYTES}-byte recordings, ${TRIALS} SIGKILLs, seed ${v.seed}, SQL on ${v.engine}, IC_HOME ${home}`,
  );
  await ic('init');
  await ic(
    'site',
    'add',
    'main',
    '--host',
    site.host,
    '--client-id',
    site.clientId,
    '--client-secret',
    site.clientSecret,
    '--ca-file',
    ApplianceSimulator.caFile,
    '--rate-limit',
    v['rate-limit'],
  );
  await ic('destination', 'add', 'files', '--plugin', 'file-system', '--set', `destinationDirectory=${files}`);
  await ic('destination', 'add', 'db', '--plugin', 'sql', '--set', `connectionString=${target.cs}`);
  await ic(
    'schedule',
    'add',
    'chaos',
    '--every',
    '1m',
    '--transfer',
    'main:files:session-data,session-recording,command-shell-recording,show-my-screen-recording',
    '--transfer',
    'main:db:session-data,system-information',
  );

  /** Starts the service; resolves once it is up. */
  async function service() {
    const child = spawn(process.execPath, [IC, 'service', 'run', '--health-port', '0'], {
      env,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    services.add(child);
    child.once('exit', () => services.delete(child));
    await once(createInterface({ input: child.stdout }), 'line');
    return child;
  }

  const landed = () => {
    try {
      return readdirSync(files, { withFileTypes: true }).filter((d) => d.isFile() && !d.name.startsWith('.')).length;
    } catch {
      return 0; // the destination directory is made by the first delivery
    }
  };
  // Files the transfers must land: each closed session's XML and its recordings.
  const filesExpected = sim
    .closedSessions()
    .reduce((n, s) => n + 1 + (s.hasRecording ? 1 : 0) + s.shellInstances + s.smsInstances, 0);
  let midTransfer = 0;
  for (let t = 1; t <= TRIALS; t++) {
    const child = await service();
    const wait = 500 + Math.floor(random() * 6000);
    await new Promise((r) => setTimeout(r, wait));
    child.kill('SIGKILL');
    await once(child, 'exit');
    const soFar = landed();
    if (soFar < filesExpected) midTransfer++;
    console.log(
      `  trial ${String(t).padStart(2)}: SIGKILL after ${wait} ms — ${soFar} of ${filesExpected} files so far${soFar < filesExpected ? '' : ' (after the transfers: lower --rate-limit)'}`,
    );
  }

  // One last, uninterrupted run.
  const last = await service();
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    const s = JSON.parse(await ic('service', 'status', '--json'));
    if (s.lastRun?.outcome === 'succeeded') break;
    if (Date.now() > deadline) throw new Error('the final run did not succeed within 30 minutes');
    await new Promise((r) => setTimeout(r, 500));
  }
  last.kill('SIGTERM');
  await once(last, 'exit');

  // ---- verification ----
  const closed = sim.closedSessions();
  const expected = new Map(); // file name → sha256 (or null for XML: present once is enough)
  const hash = (salt) => {
    const h = createHash('sha256');
    for (const c of binaryChunks(BYTES, salt)) h.update(c);
    return h.digest('hex');
  };
  const base = (s) => `${site.host.replace(/:/g, '_')}-support-${s.lsid}`;
  const names = readdirSync(files).filter((n) => !n.startsWith('.'));
  const prefix = names.find((n) => n.endsWith('.xml'))?.replace(/-support-[0-9a-f]{32}.*$/, '') ?? '';
  for (const s of closed) {
    const b = prefix ? `${prefix}-support-${s.lsid}` : base(s);
    expected.set(`${b}.xml`, null);
    if (s.hasRecording) expected.set(`${b}.flv`, hash(s.index));
    for (let i = 0; i < s.shellInstances; i++) expected.set(`${b}-shell${i}.flv`, hash(s.index * 100 + i + 1));
    for (let i = 0; i < s.smsInstances; i++) expected.set(`${b}-sms${i}.flv`, hash(s.index * 100 + i + 50));
  }
  let lost = 0;
  let duplicated = 0;
  let corrupt = 0;
  const present = new Set(names);
  for (const [name, sha] of expected) {
    if (!present.has(name)) lost++;
    else if (
      sha &&
      createHash('sha256')
        .update(readFileSync(join(files, name)))
        .digest('hex') !== sha
    )
      corrupt++;
  }
  for (const n of names) if (!expected.has(n)) duplicated++; // numbered copies or anything unexpected
  const driver = openDriver(parseConnectionString(target.cs), target.cs);
  const rows = await driver.transaction((tx) => tx.query('SELECT lsid, COUNT(*) AS n FROM session GROUP BY lsid'));
  await driver.close();
  const inDb = new Map(rows.map((r) => [r.lsid, Number(r.n)]));
  for (const s of closed) if (!inDb.has(s.lsid)) lost++;
  for (const n of inDb.values()) if (n > 1) duplicated += n - 1;
  duplicated += [...inDb.keys()].filter((l) => !closed.some((s) => s.lsid === l)).length;
  lost += corrupt;
  console.log(
    `checked ${closed.length} sessions: ${expected.size} files expected, ${names.length} found, ${corrupt} with wrong bytes; ` +
      `${inDb.size} sessions in SQL`,
  );
  console.log(`${midTransfer} of ${TRIALS} kills landed while files were still being transferred`);
  console.log(JSON.stringify({ trials: TRIALS, lost, duplicated }));
  process.exitCode = lost || duplicated || midTransfer < TRIALS ? 1 : 0;
} finally {
  await cleanUp();
}
