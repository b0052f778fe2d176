/**
 * Log files: pino JSON lines rolled daily by pino-roll (`client.2026-11-28.1.log`, `service.….log`) in the log
 * directory (`logDirectory`, default `$IC_HOME/logs`); files dated more than `logRemovalDays` ago are removed
 * whenever a command or the service opens the log, and by the service after every run and hourly.
 * `ic logs` prints them readably.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pino, type DestinationStream } from 'pino';
import { makeDirectory } from '@integration-client/plugin-sdk';

export type LogKind = 'client' | 'service';

export function logDirectory(home: string, configured?: string): string {
  return configured ? resolve(home, configured) : join(home, 'logs');
}

/** Makes `dir` if need be and writes and removes a probe of `bytes` bytes in it; throws what went wrong. */
export function probeDirectory(dir: string, bytes: number): void {
  makeDirectory(dir, 0o700);
  const probe = join(dir, `.ic-probe-${process.pid}`);
  try {
    writeFileSync(probe, 'x'.repeat(bytes));
  } finally {
    rmSync(probe, { force: true });
  }
}

/**
 * A rolling file destination for one kind of log. A log that cannot be written (its disk full, its folder gone
 * or read-only) must not end the process — pino's transport emits an 'error' nobody listened to, which killed a
 * run or the service mid-delivery. It is said once on standard error; the service's lines then go there (a
 * service manager keeps them, e.g. in the journal), a command's are dropped. Errors are still mailed (the
 * notifier hooks the logger, not the file).
 */
export function rollingDestination(
  dir: string,
  kind: LogKind,
  fallback: { write(line: string): unknown } | undefined = kind === 'service' ? process.stderr : undefined,
): DestinationStream {
  const unusable = (why: string) =>
    process.stderr.write(
      `warning: the ${kind} log in ${dir} cannot be written (${why}); ${fallback ? 'its lines go to standard error' : 'nothing more is logged'} until ic starts again: make room there or fix it, or set another directory (ic settings set --log-directory)\n`,
    );
  try {
    // A line's worth written and removed: a full or read-only disk is found now, before the transport has taken
    // (and lost) the first lines — the service's start and the armed schedules among them.
    probeDirectory(dir, 512);
  } catch (err) {
    // A directory that cannot be made (a file in its path, no permission) must not lock every command out —
    // `ic settings set --log-directory` included, which is how it is put right.
    unusable((err as Error).message);
    return { write: (line: string) => void fallback?.write(line) };
  }
  const transport = pino.transport({
    target: 'pino-roll',
    options: {
      file: join(dir, kind),
      frequency: 'daily',
      dateFormat: 'yyyy-MM-dd',
      extension: '.log',
      mkdir: true,
    },
  });
  let failed = false;
  transport.on('error', (err: Error) => {
    if (failed) return;
    failed = true;
    unusable(err.message);
  });
  return {
    write(line: string) {
      if (failed) fallback?.write(line);
      else transport.write(line);
    },
  };
}

/** Removes log files (of every kind) whose date is more than `days` days ago. Returns the removed paths. */
export function removeOldLogs(dir: string, days: number | undefined, now = Date.now()): string[] {
  if (!days) return [];
  const cutoff = new Date(now - days * 86_400_000).toISOString().slice(0, 10);
  const removed: string[] = [];
  for (const kind of ['client', 'service'] as const)
    for (const f of logFiles(dir, kind)) {
      const date = /\.(\d{4}-\d\d-\d\d)\.\d+\.log$/.exec(f)?.[1];
      if (date && date < cutoff) {
        rmSync(f, { force: true });
        removed.push(f);
      }
    }
  return removed;
}

