import { resolve } from 'node:path';
import { ConfigError } from '@integration-client/plugin-sdk';
import { SiteClient, testCredentials, type CredentialsTest } from '@integration-client/core';
import { siteSchema, type SiteSettings } from '@integration-client/schemas';
import type { Command } from 'commander';
import type { App } from '../app.js';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import { promptConfig } from '../prompts.js';
import { readableFile, refuseIfScheduled, removedLine, table, withApp, type HomeOptions } from './common.js';

interface SiteOptions extends HomeOptions {
  host?: string;
  clientId?: string;
  clientSecret?: string;
  /** false: `--no-backup-password` (edit). */
  backupPassword?: string | false;
  /** false: `--no-ca-file` (edit). */
  caFile?: string | false;
  insecure?: boolean;
  rateLimit?: string;
  test?: boolean;
}

/** The client secret given: `--client-secret`, else IC_CLIENT_SECRET. */
const secretOf = (o: SiteOptions): string | undefined => o.clientSecret ?? process.env.IC_CLIENT_SECRET;

async function credentialsTest(app: App, site: SiteSettings): Promise<CredentialsTest> {
  const client = await SiteClient.create({ site, logger: app.log, retry: { attempts: 2 } });
  try {
    return await testCredentials(client);
  } finally {
    await client.close();
  }
}

function printTest(name: string, t: CredentialsTest, json?: boolean): void {
  if (json) out.json({ site: name, ...t });
  else out.line(t.ok ? `ok: ${t.message}` : `FAILED (${t.problem}): ${t.message}`);
}

async function save(app: App, o: SiteOptions, base: Partial<SiteSettings>, name: string): Promise<number> {
  const backupPassword = o.backupPassword ?? process.env.IC_BACKUP_PASSWORD;
  const { backupPassword: oldPassword, caFile: oldCa, ...kept } = base;
  const site = app.validator.site({
    ...kept,
    ...(backupPassword !== false && oldPassword !== undefined && { backupPassword: oldPassword }),
    ...(o.caFile !== false && oldCa !== undefined && { caFile: oldCa }),
    name,
    ...(o.host !== undefined && { host: o.host }),
    ...(o.clientId !== undefined && { clientId: o.clientId }),
    ...(secretOf(o) !== undefined && { clientSecret: secretOf(o) }),
    ...(typeof backupPassword === 'string' && { backupPassword }),
    // Absolute: the service does not run in the directory this was typed in.
    ...(typeof o.caFile === 'string' && { caFile: resolve(o.caFile) }),
    ...(o.insecure !== undefined && { insecure: o.insecure }),
    ...(o.rateLimit !== undefined && { rateLimitPerSecond: Number(o.rateLimit) }),
  });
  // Also with --no-test (the appliance may be down now): a CA file that cannot be read would fail every run.
  if (typeof o.caFile === 'string' && site.caFile)
    await readableFile(
      '--ca-file',
      site.caFile,
      "; give the PEM file of the CA that signed the appliance's certificate",
    );
  if (o.test !== false) {
    const t = await credentialsTest(app, site);
    if (!t.ok) {
      printTest(name, t, o.json);
      process.stderr.write(`site ${JSON.stringify(name)} was NOT saved; fix the problem or pass --no-test\n`);
      return EXIT.failed;
    }
    if (!o.json) out.line(`ok: ${t.message}`);
  }
  await app.db.putSite(site);
  if (o.json) out.json({ saved: name });
  else
    out.line(
      `site ${JSON.stringify(name)} saved (client secret${site.backupPassword ? ' and backup password' : ''} stored encrypted)`,
    );
  return EXIT.ok;
}

/** The fields `site add` cannot do without, and how each is given on the command line. */
const REQUIRED = [
  ['host', '--host'],
  ['clientId', '--client-id'],
  ['clientSecret', '--client-secret (or IC_CLIENT_SECRET)'],
] as const;

/**
 * `site add` with a required field missing: on a terminal it asks for them (from the site schema, the secret
 * without echo); otherwise it says which flags are missing, instead of the schema's "must have required property".
 */
async function withRequired(name: string, o: SiteOptions): Promise<SiteOptions> {
  const given: Record<string, unknown> = {
    ...(o.host !== undefined && { host: o.host }),
    ...(o.clientId !== undefined && { clientId: o.clientId }),
    ...(secretOf(o) !== undefined && { clientSecret: secretOf(o) }),
  };
  const missing = REQUIRED.filter(([field]) => given[field] === undefined);
  if (!missing.length) return o;
  if (!process.stdin.isTTY || o.json)
    throw new ConfigError(
      `site ${JSON.stringify(name)} needs ${missing.map(([, flag]) => flag).join(', ')}; give ${missing.length > 1 ? 'them' : 'it'} (the secret best in IC_CLIENT_SECRET, which keeps it out of \`ps\`), or run \`ic site add ${name}\` on a terminal to be asked`,
    );
  const properties = siteSchema.properties as Record<string, unknown>;
  const asked = await promptConfig(
    {
      properties: Object.fromEntries(missing.map(([field]) => [field, properties[field]])),
      required: missing.map(([field]) => field),
    },
    given,
  );
  return { ...o, ...asked };
}

