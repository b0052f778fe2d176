/**
 * `ic failed` — items that failed for good: a destination refused them (a value it cannot store, a recording it
 * cannot write), the appliance would not serve a recording, or a session's entry in the report could not be read.
 * Their data type's cursor moved on (the rest of the window was delivered), so they are kept here: listed, delivered
 * again once the cause is fixed, or given up on by the operator.
 */
import {
  API,
  haltedWhy,
  LSIDS_PER_REQUEST,
  SiteClient,
  TransferEngine,
  withPair,
  type FailedItem,
  type OpenDestination,
  type TransferOutcome,
} from '@integration-client/core';
import { ConfigError, type Operation } from '@integration-client/plugin-sdk';
import type { Command } from 'commander';
import type { App } from '../app.js';
import { EXIT } from '../exit-codes.js';
import { errorText, out } from '../output.js';
import { sayWaiting } from '../progress.js';
import { table, withApp, type HomeOptions } from './common.js';
import { opts } from './site.js';

interface SelectOptions extends HomeOptions {
  destination?: string;
  all?: boolean;
}

/** An error in a table cell: its code and message, cut at 100 characters. */
const errorCell = (e: { code: string; message: string }) =>
  `${e.code}: ${e.message.length > 100 ? `${e.message.slice(0, 99)}…` : e.message}`;

/** `lsid` or `lsid#instance`: what the item is of its session. */
const sessionOf = (i: Pick<FailedItem, 'lsid' | 'instance'>) =>
  `${i.lsid}${i.instance === undefined ? '' : `#${i.instance}`}`;

/** The open failed items `ids` name, or all of them (of `--destination`). */
async function select(app: App, ids: readonly string[], o: SelectOptions, verb: string): Promise<FailedItem[]> {
  if (!ids.length && !o.all && o.destination === undefined)
    throw new ConfigError(
      `give the ids of the items to ${verb} (\`ic failed list\` shows them), --destination <name> or --all`,
    );
  if (ids.length && o.all) throw new ConfigError(`give ids or --all, not both`);
  const open = await app.db.failedItems({ destination: o.destination, limit: 1_000_000 });
  if (!ids.length) return open;
  const wanted = ids.map((id) => {
    if (!/^\d+$/.test(id)) throw new ConfigError(`${JSON.stringify(id)} is not a failed item's id (a number)`);
    const item = open.find((i) => i.id === Number(id));
    if (!item)
      throw new ConfigError(
        `no open failed item has id ${id}${o.destination === undefined ? '' : ` for destination ${JSON.stringify(o.destination)}`}; \`ic failed list\` shows the open ones (an item delivered since is not open)`,
      );
    return item;
  });
  return [...new Set(wanted)];
}

