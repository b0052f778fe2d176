/**
 * `ic test` — the seed's API Tester: pull a window or some sessions from one or more sites into one or more
 * destinations now, or parse previously downloaded XML files into them. It never moves a schedule's cursor and
 * does not touch the delivered-items ledger; it holds a configured site's pair while it moves it, as a run does.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import {
  API,
  haltedWhy,
  parseReport,
  SiteClient,
  TransferEngine,
  withPair,
  type OpenDestination,
  type TransferOutcome,
} from '@integration-client/core';
import {
  ConfigError,
  DestinationError,
  IcError,
  isIcError,
  OPERATIONS,
  type Operation,
} from '@integration-client/plugin-sdk';
import type { Command } from 'commander';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import { ProgressBar, sayWaiting } from '../progress.js';
import { collect, fmtBytes, readableFile, table, withApp, type HomeOptions } from './common.js';
import { opts } from './site.js';

interface TestOptions extends HomeOptions {
  site?: string[];
  destination?: string[];
  start?: string;
  duration?: string;
  lsid?: string[];
  ops: string;
  xml?: string[];
  host?: string;
}

/** `30m`, `2h`, `1d` or plain seconds → seconds. */
export function durationSeconds(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0)
    throw new ConfigError(`--duration ${JSON.stringify(text)}: use e.g. 3600, 30m, 2h or 1d`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

/** `2024-12-03T08:00Z`, `2024-12-03 08:00` (host local time) … → Unix seconds. */
export function startSeconds(text: string): number {
  const t = Date.parse(text.includes(' ') && !/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text.replace(' ', 'T') : text);
  if (Number.isNaN(t))
    throw new ConfigError(`--start ${JSON.stringify(text)} is not a date/time (e.g. 2024-12-03T08:00Z)`);
  return Math.floor(t / 1000);
}

export function testCommand(ic: Command): void {
  ic.command('test')
    .description("the seed's API Tester: pull a window or sessions now (no cursor moves), or parse XML files")
    .option('--site <name>', 'site to pull from (repeatable)', collect)
    .option('--destination <name>', 'destination to deliver to (repeatable)', collect)
    .option('--start <datetime>', 'window start, e.g. 2024-12-03T08:00Z (with --duration)')
    .option('--duration <d>', 'window length: seconds or 30m / 2h / 1d')
    .option('--lsid <id>', 'one session (repeatable) instead of a window', collect)
    .option('--ops <types>', `data types, comma-separated (${OPERATIONS.join(', ')})`, 'session-data')
    .option(
      '--xml <files...>',
      'parse these downloaded SupportSession XML files instead of pulling (recordings need --site)',
    )
    .option('--host <host>', 'with --xml and no --site: the site host to record in the data', 'xml-import')
    .option('--json', 'print the outcome as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  ic test --site main --start 2024-12-03T08:00Z --duration 1h --destination files --ops session-data,session-recording\n  ic test --site main --lsid c69a8e10bea9428f816cfababe9815fe --destination archive\n  ic test --xml ./saved/*.xml --destination archive',
    )
    .action(async (o: TestOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const ops = o.ops.split(',').map((x) => x.trim()) as Operation[];
        const unknown = ops.filter((x) => !(OPERATIONS as readonly string[]).includes(x));
        if (unknown.length)
          throw new ConfigError(`--ops: unknown data type(s) ${unknown.join(', ')}; use ${OPERATIONS.join(', ')}`);
        if (!o.destination?.length) throw new ConfigError('--destination <name> is required (repeatable)');
        const sites = o.site ?? [];
        let query: Record<string, string | number>;
        if (o.xml?.length) {
          if (ops.some((x) => x.includes('recording') || x === 'site-backup') && !sites.length)
            throw new ConfigError(
              'recordings and backups with --xml need --site to connect back to the appliance, as in the seed',
            );
          for (const f of o.xml) await readableFile('--xml', f); // before any destination is opened
          query = {};
        } else {
          if (!sites.length) throw new ConfigError('--site <name> is required (or --xml <files…>)');
          if (o.lsid?.length)
            query = o.lsid.length === 1 ? { [API.params.lsid]: o.lsid[0]! } : { [API.params.lsids]: o.lsid.join(',') };
          else if (o.start && o.duration)
            query = {
              [API.params.startTime]: startSeconds(o.start),
              [API.params.duration]: durationSeconds(o.duration),
            };
          else throw new ConfigError('give --start and --duration, or --lsid, or --xml');
        }
        const destinations: OpenDestination[] = [];
        let routes: Route[] = [];
        const outcomes: TransferOutcome[] = [];
        const clients: SiteClient[] = [];
        // Progress on a terminal: the bar counts the site × destination passes done, and within a pass of --xml
        // files the bytes read of them; the label counts items delivered.
        const bar = o.json ? undefined : new ProgressBar();
        const passes = Math.max(1, sites.length) * o.destination.length;
        let pass = 0;
        let passLabel = '';
        let items = 0;
        const xmlRead: XmlProgress = { done: 0, total: 0 };
        const within = () => (xmlRead.total ? (xmlRead.done + (xmlRead.current?.bytesRead ?? 0)) / xmlRead.total : 0);
        const draw = (force = false) =>
          bar?.update((pass + within()) / passes, `${passLabel}  ${items} items delivered`, force);
        const onDelivered = () => {
          items++;
          draw();
        };
        try {
          // Opened inside the try: one that cannot be opened, or a refused route, closes those already started.
          for (const name of o.destination) destinations.push(await app.destinations.open(name));
          routes = route(destinations, ops);
          const engine = new TransferEngine(app.db, app.log);
          for (const siteName of sites.length ? sites : [undefined]) {
            const settings = siteName
              ? await app.db.site(siteName)
              : { host: o.host!, clientId: 'none', clientSecret: 'none' };
            const client = await SiteClient.create({ site: settings, logger: app.log });
            clients.push(client);
            for (const { destination, dataTypes } of routes) {
              passLabel = `${siteName ?? o.host!} -> ${destination.name}`;
              draw(true);
              const source = o.xml?.length ? xmlSessions(o.xml, client.host, xmlRead) : undefined;
              const deliver = () =>
                engine.run(
                  { siteName: siteName ?? o.host!, site: client, destination, dataTypes },
                  { query, source, onDelivered },
                );
              // A configured site's pair is held, as a scheduled run holds it: moving cursors or not, two runs
              // writing the same sessions into one SQL destination at once race each other (a retryable error in
              // the scheduled one).
              outcomes.push(
                siteName
                  ? await withPair(
                      app.db,
                      app.log,
                      { site: siteName, destination: destination.name },
                      'ic test',
                      { onWaiting: sayWaiting },
                      deliver,
                    )
                  : await deliver(),
              );
              pass++;
              xmlRead.total = 0; // the next pass reads the files again
              draw(true);
            }
          }
        } finally {
          bar?.end();
          for (const d of destinations) await d.instance.close();
          for (const c of clients) await c.close();
        }
        const failed = outcomes.some((t) => t.failed + t.retryable > 0);
        // Passes ran site by site, each over the destinations in order: the data types of pass i are routes[i % n].
        const dataTypesOf = (i: number) => routes[i % routes.length]!.dataTypes;
        if (o.json) out.json({ ok: !failed, transfers: outcomes.map((t, i) => ({ ...t, dataTypes: dataTypesOf(i) })) });
        else {
          for (const r of routes)
            if (r.notTaken.length)
              out.line(
                `note: ${r.destination.name} (${r.destination.plugin}) gets ${r.dataTypes.join(', ')} only; it does not take ${r.notTaken.join(', ')}`,
              );
          out.line(
            table([
              ['SITE -> DESTINATION', 'DELIVERED', 'FAILED', 'RETRY', 'BYTES', 'BY TYPE'],
              ...outcomes.map((t, i) => [
                t.transfer,
                String(t.delivered),
                String(t.failed),
                String(t.retryable),
                fmtBytes(t.bytes),
                dataTypesOf(i)
                  .map((op) => `${op} ${t.byType[op] ?? 0}`)
                  .join(', '),
              ]),
            ]),
          );
          for (const e of outcomes.flatMap((t) => t.errors).slice(0, 10)) out.line(`  ${e}`);
          const halted = outcomes.find((t) => t.haltedBy);
          out.line(
            halted
              ? `\n${halted.transfer}: ${haltedWhy(halted.haltedBy!)} (${halted.haltedBy}), so nothing more was tried for it; fix that and run this again; details: ic logs`
              : failed
                ? '\nsome items failed; details: ic logs'
                : outcomes.some((t) => t.delivered)
                  ? '\nall items delivered (no cursor was moved)'
                  : `\nnothing delivered: ${o.xml?.length ? 'the files hold no sessions' : `${o.lsid?.length ? 'the appliance has no such session' : 'no session began in that window'}${applianceClock(outcomes)}`}`,
          );
        }
        return failed ? EXIT.failed : EXIT.ok;
      });
    });
}

