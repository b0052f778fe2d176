/**
 * `/health` (JSON) and `/metrics` (Prometheus text) on a loopback port for the running service. Counters are
 * this process's since it started; cursor lag comes from the settings database.
 */
import { createServer, type Server } from 'node:http';
import type { ScheduleRun, Scheduler, SettingsDb } from '@integration-client/core';

export class ServiceMetrics {
  readonly runs = new Map<string, number>();
  readonly items = new Map<string, number>();
  readonly bytes = new Map<string, number>();
  readonly failures = new Map<string, number>();
  /** Per transfer: the appliance's clock offset its latest run saw (seconds ahead of this host). */
  readonly clockOffsets = new Map<string, number>();
  /** Per site: the same, for `ic_site_clock_offset_seconds`. */
  readonly siteClockOffsets = new Map<string, number>();

  record(run: ScheduleRun): void {
    inc(this.runs, labels({ schedule: run.schedule, outcome: run.outcome }));
    for (const t of run.transfers) {
      const [site, destination] = t.transfer.split('->') as [string, string];
      const l = labels({ site, destination });
      inc(this.items, l, t.delivered);
      inc(this.bytes, l, t.bytes);
      inc(this.failures, l, t.failed + t.retryable);
      if (t.applianceClockOffsetSeconds !== undefined) {
        this.clockOffsets.set(t.transfer, t.applianceClockOffsetSeconds);
        this.siteClockOffsets.set(labels({ site }), t.applianceClockOffsetSeconds);
      }
    }
  }
}

const inc = (m: Map<string, number>, key: string, by = 1) => m.set(key, (m.get(key) ?? 0) + by);
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
    for (const [l, v] of values) lines.push(`${name}{${l}} ${v}`);
  };
  family('ic_runs_total', 'Schedule runs by outcome since the service started.', 'counter', m.runs);
  family('ic_items_delivered_total', 'Items acknowledged by destinations.', 'counter', m.items);
  family('ic_bytes_delivered_total', 'Bytes of recordings and backups acknowledged.', 'counter', m.bytes);
  family('ic_item_failures_total', 'Items that failed (retryable or not).', 'counter', m.failures);
  // Cursors are positions on the appliance's clock: lag is measured on it too (this host's now plus the offset the
  // transfer's latest run saw), so a host clock that is off does not show up as lag.
  const lag = new Map<string, number>();
  for (const c of await db.cursors())
    lag.set(
      labels({ transfer: c.transfer, data_type: c.dataType }),
      nowS + (m.clockOffsets.get(c.transfer) ?? 0) - c.position,
    );
  family(
    'ic_cursor_lag_seconds',
    "Seconds between the appliance's now and a transfer's cursor (host clock until the transfer has run).",
    'gauge',
    lag,
  );
  family(
    'ic_site_clock_offset_seconds',
    "Seconds a site's appliance clock is ahead of this host's (negative: behind), as its latest run saw.",
    'gauge',
    m.siteClockOffsets,
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