export function failedCommands(ic: Command): void {
  const f = ic
    .command('failed')
    .description('items that failed for good (the cursor moved on without them): list, retry, dismiss');
  f.command('list')
    .description('the open failed items, newest first: one per destination and item, with its latest error')
    .option('--destination <name>', "only this destination's")
    .option('-n, --limit <count>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic failed list --destination archive')
    .action(async (o: SelectOptions & { limit: string }, cmd: Command) => {
      const limit = Number(o.limit);
      if (!Number.isSafeInteger(limit) || limit < 1)
        throw new ConfigError(`--limit ${JSON.stringify(o.limit)}: give a whole number of items, e.g. 50`);
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const items = await app.db.failedItems({ destination: o.destination, limit });
        // Not failed for good yet: retried every run, holding their cursors back until given up on.
        const retrying = await app.db.retryingItems({ destination: o.destination });
        if (o.json) out.json({ items, retrying });
        else if (!items.length) out.line('no failed items');
        else {
          out.line(
            table([
              ['ID', 'LAST FAILED', 'DESTINATION', 'DATA TYPE', 'SITE HOST', 'SESSION', 'ATTEMPTS', 'ERROR'],
              ...items.map((i) => [
                String(i.id),
                i.at.replace(/\.\d+Z$/, 'Z'),
                i.destination,
                i.operation,
                i.host,
                sessionOf(i),
                String(i.attempts),
                errorCell(i),
              ]),
            ]),
          );
          out.line(
            `\n${items.length === limit ? `the newest ${limit} (more: --limit); ` : ''}deliver again once the cause is fixed: ic failed retry <id…> (or --all); give up on one: ic failed dismiss <id…>`,
          );
        }
        if (!o.json && retrying.length) {
          const hours = app.application.giveUpHours;
          out.line(
            `\nstill retried by every run, holding their data type's cursor back (each becomes a failed item after 3 runs and ${hours ? `${hours} h` : 'never: giveUpHours is 0'}):`,
          );
          out.line(
            table([
              ['FIRST FAILED', 'DESTINATION', 'DATA TYPE', 'SITE HOST', 'SESSION', 'RUNS', 'LAST ERROR'],
              ...retrying.map((r) => [
                r.since.replace(/\.\d+Z$/, 'Z'),
                r.destination,
                r.operation,
                r.host,
                sessionOf(r),
                String(r.runs),
                r.code ? errorCell({ code: r.code, message: r.message ?? '' }) : '-',
              ]),
            ]),
          );
        }
        return EXIT.ok;
      });
    });

  f.command('retry [ids...]')
    .description(
      'deliver failed items again: their sessions are pulled from the appliance by id and every data type that failed is delivered; what is delivered leaves the list',
    )
    .option(
      '--destination <name>',
      "every open failed item of this destination (or, with ids, only this destination's)",
    )
    .option('--all', 'every open failed item')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  ic failed retry 12 15\n  ic failed retry --destination archive\nExit code: 0 every item delivered, 1 some are still open.',
    )
    .action(async (ids: string[], o: SelectOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const chosen = await select(app, ids, o, 'retry');
        const results = await retry(app, chosen);
        const delivered = results.filter((r) => r.result === 'delivered').length;
        if (o.json)
          out.json({ ok: delivered === results.length, delivered, open: results.length - delivered, results });
        else if (!results.length) out.line('no failed items');
        else {
          out.line(
            table([
              ['ID', 'DESTINATION', 'DATA TYPE', 'SESSION', 'RESULT'],
              ...results.map((r) => [
                String(r.id),
                r.destination,
                r.operation,
                r.session,
                r.reason ? `${r.result}: ${r.reason}` : r.result,
              ]),
            ]),
          );
          out.line(
            `\n${delivered} of ${results.length} delivered${delivered < results.length ? `; ${results.length - delivered} still open (ic failed list; details: ic logs)` : ''}`,
          );
        }
        return delivered === results.length ? EXIT.ok : EXIT.failed;
      });
    });

  f.command('dismiss [ids...]')
    .description(
      'give up on failed items: they leave the list and are not delivered (nothing is deleted anywhere else)',
    )
    .option(
      '--destination <name>',
      "every open failed item of this destination (or, with ids, only this destination's)",
    )
    .option('--all', 'every open failed item')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic failed dismiss 12')
    .action(async (ids: string[], o: SelectOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const chosen = await select(app, ids, o, 'dismiss');
        await app.db.dropFailedItems(chosen);
        if (chosen.length)
          app.log.warn(
            { items: chosen.map((i) => ({ destination: i.destination, item: i.item, code: i.code })) },
            'failed items dismissed by the operator: they will not be delivered',
          );
        if (o.json)
          out.json({ dismissed: chosen.map((i) => ({ id: i.id, destination: i.destination, item: i.item })) });
        else
          out.line(
            chosen.length ? `dismissed ${chosen.length} failed item(s); they will not be delivered` : 'no failed items',
          );
        return EXIT.ok;
      });
    });
}

/** What became of one failed item in a retry. */
interface RetryResult {
  readonly id: number;
  readonly destination: string;
  readonly item: string;
  readonly operation: Operation;
  readonly session: string;
  readonly result: 'delivered' | 'failed again' | 'not delivered';
  readonly reason?: string;
}

/**
 * Delivers `items` again, per destination and site: the sessions are pulled by lsid, each failed data type is
 * delivered through the engine with the ledger on (what was delivered since is skipped; what is delivered now is
 * recorded, so no later overlap delivers it twice), and each item delivered now leaves the list. One that fails
 * again gets its new attempt recorded by the engine.
 */
