import { checkRouting, capabilitiesOf } from '@integration-client/core';
import { ConfigError, isIcError, type CheckResult } from '@integration-client/plugin-sdk';
import type { DestinationSettings } from '@integration-client/schemas';
import type { Command } from 'commander';
import type { App } from '../app.js';
import { EXIT } from '../exit-codes.js';
import { errorText, out } from '../output.js';
import {
  collect,
  parseSets,
  readJsonArg,
  refuseIfScheduled,
  removedLine,
  table,
  withApp,
  type HomeOptions,
} from './common.js';
import { promptConfig } from '../prompts.js';
import { opts } from './site.js';

interface DestinationOptions extends HomeOptions {
  plugin?: string;
  set?: string[];
  config?: string;
  /** Fields taken out of the config (edit): back to their defaults, or absent. */
  unset?: string[];
  test?: boolean;
}

/** What list/show print of a stored destination (its config already masked). */
const shown = (d: { name: string; plugin: string; config: Record<string, unknown> }) => ({
  name: d.name,
  plugin: d.plugin,
  config: d.config,
});

/** A config as text with its top-level keys in order, to tell whether an edit changed it. */
const canonical = (config: Record<string, unknown>) =>
  JSON.stringify(Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1))));

/** Opens a destination (stored, or `settings` not saved yet), runs its check and closes it. */
async function check(app: App, name: string, settings?: DestinationSettings): Promise<CheckResult> {
  const d = await app.destinations.open(name, settings);
  try {
    return await d.instance.check();
  } finally {
    await d.instance.close();
  }
}

function printCheck(name: string, r: CheckResult, json?: boolean): void {
  if (json) return out.json({ destination: name, ...r });
  for (const s of r.steps) out.line(`${s.ok ? 'ok  ' : 'FAIL'} ${s.name}: ${s.message}`);
}

async function save(
  app: App,
  name: string,
  o: DestinationOptions,
  base?: { plugin: string; config: Record<string, unknown> },
) {
  const pluginId = o.plugin ?? base?.plugin;
  if (!pluginId) throw new ConfigError('--plugin <id> is required (see `ic plugin list`)');
  const pkg = await app.destinations.plugin(pluginId);
  // --config is the whole config (on edit it replaces the stored one); --set changes single fields on top.
  let given: Record<string, unknown> = {
    ...(o.config ? await readJsonArg(o.config, '--config') : (base?.config ?? {})),
    ...parseSets(o.set ?? [], pkg.configSchema.schema),
  };
  for (const key of o.unset ?? []) {
    if (!(key in given))
      throw new ConfigError(`--unset ${key}: destination ${JSON.stringify(name)} has no field ${JSON.stringify(key)}`);
    delete given[key];
  }
  // On a terminal with nothing given, ask for each field (generated from the plugin's schema).
  if (!base && !o.config && !o.set?.length && process.stdin.isTTY && !o.json)
    given = await promptConfig(pkg.configSchema.schema, given);
  let config: Record<string, unknown>;
  try {
    config = pkg.configSchema.validate<Record<string, unknown>>(given, `destination ${JSON.stringify(name)}`);
  } catch (err) {
    if (!isIcError(err) || err.code !== 'IC_ERR_CONFIG_INVALID') throw err;
    throw new ConfigError(`${err.message}; the plugin's fields: ic plugin show ${pluginId}`, { details: err.details });
  }
  const settings = app.validator.destination({ name, plugin: pluginId, config: { ...config } });
  const previous = base ? await app.db.destination(name) : undefined;
  // Tested before it is saved: a check that fails, hangs or is interrupted (Ctrl-C) leaves the stored one as it was.
  if (o.test !== false) {
    const r = await check(app, name, settings).catch((err: unknown) => ({
      ok: false,
      steps: [
        {
          name: 'create',
          ok: false,
          message: errorText(err),
        },
      ],
    }));
    if (!r.ok) {
      printCheck(name, r, o.json);
      process.stderr.write(`destination ${JSON.stringify(name)} was NOT saved; fix the problem or pass --no-test\n`);
      return EXIT.failed;
    }
    if (!o.json) printCheck(name, r);
  }
  await app.db.putDestination(settings, pkg.configSchema.secretFields);
  // An edited destination goes on from its cursors: said when it has been given something, in case it now writes
  // somewhere new (remove and add again gives it everything; ic test a past window).
  const delivered =
    previous && canonical(previous.config) !== canonical(config) ? await app.db.deliveredCount(name) : 0;
  if (o.json) out.json({ saved: name, plugin: pluginId, ...(delivered && { goesOnFromDelivered: delivered }) });
  else {
    const secrets = pkg.configSchema.secretFields.filter((f) => config[f] !== undefined);
    out.line(
      `destination ${JSON.stringify(name)} (${pluginId}) saved${secrets.length ? ` (${secrets.join(', ')} stored encrypted)` : ''}`,
    );
    if (delivered)
      out.line(
        `note: it goes on from its cursors — the ${delivered} items it was given before are not given again; if it now writes somewhere new and should get everything, remove it and add it again (ic destination remove ${name}), or pull a past window into it with ic test`,
      );
  }
  return EXIT.ok;
}

