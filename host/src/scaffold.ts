/**
 * `ic plugin new`: writes a plugin package that installs, passes its own tests and the SDK conformance suite
 * as generated. It stores session data as one JSON file per session in a configured folder; authors replace
 * the handler bodies with their destination's code (the TODOs say where).
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { checkoutSdkDir } from '@integration-client/core';
import { ConfigError, makeDirectory, SDK_API_VERSION } from '@integration-client/plugin-sdk';
import { HOST_VERSION } from './host-version.js';

export interface ScaffoldOptions {
  /** Kebab-case plugin id. */
  readonly id: string;
  /** npm package name (default `ic-plugin-<id>`). */
  readonly packageName?: string;
  /** Target folder (default `./<package name without scope>`). */
  readonly dir?: string;
  readonly displayName?: string;
}

const ID = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const minorRange = (v: string) => `^${v.split('.').slice(0, 2).join('.')}.0`;

export function scaffoldFiles(o: ScaffoldOptions): Record<string, string> {
  const name = o.packageName ?? `ic-plugin-${o.id}`;
  const displayName = o.displayName ?? `${o.id} destination`;
  const pkg = {
    name,
    version: '0.1.0',
    description: `${displayName}: a destination plugin for the BeyondTrust integration client.`,
    type: 'module',
    main: 'index.js',
    files: ['index.js', 'config.schema.json', 'README.md'],
    keywords: ['integration-client-plugin'],
    license: 'Apache-2.0',
    engines: { node: '>=20.19' },
    scripts: { test: 'node --test' },
    dependencies: { '@integration-client/plugin-sdk': minorRange(HOST_VERSION) },
    integrationClient: {
      id: o.id,
      kind: 'destination',
      displayName,
      operations: ['session-data'],
      host: minorRange(HOST_VERSION),
      sdkApiVersion: SDK_API_VERSION,
      configSchema: 'config.schema.json',
    },
  };
  const schema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: displayName,
    type: 'object',
    additionalProperties: false,
    required: ['directory'],
    properties: {
      directory: {
        type: 'string',
        title: 'Directory',
        description: 'Folder the session files are written to (created when missing).',
      },
    },
  };
  const index = `// @ts-check
// ${displayName}. The host validates the config against config.schema.json before create() sees it, runs this
// module in a worker thread of its own, and calls one handler per item of the operations the manifest
// (package.json "integrationClient") declares. See docs/writing-a-plugin.md of the integration client.
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkResult, defineDestination, DestinationError, makeDirectory, modelJson } from '@integration-client/plugin-sdk';

/** @typedef {{ directory: string }} Config */

export default defineDestination(
  /** @type {import('@integration-client/plugin-sdk').DestinationDefinition<Config>} */ ({
    id: ${JSON.stringify(o.id)},
    async create(ctx) {
      const { directory } = ctx.config;
      makeDirectory(directory); // not mkdir's { recursive: true }: it can loop for ever (see the SDK)
      return {
        // Tell the user, in words, whether the destination can be written to: write a probe file and remove it.
        async check() {
          try {
            const probe = join(directory, \`.ic-probe-\${process.pid}\`);
            await writeFile(probe, '');
            await rm(probe);
            return checkResult([{ name: 'directory', ok: true, message: \`\${directory} is writable\` }]);
          } catch (err) {
            return checkResult([{ name: 'directory', ok: false, message: /** @type {Error} */ (err).message }]);
          }
        },
        handlers: {
          // TODO: store the item in your destination. Resolve only once it is stored; be idempotent per item
          // (the same session may come again after a crash: replace it, do not add a second copy).
          async 'session-data'(item) {
            const file = join(directory, \`\${item.site.host}-\${item.lsid.replace(/[^\\w.-]/g, '_')}.json\`);
            const tmp = \`\${file}.tmp\`;
            try {
              // modelJson: the session's JSON as it crossed from the host (read item.session for the object).
              await writeFile(tmp, modelJson(item));
              await rename(tmp, file);
            } catch (err) {
              throw new DestinationError('IC_ERR_DESTINATION_WRITE_FAILED', \`cannot write \${file}: \${/** @type {Error} */ (err).message}\`, {
                cause: err,
              });
            }
            ctx.logger.debug({ lsid: item.lsid }, 'session stored');
            return { status: 'written', location: file };
          },
        },
        async close() {},
      };
    },
  }),
);
`;
  const test = `// Runs the integration client's conformance suite on this package, then one delivery by hand.
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFakeContext, runConformance, sampleItem } from '@integration-client/plugin-sdk/testing';
import plugin from '../index.js';

const packageDir = new URL('..', import.meta.url).pathname;

test('passes the SDK conformance suite', async () => {
  const directory = await mkdtemp(join(tmpdir(), '${o.id}-'));
  const report = await runConformance({ packageDir, config: { directory } });
  assert.deepEqual(report.codes, [], JSON.stringify(report.checks, null, 2));
  assert.ok(report.ok);
});

test('stores a session once, even when it is delivered twice', async () => {
  const directory = await mkdtemp(join(tmpdir(), '${o.id}-'));
  const destination = await plugin.create(createFakeContext({ config: { directory } }));
  const { item } = sampleItem('session-data');
  const signal = new AbortController().signal;
  assert.equal((await destination.handlers['session-data'](item, { signal })).status, 'written');
  await destination.handlers['session-data'](item, { signal });
  assert.equal((await readdir(directory)).length, 1);
  await destination.close();
});
`;
  const readme = `# ${name}

${displayName}: a destination plugin for the BeyondTrust integration client (\`ic\`).

## Install

\`\`\`bash
ic plugin install ${name}            # from your npm registry (add --registry <url>)
ic destination add my-${o.id} --plugin ${o.id} --set directory=/var/lib/${o.id}
ic schedule add hourly --every 1h --transfer <site>:my-${o.id}:session-data
\`\`\`

## Settings

| setting | required | meaning |
|---|---|---|
| \`directory\` | yes | Folder the session files are written to (created when missing). |

## Operations

- \`session-data\` — one JSON file per session (\`<site host>-<lsid>.json\`), replaced when the session comes again.

## Develop

\`\`\`bash
npm install
npm test                                              # node --test: conformance suite + own tests
ic plugin check . --config '{"directory":"/tmp/out"}'  # the same suite through the host
npm publish                                           # then \`ic plugin install ${name}\`
\`\`\`
`;
  return {
    'package.json': JSON.stringify(pkg, null, 2) + '\n',
    'config.schema.json': JSON.stringify(schema, null, 2) + '\n',
    'index.js': index,
    'test/plugin.test.js': test,
    'README.md': readme,
    '.gitignore': 'node_modules/\n*.tgz\n',
  };
}

