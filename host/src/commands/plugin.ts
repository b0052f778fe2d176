import { installPlugin, removePlugin, type CatalogEntry } from '@integration-client/core';
import { ConfigError } from '@integration-client/plugin-sdk';
import type { Command } from 'commander';
import { pluginCatalog } from '../app.js';
import { EXIT } from '../exit-codes.js';
import { HOST_VERSION } from '../host-version.js';
import { out } from '../output.js';
import { scaffoldPlugin } from '../scaffold.js';
import { table, withApp, type HomeOptions } from './common.js';
import { pluginCheck } from './plugin-check.js';
import { opts } from './site.js';

interface ListedPlugin {
  id?: string;
  package: string;
  version?: string;
  source: CatalogEntry['source'];
  operations: readonly string[];
  status: 'ok' | 'failed';
  error?: { code: string; message: string };
  usedBy: string[];
}

interface FieldSchema {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  writeOnly?: boolean;
}

/** The top-level fields of a config schema in words: name (type, required / default, secret), then its description. */
export function configFields(schema: Readonly<Record<string, unknown>>): string[] {
  const props = (schema.properties ?? {}) as Record<string, FieldSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(props).flatMap(([key, f]) => {
    const facts = [
      f.enum ? f.enum.map((v) => JSON.stringify(v).replace(/^"|"$/g, '')).join(' | ') : (f.type ?? 'any'),
      ...(f.minimum !== undefined || f.maximum !== undefined ? [`${f.minimum ?? ''}..${f.maximum ?? ''}`] : []),
      required.has(key) ? 'required' : f.default !== undefined ? `default ${JSON.stringify(f.default)}` : 'optional',
      ...(f.writeOnly ? ['secret: stored encrypted, never shown'] : []),
    ];
    return [`  ${key} (${facts.join(', ')})`, ...(f.description ? [`      ${f.description}`] : [])];
  });
}