async function retry(app: App, items: readonly FailedItem[]): Promise<RetryResult[]> {
  const results: RetryResult[] = [];
  const say = (i: FailedItem, result: RetryResult['result'], reason?: string) =>
    results.push({
      id: i.id,
      destination: i.destination,
      item: i.item,
      operation: i.operation,
      session: sessionOf(i),
      result,
      ...(reason && { reason }),
    });
  const engine = new TransferEngine(app.db, app.log);
  const sites = await app.db.sites();
  const schedules = await app.db.schedules();
  for (const [destinationName, ofDestination] of groupBy(items, (i) => i.destination)) {
    let destination: OpenDestination;
    try {
      destination = await app.destinations.open(destinationName);
    } catch (err) {
      for (const i of ofDestination) say(i, 'not delivered', `the destination cannot be opened: ${errorText(err)}`);
      continue;
    }
    try {
      for (const [host, ofHost] of groupBy(ofDestination, (i) => i.host)) {
        // The site of that host a schedule pairs with this destination (its name is part of what a plugin writes),
        // else any site of that host.
        const candidates = sites.filter((s) => s.host === host);
        const paired = candidates.find((s) =>
          schedules.some((x) => x.transfers.some((t) => t.site === s.name && t.destination === destinationName)),
        );
        const siteName = (paired ?? candidates[0])?.name;
        if (!siteName) {
          for (const i of ofHost)
            say(i, 'not delivered', `no site has host ${host} now: add it again (ic site add) or dismiss the item`);
          continue;
        }
        const readable = ofHost.filter((i) => i.lsid !== '?');
        for (const i of ofHost)
          if (i.lsid === '?')
            say(
              i,
              'not delivered',
              'its entry in the report could not be read, so its session is not known; see ic logs',
            );
        await retryFromSite(app, engine, siteName, destination, readable, say);
      }
    } finally {
      await destination.instance.close();
    }
  }
  return results;
}

async function retryFromSite(
  app: App,
  engine: TransferEngine,
  siteName: string,
  destination: OpenDestination,
  items: readonly FailedItem[],
  say: (i: FailedItem, result: RetryResult['result'], reason?: string) => void,
): Promise<void> {
  let client: SiteClient;
  try {
    client = await SiteClient.create({ site: await app.db.site(siteName), logger: app.log });
  } catch (err) {
    for (const i of items) say(i, 'not delivered', `site ${siteName}: ${errorText(err)}`);
    return;
  }
  try {
    const lsids = [...new Set(items.map((i) => i.lsid))];
    for (let at = 0; at < lsids.length; at += LSIDS_PER_REQUEST) {
      const chunk = new Set(lsids.slice(at, at + LSIDS_PER_REQUEST));
      const these = items.filter((i) => chunk.has(i.lsid));
      const seen = new Set<string>(); // sessions the appliance returned
      let outcome: TransferOutcome | undefined;
      let thrown: unknown;
      try {
        // Holding the pair, as a scheduled run does: a run moving it now would race this one in the destination.
        const pair = { site: siteName, destination: destination.name };
        outcome = await withPair(app.db, app.log, pair, 'ic failed retry', { onWaiting: sayWaiting }, () =>
          engine.run(
            { siteName, site: client, destination, dataTypes: [...new Set(these.map((i) => i.operation))] },
            {
              query: { [API.params.lsids]: [...chunk].join(',') },
              ledger: true,
              onSettled: (lsid) => seen.add(lsid),
            },
          ),
        );
      } catch (err) {
        thrown = err;
      }
      // What is still open now (the engine took what it delivered off the list): an item that failed again has a
      // newer attempt than the one retried.
      const open = new Map(
        (await app.db.failedItems({ destination: destination.name, limit: 1_000_000 })).map((i) => [i.item, i]),
      );
      for (const i of these) {
        const now = open.get(i.item);
        if (!now) say(i, 'delivered');
        else if (now.id > i.id) say(i, 'failed again', `${now.code}: ${now.message}`);
        else if (thrown) say(i, 'not delivered', errorText(thrown));
        else if (outcome?.haltedBy) say(i, 'not delivered', `${haltedWhy(outcome.haltedBy)} (${outcome.haltedBy})`);
        else if (!seen.has(i.lsid))
          say(
            i,
            'not delivered',
            `the appliance did not return session ${i.lsid} (it keeps sessions at most 90 days); dismiss the item to give up on it`,
          );
        else say(i, 'not delivered', outcome?.errors[0] ?? 'retryable: try again later');
      }
    }
  } finally {
    await client.close();
  }
}

function groupBy<T>(list: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const t of list) {
    const k = key(t);
    const g = m.get(k);
    if (g) g.push(t);
    else m.set(k, [t]);
  }
  return m;
}