/** Log files of a kind, oldest first. */
export function logFiles(dir: string, kind: LogKind): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const parse = (n: string) => /^[a-z]+\.(\d{4}-\d\d-\d\d)\.(\d+)\.log$/.exec(n);
  return names
    .filter((n) => n.startsWith(`${kind}.`) && parse(n))
    .sort((a, b) => {
      const [, da, ca] = parse(a)!;
      const [, db, cb] = parse(b)!;
      return da! === db! ? Number(ca) - Number(cb) : da! < db! ? -1 : 1;
    })
    .map((n) => join(dir, n));
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** pino's number for a level name (`warn` → 40); undefined for anything else. */
export function levelNumber(name: string): number | undefined {
  const found = Object.entries(LEVELS).find(([, n]) => n === name.toUpperCase());
  return found ? Number(found[0]) : undefined;
}

/** Whether a log line is at `min` or above; a line that is not a JSON log line is kept. */
export function atLeast(line: string, min: number): boolean {
  const level = /"level":(\d+)/.exec(line)?.[1];
  return level === undefined || Number(level) >= min;
}
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'err']);

/** One JSON log line as a readable line. */
export function readable(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const fields = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const err = o.err as { code?: string; message?: string } | undefined;
  return `${new Date(Number(o.time)).toISOString()} ${(LEVELS[Number(o.level)] ?? 'LEVEL').padEnd(5)} ${typeof o.msg === 'string' ? o.msg : ''}${err ? ` [${err.code ?? 'error'}: ${err.message ?? ''}]` : ''}${fields ? `  ${fields}` : ''}`;
}

/** Bytes read at a time when a log is read from its end. */
const BLOCK_BYTES = 1 << 20;

/**
 * The last `n` lines that `keep` accepts, oldest first, from `files` (oldest first): read from the end of the
 * newest file backwards, a block at a time, on into older files only while fewer were found. Never holds a whole
 * file: a day's log can be larger than a string may be (~512 MB), and `ic logs -n 20` should not read it all.
 */
export function tailLines(
  files: readonly string[],
  n: number,
  keep: (line: string) => boolean,
  blockBytes = BLOCK_BYTES,
): string[] {
  const found: string[] = []; // newest first
  for (let f = files.length - 1; f >= 0 && found.length < n; f--) {
    let fd: number;
    try {
      fd = openSync(files[f]!, 'r');
    } catch {
      continue; // removed meanwhile (log removal, a roll)
    }
    try {
      let pos = fstatSync(fd).size;
      let carry = Buffer.alloc(0); // the start of a line whose beginning is in an earlier block
      while (pos > 0 && found.length < n) {
        const length = Math.min(blockBytes, pos);
        pos -= length;
        const block = Buffer.alloc(length);
        readSync(fd, block, 0, length, pos);
        let text = Buffer.concat([block, carry]);
        if (pos > 0) {
          // Up to the first newline the line may go on before this block ('\n' is never inside a UTF-8 character).
          const first = text.indexOf(10);
          if (first === -1) {
            carry = text;
            continue;
          }
          carry = text.subarray(0, first);
          text = text.subarray(first + 1);
        }
        const lines = text.toString('utf8').split('\n');
        for (let i = lines.length - 1; i >= 0 && found.length < n; i--)
          if (lines[i] && keep(lines[i]!)) found.push(lines[i]!);
      }
    } finally {
      closeSync(fd);
    }
  }
  return found.reverse();
}

/**
 * The seed's "Last Program Run": when `ic` last ran a command, and which, from the client log's `command started`
 * lines (the newest first), leaving out this process's own. Undefined when the log has none (never run, or removed).
 */
export function lastCommand(dir: string, exceptPid = process.pid): { at: string; command: string } | undefined {
  const started = (line: string) => {
    if (!line.includes('"command started"')) return undefined;
    try {
      const o = JSON.parse(line) as { pid?: number; time?: number; command?: string; msg?: string };
      return o.msg === 'command started' && o.pid !== exceptPid && typeof o.time === 'number'
        ? { at: new Date(o.time).toISOString(), command: `ic ${o.command ?? ''}`.trim() }
        : undefined;
    } catch {
      return undefined;
    }
  };
  const [line] = tailLines(logFiles(dir, 'client'), 1, (l) => started(l) !== undefined);
  return line === undefined ? undefined : started(line);
}
