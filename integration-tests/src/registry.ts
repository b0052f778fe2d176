/**
 * A real npm registry for tests: verdaccio on loopback with its storage in a temporary directory. Our own
 * packages (`@integration-client/*`, `@integration-client-fixtures/*`, `ic-plugin-*`) live only there; anything
 * else (the SDK's ajv, semver, …) is proxied from the npm registry this machine is configured with.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Registry {
  readonly url: string;
  /** npm env with a placeholder token for anonymous publishing (never touches ~/.npmrc). */
  readonly env: Record<string, string>;
  /** Publishes a package folder (a copy with `private` dropped, optionally changed first). */
  publish(dir: string, change?: (pkg: Record<string, unknown>, copyDir: string) => Promise<void> | void): Promise<void>;
  stop(): Promise<void>;
}

export async function startRegistry(): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'ic-verdaccio-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const upstream =
    (await run('npm', ['config', 'get', 'registry'], { cwd: tmpdir() })).stdout.trim() || 'https://registry.npmjs.org/';
  const local = { access: '$all', publish: '$all', unpublish: '$all' };
  const config = {
    storage: join(dir, 'storage'),
    uplinks: { upstream: { url: upstream, timeout: '60s' } },
    packages: {
      '@integration-client/*': local,
      '@integration-client-fixtures/*': local,
      'ic-plugin-*': local,
      '**': { access: '$all', publish: '$all', proxy: 'upstream' },
    },
    middlewares: { audit: { enabled: false } },
    log: { type: 'stdout', format: 'json', level: 'warn' },
    publish: { allow_offline: true },
    listen: `127.0.0.1:${port}`,
  };
  // verdaccio reads YAML; JSON is valid YAML.
  await writeFile(join(dir, 'config.yaml'), JSON.stringify(config, null, 2));
  const bin = join(dirname(require.resolve('verdaccio/package.json')), 'bin/verdaccio');
  const child: ChildProcess = spawn(process.execPath, [bin, '--config', join(dir, 'config.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${url}-/ping`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`verdaccio did not start on ${url}:\n${output.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const npmrc = join(dir, 'npmrc');
  await writeFile(npmrc, `//127.0.0.1:${port}/:_authToken=anonymous-placeholder\n`);
  const env = { NPM_CONFIG_USERCONFIG: npmrc, npm_config_cache: join(dir, 'npm-cache') };
  return {
    url,
    env,
    async publish(pkgDir, change) {
      const copy = await mkdtemp(join(dir, 'publish-'));
      await cp(pkgDir, copy, { recursive: true, filter: (src) => !src.includes('node_modules') });
      const pkg = JSON.parse(await readFile(join(copy, 'package.json'), 'utf8')) as Record<string, unknown>;
      delete pkg.private;
      await change?.(pkg, copy);
      await writeFile(join(copy, 'package.json'), JSON.stringify(pkg, null, 2));
      await run('npm', ['publish', '--registry', url, '--ignore-scripts'], {
        cwd: copy,
        env: { ...process.env, ...env },
      });
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