export function siteCommands(ic: Command): void {
  const site = ic.command('site').description("BeyondTrust sites to pull from (the seed's Site Configuration)");
  const fields = (c: Command) =>
    c
      .option('--host <host>', 'site host name, without https:// (e.g. support.example.com)')
      .option('--client-id <id>', 'OAuth client id of the API account')
      .option('--client-secret <secret>', 'its client secret (or set IC_CLIENT_SECRET, which keeps it out of `ps`)')
      .option(
        '--backup-password <password>',
        'optional password applied to site backups (or set IC_BACKUP_PASSWORD, which keeps it out of `ps`)',
      )
      .option('--ca-file <pem>', 'extra CA certificates trusted for this site')
      .option('--insecure', 'skip certificate checks (logged as a warning on every run)')
      .option('--rate-limit <perSecond>', 'client-side request limit (default 20)')
      .option('--no-test', 'save without the credentials test')
      .option('--json', 'print the result as JSON');
  fields(
    site
      .command('add <name>')
      .description(
        'add a site; its credentials are tested before it is saved (on a terminal, asks for required fields not given)',
      ),
  )
    .addHelpText(
      'after',
      '\nExample:\n  IC_CLIENT_SECRET=… ic site add main --host support.example.com --client-id 3b0c…',
    )
    .action(async (name: string, o: SiteOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        if ((await app.db.sites()).some((s) => s.name === name))
          throw new ConfigError(`site ${JSON.stringify(name)} exists; use \`ic site edit\``);
        return save(app, await withRequired(name, o), {}, name);
      });
    });
  fields(site.command('edit <name>').description('change fields of a site (tested again before it is saved)'))
    .option('--no-backup-password', 'take backups without a password again')
    .option('--no-ca-file', 'trust only the system CAs again')
    .option('--no-insecure', 'check certificates again')
    .addHelpText(
      'after',
      '\nExamples:\n  ic site edit main --client-secret "$NEW_SECRET"\n  ic site edit main --no-insecure --ca-file /etc/ssl/appliance-ca.pem',
    )
    .action(async (name: string, o: SiteOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => save(app, o, await app.db.site(name), name));
    });
  site
    .command('list')
    .description('list sites (secrets are never shown)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic site list --json')
    .action(async (o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const sites = await app.db.sites();
        if (o.json) out.json(sites);
        else if (!sites.length) out.line('no sites; add one with `ic site add`');
        else
          out.line(
            table([
              ['NAME', 'HOST', 'CLIENT ID', 'CA FILE'],
              ...sites.map((s) => [s.name, s.host, s.clientId, s.caFile ?? '']),
            ]),
          );
        return EXIT.ok;
      });
    });
  site
    .command('show <name>')
    .description('show one site (secrets masked)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic site show main')
    .action(async (name: string, o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        await app.db.site(name); // not-found error when missing
        const s = (await app.db.sites()).find((x) => x.name === name)!;
        if (o.json) out.json(s);
        else for (const [k, v] of Object.entries(s)) out.line(`${k.padEnd(20)} ${String(v)}`);
        return EXIT.ok;
      });
    });
  site
    .command('test <name>')
    .description('the seed\'s "Test the supplied credentials": a token and one cheap report call')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic site test main')
    .action(async (name: string, o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        const t = await credentialsTest(app, await app.db.site(name));
        printTest(name, t, o.json);
        return t.ok ? EXIT.ok : EXIT.failed;
      });
    });
  site
    .command('remove <name>')
    .description('remove a site, and the cursors of its transfers (added again, it starts from everything)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic site remove old-site')
    .action(async (name: string, o: HomeOptions, cmd: Command) => {
      process.exitCode = await withApp(opts(cmd, o), async (app) => {
        await app.db.site(name);
        await refuseIfScheduled(app, 'site', name);
        const forgotten = await app.db.removeSite(name);
        if (o.json) out.json({ removed: name, forgotten });
        else removedLine('site', name, forgotten);
        return EXIT.ok;
      });
    });
}

/** Merges the global `--home` into a command's options. */
export function opts<T extends HomeOptions>(cmd: Command, o: T): T {
  return { ...cmd.optsWithGlobals<HomeOptions>(), ...o };
}