/**
 * How the new package gets the plugin SDK. From an installed host, the registry's: `npm install`. From a source
 * checkout, whose SDK is not on a registry yet, the checkout's own: `npm link <checkout>/plugin-sdk`, which leaves
 * package.json's dependency as it is for publishing.
 */
export function sdkInstallCommand(): string {
  const dir = checkoutSdkDir();
  return dir ? `npm link ${dir}` : 'npm install';
}

/**
 * Writes the scaffold; refuses a bad id or a folder that already has a package.json. Returns the folder, the files
 * and the command that installs the SDK into it.
 */
export async function scaffoldPlugin(
  o: ScaffoldOptions,
  cwd = process.cwd(),
): Promise<{ dir: string; files: string[]; install: string }> {
  if (!ID.test(o.id))
    throw new ConfigError(
      `plugin id ${JSON.stringify(o.id)} must be kebab-case: lowercase letters, digits and dashes, starting with a letter`,
    );
  const files = scaffoldFiles(o);
  const name = o.packageName ?? `ic-plugin-${o.id}`;
  const dir = resolve(cwd, o.dir ?? name.replace(/^@[^/]+\//, ''));
  if (existsSync(join(dir, 'package.json')))
    throw new ConfigError(`${dir} already holds a package.json; choose another --dir`);
  for (const [file, text] of Object.entries(files)) {
    makeDirectory(join(dir, file, '..'));
    await writeFile(join(dir, file), text);
  }
  return { dir, files: Object.keys(files), install: sdkInstallCommand() };
}
