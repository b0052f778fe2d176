import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { IC_BIN } from './paths.js';

/** What a run of the built `ic` printed and its exit code. */
export interface IcResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One line of a log file in $IC_HOME/logs (pino JSON). */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** Every line of the client's (`client`) or the service's (`service`) log files in `home`, or of both. */
export async function logLines(home: string, which: 'client' | 'service' | '' = ''): Promise<LogLine[]> {
  const dir = join(home, 'logs');
  const files = (await readdir(dir)).filter((f) => f.startsWith(which));
  const texts = await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
  return texts
    .flatMap((t) => t.split('\n'))
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogLine);
}

/** Runs the built `ic` binary as a user would, with IC_HOME set; never throws on a non-zero exit. */
export async function runIc(
  home: string,
  args: readonly string[],
  env: Record<string, string> = {},
  /** Killed after this long (its code is then null): for a command that must not hang. */
  timeoutMs = 0,
): Promise<IcResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [IC_BIN, ...args], {
      env: { ...process.env, IC_HOME: home, ...env },
      timeout: timeoutMs,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** `ic site add <name>` for a running simulator (credentials tested, its test CA trusted). */
export function addSimulatorSite(
  home: string,
  sim: { host: string; clientId: string; clientSecret: string },
  caFile: string,
  name = 'main',
) {
  return runIc(home, [
    'site',
    'add',
    name,
    '--host',
    sim.host,
    '--client-id',
    sim.clientId,
    '--client-secret',
    sim.clientSecret,
    '--ca-file',
    caFile,
  ]);
}

/** `ic destination add <name> --plugin file-system` writing into `dir`. */
export function addFilesDestination(home: string, dir: string, name = 'files', env: Record<string, string> = {}) {
  return runIc(
    home,
    ['destination', 'add', name, '--plugin', 'file-system', '--set', `destinationDirectory=${dir}`],
    env,
  );
}

/** `ic destination add <name> --plugin sql` on `connectionString`; `more` adds options (e.g. `--set`, `--no-test`). */
export function addSqlDestination(home: string, name: string, connectionString: string, more: readonly string[] = []) {
  return runIc(home, [
    'destination',
    'add',
    name,
    '--plugin',
    'sql',
    '--set',
    `connectionString=${connectionString}`,
    ...more,
  ]);
}

/**
 * Writes a pair lease into the SQLite settings database of `home` as another host's run would hold it (a settings
 * database shared by two hosts) for `seconds`; returns a function that lets go of it.
 */
export function holdPair(home: string, pair: string, holder: string, seconds: number): () => void {
  const db = new Database(join(home, 'settings.db'));
  try {
    db.prepare('INSERT INTO lease (name, holder, expires_at) VALUES (?, ?, ?)').run(
      `transfer:${pair}`,
      holder,
      Math.floor(Date.now() / 1000) + seconds,
    );
  } finally {
    db.close();
  }
  return () => {
    const again = new Database(join(home, 'settings.db'));
    try {
      again.prepare('DELETE FROM lease WHERE name = ?').run(`transfer:${pair}`);
    } finally {
      again.close();
    }
  };
}