/** ` (the appliance's clock reads …)`, from what the run saw of it; empty when no answer said. */
function applianceClock(outcomes: readonly TransferOutcome[]): string {
  const offset = outcomes.find((t) => t.applianceClockOffsetSeconds !== undefined)?.applianceClockOffsetSeconds;
  if (offset === undefined) return '';
  return ` (the appliance's clock reads ${new Date(Date.now() + offset * 1000).toISOString().slice(0, 16)}Z)`;
}

interface Route {
  readonly destination: OpenDestination;
  /** The asked data types this destination declares: what it is given. */
  readonly dataTypes: Operation[];
  /** The asked data types it does not declare (another destination of the run takes them). */
  readonly notTaken: Operation[];
}

/**
 * Gives each destination the asked data types it declares (`--destination files --destination archive --ops
 * session-data,session-recording`: recordings to files, data to both). Refused: a data type no destination takes,
 * and a destination that takes none of them.
 */
function route(destinations: readonly OpenDestination[], ops: readonly Operation[]): Route[] {
  const routes = destinations.map((destination) => ({
    destination,
    dataTypes: ops.filter((op) => destination.operations.includes(op)),
    notTaken: ops.filter((op) => !destination.operations.includes(op)),
  }));
  const declares = destinations.map((d) => `${d.name} (${d.plugin}): ${d.operations.join(', ')}`).join('; ');
  const untaken = ops.filter((op) => routes.every((r) => r.notTaken.includes(op)));
  if (untaken.length)
    throw new DestinationError(
      'IC_ERR_DESTINATION_OPERATION_UNSUPPORTED',
      `ic test: no destination given takes ${untaken.join(', ')} (${declares}); drop ${untaken.length > 1 ? 'them' : 'it'} from --ops or add a --destination that declares ${untaken.length > 1 ? 'them' : 'it'}${untaken.some((op) => op.includes('recording') || op === 'site-backup') ? ', e.g. a file-system one' : ''}`,
      { details: { refused: untaken } },
    );
  const idle = routes.filter((r) => !r.dataTypes.length).map((r) => r.destination.name);
  if (idle.length)
    throw new DestinationError(
      'IC_ERR_DESTINATION_OPERATION_UNSUPPORTED',
      `ic test: ${idle.join(', ')} take${idle.length > 1 ? '' : 's'} none of ${ops.join(', ')} (${declares}); drop ${idle.length > 1 ? 'them' : 'it'} or add a data type ${idle.length > 1 ? 'they declare' : 'it declares'} to --ops`,
      { details: { destinations: idle } },
    );
  return routes;
}

/** How much of the --xml files was read: the files done, plus what the current file's stream has read. */
interface XmlProgress {
  done: number;
  total: number;
  current?: ReadStream;
}

/** Sessions of downloaded report files, one after another, with `progress` kept up to date. */
async function* xmlSessions(files: readonly string[], siteHost: string, progress: XmlProgress) {
  const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
  progress.done = 0;
  progress.total = sizes.reduce((a, b) => a + b, 0);
  for (const [i, f] of files.entries()) {
    progress.current = createReadStream(f);
    try {
      yield* parseReport(progress.current, 'session', { siteHost });
    } catch (err) {
      // The parser speaks of "the report"; here it is a file the user named.
      if (isIcError(err)) throw new IcError(err.code, `${f}: ${err.message}`, { cause: err, details: err.details });
      throw err;
    }
    progress.current = undefined;
    progress.done += sizes[i]!;
  }
}