export function destinationCommands(ic: Command): void {
  const d = ic.command('destination').description('destinations: configured instances of destination plugins');
  const fields = (c: Command) =>
    c
      .option('--plugin <id>', 'plugin id (see `ic plugin list`)')
      .option('--set <key=value>', 'one config field (repeatable)', collect)
      .option('--config <json|file>', 'the whole config as JSON text or a file (edit: replaces the stored one)')
      .option('--no-test', 'save without testing the destination')
      .option('--json', 'print JSON');
  fields(d.command('add <name>').description("add a destination; validated against the plugin's schema and tested"))
    .addHelpText(
      'after',
      '\nOn a terminal, without --set or --config, every field is asked for (secrets are not echoed).\nExamples:\n  ic destination add files --plugin file-system --set destinationDirectory=/srv/archive\n  ic destination add archive --plugin sql --set connectionString=postgres://ic@db/archive',
    )
    .action(async (name: string, o: DestinationOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        if ((await app.db.destinations()).some((x) => x.name === name))
          throw new ConfigError(`destination ${JSON.stringify(name)} exists; use \`ic destination edit\``);
        return save(app, name, o);
      });
    });
  fields(d.command('edit <name>').description('change config fields of a destination (tested again)'))
    .option('--unset <key>', 'take a field out of the config: back to its default (repeatable)', collect)
    .addHelpText(
      'after',
      '\nExamples:\n  ic destination edit files --set fileNameConflictHandling=Skip\n  ic destination edit files --unset retentionCount',
    )
    .action(async (name: string, o: DestinationOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => save(app, name, o, await app.db.destination(name)));
    });
  d.command('list')
    .description('list destinations (secret fields masked)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic destination list')
    .action(async (o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const all = await app.db.destinations();
        if (o.json) out.json(all.map(shown));
        else if (!all.length) out.line('no destinations; add one with `ic destination add`');
        else
          out.line(
            table([['NAME', 'PLUGIN', 'CONFIG'], ...all.map((x) => [x.name, x.plugin, JSON.stringify(x.config)])]),
          );
        return EXIT.ok;
      });
    });
  d.command('show <name>')
    .description('show one destination (secret fields masked)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic destination show archive --json')
    .action(async (name: string, o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        await app.db.destination(name);
        const x = shown((await app.db.destinations()).find((y) => y.name === name)!);
        if (o.json) out.json(x);
        else {
          out.line(`name     ${x.name}\nplugin   ${x.plugin}`);
          for (const [k, v] of Object.entries(x.config)) out.line(`  ${k.padEnd(26)} ${JSON.stringify(v)}`);
        }
        return EXIT.ok;
      });
    });
  d.command('test <name>')
    .description("run the destination's check: connection, permissions, what is missing in words")
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic destination test archive')
    .action(async (name: string, o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const r = await check(app, name);
        printCheck(name, r, o.json);
        return r.ok ? EXIT.ok : EXIT.failed;
      });
    });
  d.command('remove <name>')
    .description(
      'remove a destination, with its cursors, delivered-items ledger and failed items (added again, it is given everything)',
    )
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic destination remove old-archive')
    .action(async (name: string, o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        await app.db.destination(name);
        await refuseIfScheduled(app, 'destination', name);
        const forgotten = await app.db.removeDestination(name);
        if (o.json) out.json({ removed: name, forgotten });
        else removedLine('destination', name, forgotten);
        return EXIT.ok;
      });
    });
}

/** The routing check against the plugins of the named destinations. */
export async function checkScheduleRouting(app: App, schedule: Parameters<typeof checkRouting>[0]): Promise<void> {
  const caps = new Map<string, ReturnType<typeof capabilitiesOf>>();
  for (const t of schedule.transfers) {
    const stored = await app.db.destination(t.destination);
    caps.set(t.destination, capabilitiesOf((await app.destinations.plugin(stored.plugin)).manifest));
  }
  checkRouting(schedule, (n) => caps.get(n));
}
