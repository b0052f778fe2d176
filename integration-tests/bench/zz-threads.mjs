import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DestinationLoader, PluginCatalog, SecretBox, SettingsDb, SiteClient, TransferEngine } from '@integration-client/core';
import { freshDatabase } from '../../plugins/sql/bench/lib/floors.mjs';
import { benchSite, startSimulator } from './lib.mjs';
const COUNT = 10000;
const log = pino({ level: 'silent' });
const { address: sim, stop } = await startSimulator(['--sessions', String(COUNT), '--events', '12']);
const simPid = execFileSync('pgrep', ['-f', 'ic-appliance-sim.js', '-n']).toString().trim();
const site = benchSite(sim);
const threads = (pid) => { const m = new Map(); for (const t of readdirSync(`/proc/${pid}/task`)) { try { const st = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'); const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')); const f = st.slice(st.lastIndexOf(')') + 2).split(' '); m.set(t, { comm, cpu: (Number(f[11]) + Number(f[12])) * 10 }); } catch {} } return m; };
const warm = await SiteClient.create({ site, logger: log });
for await (const item of warm.sessions({ end_time: 0, duration: 0 })) void item;
await warm.close();
for (let round = 0; round < Number(process.argv[2] ?? 2); round++) {
  const c = await SiteClient.create({ site, logger: log });
  let t0 = process.hrtime.bigint();
  let b0 = threads(process.pid), s0 = threads(simPid);
  for await (const item of c.sessions({ end_time: 0, duration: 0 })) void item;
  let dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const report = (label, b0, s0, dt) => {
    const b1 = threads(process.pid), s1 = threads(simPid);
    const by = new Map();
    for (const [t, v] of b1) { const k = t === String(process.pid) ? 'main' : `${v.comm}:${t}`; by.set(k, (by.get(k) ?? 0) + v.cpu - (b0.get(t)?.cpu ?? 0)); }
    let sim = 0; for (const [t, v] of s1) sim += v.cpu - (s0.get(t)?.cpu ?? 0);
    console.log(label, `${Math.round(COUNT / dt)} sessions/s`, [...by].filter(([, v]) => v > 0).map(([k, v]) => `${k} ${Math.round(v * 1000 / COUNT)}µs`).join(', '), `sim ${Math.round(sim * 1000 / COUNT)}µs`);
  };
  report('parse', b0, s0, dt);
  await c.close();
  const target = await freshDatabase('sqlite', 'e2e');
  const home = await mkdtemp(join(tmpdir(), 'ic-bench-e2e-'));
  const db = await SettingsDb.open(`sqlite:${join(home, 'settings.db')}`, SecretBox.withKey(Buffer.alloc(32, 9)));
  await db.putSite(site);
  await db.putDestination({ name: 'db', plugin: 'sql', config: { connectionString: target.cs } }, ['connectionString']);
  const loader = new DestinationLoader({ db, logger: log, catalog: new PluginCatalog({ bundledDirs: [new URL('../../plugins/sql', import.meta.url).pathname], pluginsDir: join(home, 'plugins'), hostVersion: '0.1.0' }), dataDir: join(home, 'data'), hostVersion: '0.1.0', isolation: 'worker' });
  const destination = await loader.open('db');
  await destination.instance.check();
  const siteClient = await SiteClient.create({ site, logger: log });
  t0 = process.hrtime.bigint(); b0 = threads(process.pid); s0 = threads(simPid);
  const out = await new TransferEngine(db, log).run({ siteName: 'bench', site: siteClient, destination, dataTypes: ['session-data'] }, { settleSeconds: 0 });
  dt = Number(process.hrtime.bigint() - t0) / 1e9;
  report('e2e  ', b0, s0, dt);
  await siteClient.close(); await destination.instance.close(); loader.shutdown(); await db.close(); await target.drop();
}
stop();
