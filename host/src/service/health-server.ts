/**
 * `/health` (JSON) and `/metrics` (Prometheus text) on a loopback port for the running service. Counters are
 * this process's since it started; cursor lag comes from the settings database.
 */
import { createServer, type Server } from 'node:http';
import { DEFAULT_SETTLE_SECONDS, type ScheduleRun, type Scheduler, type SettingsDb } from '@integration-client/core';

/** What the service holds at a scrape, read then. */
export interface LiveGauges {
  /** Notification mails waiting for their next try (the SMTP server did not take them). */
  readonly mailsWaiting: number;
  readonly runsInProgress: number;
}

export class ServiceMetrics {
  constructor(readonly live: () => LiveGauges = () => ({ mailsWaiting: 0, runsInProgress: 0 })) {}
  readonly runs = new Map<string, number>();
  readonly items = new Map<string, number>();
  readonly bytes = new Map<string, number>();
  readonly failures = new Map<string, number>();
  readonly pluginRestarts = new Map<string, number>();
  /** Per site name: seconds its appliance's clock was ahead of this host's (negative: behind) in its latest run. */
  readonly clockOffsets = new Map<string, number>();

  record(run: ScheduleRun): void {
    inc(this.runs, labels({ schedule: run.schedule, outcome: run.outcome }));
    for (const t of run.transfers) {
      const site = siteOf(t.transfer);
      const l = labels({ site, destination: t.transfer.slice(site.length + 2) });
      inc(this.items, l, t.delivered);
      inc(this.bytes, l, t.bytes);
      inc(this.failures, l, t.failed + t.retryable);
      if (t.applianceClockOffsetSeconds !== undefined) this.clockOffsets.set(site, t.applianceClockOffsetSeconds);
    }
    for (const [destination, n] of Object.entries(run.pluginRestarts))
      inc(this.pluginRestarts, labels({ destination }), n);
  }
}

/** The site of a transfer id (`site->destination`, see transferId). */
const siteOf = (transfer: string) => transfer.slice(0, Math.max(0, transfer.indexOf('->')));
const inc = (m: Map<string, number>, key: string, by = 1) => m.set(key, (m.get(key) ?? 0) + by);
const perDestination = (counts: Record<string, number>) =>
  new Map(Object.entries(counts).map(([destination, n]) => [labels({ destination }), n]));
const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labels = (l: Record<string, string>) =>
  Object.entries(l)
    .map(([k, v]) => `${k}="${esc(v)}"`)
    .join(',');

export async function metricsText(
  m: ServiceMetrics,
  db: SettingsDb,
  nowS = Math.floor(Date.now() / 1000),
): Promise<string> {
  const lines: string[] = [];
  const family = (name: string, help: string, type: 'counter' | 'gauge', values: Map<string, number>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of values) lines.push(`${name}${l ? `{${l}}` : ''} ${v}`);
  };
  const live = m.live();
  family('ic_runs_total', 'Schedule runs by outcome since the service started.', 'counter', m.runs);
  family('ic_runs_in_progress', 'Schedule runs under way.', 'gauge', new Map([['', live.runsInProgress]]));
  family('ic_items_delivered_total', 'Items acknowledged by destinations.', 'counter', m.items);
  family('ic_bytes_delivered_total', 'Bytes of recordings and backups acknowledged.', 'counter', m.bytes);
  family('ic_item_failures_total', 'Items that failed (retryable or not).', 'counter', m.failures);
  family(
    'ic_plugin_restarts_total',
    "Times a destination's plugin worker crashed or stopped answering and was replaced (IC_ERR_PLUGIN_CRASHED).",
    'counter',
    m.pluginRestarts,
  );
  // Cursors are positions on the appliance's clock, so lag is measured on it too: this host's now plus the offset
  // the site's latest run in this service saw. Before one has run (after a restart), from when the cursor moved:
  // it was then the appliance's now less the settle time, whatever either clock said.
  const settleS = (await db.application()).settleSeconds ?? DEFAULT_SETTLE_SECONDS;
  const lag = new Map<string, number>();
  for (const c of await db.cursors()) {
    const offset = m.clockOffsets.get(siteOf(c.transfer));
    lag.set(
      labels({ transfer: c.transfer, data_type: c.dataType }),
      offset !== undefined ? nowS + offset - c.position : Math.round(nowS - Date.parse(c.updatedAt) / 1000 + settleS),
    );
  }
  family(
    'ic_cursor_lag_seconds',
    "Seconds between the appliance's now and a transfer's cursor (on the appliance's clock: the site's clock offset, or when the cursor moved).",
    'gauge',
    lag,
  );
  family(
    'ic_failed_items',
    'Items that failed for good and are still open, per destination (ic failed list).',
    'gauge',
    perDestination(await db.failedItemCounts()),
  );
  family(
    'ic_items_retrying',
    "Items retried by every run, holding their data type's cursor back until given up on (giveUpHours), per destination.",
    'gauge',
    perDestination(await db.retryingCounts()),
  );
  family(
    'ic_site_clock_offset_seconds',
    "Seconds a site's appliance clock is ahead of this host's (negative: behind), as its latest run in this service saw.",
    'gauge',
    new Map([...m.clockOffsets].map(([site, offset]) => [labels({ site }), offset])),
  );
  family(
    'ic_notification_mails_waiting',
    'Error mails the SMTP server did not take, waiting for their next try (more than 0: errors are not reaching anyone).',
    'gauge',
    new Map([['', live.mailsWaiting]]),
  );
  return `${lines.join('\n')}\n`;
}

export function startHealthServer(
  port: number,
  m: ServiceMetrics,
  db: SettingsDb,
  scheduler: Scheduler,
  startedAt: string,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status: 'ok',
          pid: process.pid,
          startedAt,
          running: scheduler.running,
          runs: scheduler.progress(),
          schedules: scheduler.nextRuns(),
        }),
      );
    } else if (req.url === '/metrics') {
      metricsText(m, db).then(
        (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text),
        (err: unknown) =>
          res.writeHead(503, { 'content-type': 'text/plain' }).end(`settings database unavailable: ${String(err)}\n`),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