export function pluginCommands(ic: Command): void {
  const plugin = ic.command('plugin').description('destination plugins: list, show, install, remove, scaffold, check');

  plugin
    .command('list')
    .description('the bundled and installed plugins, their operations and status (failed ones say why)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic plugin list --json')
    .action(async (o: HomeOptions, cmd: Command) => {
      const options = opts(cmd, o);
      process.exitCode = await withApp(options, async (app) => {
        const destinations = await app.db.destinations();
        const listed: ListedPlugin[] = (await pluginCatalog(app.home).list()).map((e) => ({
          ...(e.id && { id: e.id }),
          package: e.name,
          ...(e.version && { version: e.version }),
          source: e.source,
          operations: e.inspected?.manifest.operations ?? [],
          status: e.inspected ? 'ok' : 'failed',
          ...(e.error && { error: { code: e.error.code, message: e.error.message } }),
          usedBy: destinations.filter((d) => e.id && d.plugin === e.id).map((d) => d.name),
        }));
        if (options.json) out.json(listed);
        else {
          out.line(
            table([
              ['ID', 'PACKAGE', 'VERSION', 'SOURCE', 'STATUS', 'OPERATIONS', 'USED BY'],
              ...listed.map((p) => [
                p.id ?? '?',
                p.package,
                p.version ?? '?',
                p.source,
                p.status === 'ok' ? 'ok' : `failed ${p.error?.code ?? ''}`,
                p.operations.join(','),
                p.usedBy.join(',') || '-',
              ]),
            ]),
          );
          for (const p of listed.filter((x) => x.error))
            out.line(`\n${p.package}: ${p.error!.code}: ${p.error!.message}`);
        }
        return listed.some((p) => p.status === 'failed') ? EXIT.failed : EXIT.ok;
      });
    });

  plugin
    .command('show <id>')
    .description('one plugin: its package, operations and the config fields a destination of it takes')
    .option('--json', 'print JSON (the manifest and the whole config schema)')
    .addHelpText('after', '\nExample:\n  ic plugin show sql')
    .action(async (id: string, o: HomeOptions, cmd: Command) => {
      const options = opts(cmd, o);
      process.exitCode = await withApp(options, async (app) => {
        const p = await pluginCatalog(app.home).get(id);
        const usedBy = (await app.db.destinations()).filter((d) => d.plugin === id).map((d) => d.name);
        const schema = p.configSchema.schema;
        if (options.json) {
          out.json({
            id,
            package: p.name,
            version: p.version,
            dir: p.dir,
            manifest: p.manifest,
            configSchema: schema,
            usedBy,
          });
          return EXIT.ok;
        }
        out.line(`${id}: ${p.name} ${p.version} (${p.dir})`);
        out.line(`  operations: ${p.manifest.operations.join(', ')}`);
        out.line(`  used by: ${usedBy.join(', ') || '-'}`);
        out.line(`\nconfig fields (ic destination add <name> --plugin ${id} --set <field>=<value>):`);
        for (const line of configFields(schema)) out.line(line);
        return EXIT.ok;
      });
    });

  plugin
    .command('install <spec>')
    .description(
      'install or upgrade a plugin package (name[@version], a .tgz tarball or a folder) into $IC_HOME/plugins; a running service uses it from its next transfer',
    )
    .option('--registry <url>', 'npm registry to install from (remembered for later plugin installs)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  ic plugin install ic-plugin-jsonl@1.2.0 --registry http://npm.example.internal\n  ic plugin install ./ic-plugin-jsonl-1.2.0.tgz',
    )
    .action(async (spec: string, o: HomeOptions & { registry?: string }, cmd: Command) => {
      const options = opts(cmd, o);
      process.exitCode = await withApp(options, async (app) => {
        if (!options.json) out.line(`fetching ${spec} …`);
        const r = await installPlugin(spec, pluginCatalog(app.home), {
          hostVersion: HOST_VERSION,
          ...(options.registry && { registry: options.registry }),
        });
        app.log.info(
          { plugin: r.id, package: r.name, version: r.version, previousVersion: r.previousVersion },
          'plugin installed',
        );
        if (options.json) out.json(r);
        else
          out.line(
            `installed ${r.name}@${r.version} as plugin "${r.id}"${r.previousVersion ? ` (was ${r.previousVersion})` : ''}; operations: ${r.operations.join(', ')}\n` +
              `next: ic destination add <name> --plugin ${r.id} --set key=value`,
          );
        return EXIT.ok;
      });
    });

  plugin
    .command('remove <id>')
    .description('remove an installed plugin (refused while destinations use it, unless --force)')
    .option('--force', 'remove even though destinations use it (their transfers fail until it is back)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  ic plugin remove jsonl')
    .action(async (id: string, o: HomeOptions & { force?: boolean }, cmd: Command) => {
      const options = opts(cmd, o);
      process.exitCode = await withApp(options, async (app) => {
        const users = (await app.db.destinations()).filter((d) => d.plugin === id);
        if (users.length && !options.force)
          throw new ConfigError(
            `plugin "${id}" is used by destination(s) ${users.map((d) => d.name).join(', ')}; remove them first or pass --force`,
          );
        const r = await removePlugin(id, pluginCatalog(app.home), {});
        app.log.info({ plugin: id, package: r.name, version: r.version }, 'plugin removed');
        if (options.json) out.json({ removed: r });
        else out.line(`removed ${r.name}${r.version ? `@${r.version}` : ''}`);
        return EXIT.ok;
      });
    });

  plugin
    .command('new <id>')
    .description('scaffold a plugin package: manifest, config schema, handler, tests, README')
    .option('--package <name>', 'npm package name (default ic-plugin-<id>)')
    .option('--dir <dir>', 'target folder (default ./<package name>)')
    .option('--display-name <text>', 'human-readable name')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExample:\n  ic plugin new jsonl && cd ic-plugin-jsonl && npm install && npm test\n(from a source checkout it prints `npm link <checkout>/plugin-sdk` instead of `npm install`: the SDK is not on a registry yet)',
    )
    .action(async (id: string, o: { package?: string; dir?: string; displayName?: string; json?: boolean }) => {
      const r = await scaffoldPlugin({
        id,
        ...(o.package && { packageName: o.package }),
        ...(o.dir && { dir: o.dir }),
        ...(o.displayName && { displayName: o.displayName }),
      });
      if (o.json) out.json(r);
      else
        out.line(
          `created ${r.dir}:\n${r.files.map((f) => `  ${f}`).join('\n')}\nnext: cd ${r.dir} && ${r.install} && npm test${r.install.startsWith('npm link') ? '\n(this host runs from a source checkout: the SDK comes from it, not from a registry; package.json is left as it is)' : ''}`,
        );
      process.exitCode = EXIT.ok;
    });

  plugin
    .command('check <dir>')
    .description('run the plugin SDK conformance suite on a plugin package')
    .requiredOption('-c, --config <json|file>', 'a valid destination config for the plugin (JSON text or a file)')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExample:\n  ic plugin check ./my-plugin --config \'{"path":"/tmp/out.jsonl"}\'')
    .action(async (dir: string, options: { config: string; json?: boolean }) => {
      process.exitCode = await pluginCheck(dir, options);
    });
}
