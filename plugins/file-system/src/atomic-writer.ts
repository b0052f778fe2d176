/**
 * Data path, last hop: kernel → plugin handler → AtomicWriter → disk.
 *
 *   source stream ──pipeline──▶ .ic-tmp-….part (fsync, byte count checked) ──place──▶ final name
 *
 * "place" is where File Name Conflict Handling happens, and it is atomic in every mode: AppendNumber and Skip
 * claim a name with link(2), which fails instead of replacing, so two writers racing for one name each get
 * their own (AppendNumber) or exactly one wins (Skip); Overwrite uses rename(2), which replaces in one step.
 * AppendNumber never keeps the same bytes twice: content equal to a file already under the name (or one of its
 * numbered names) is the same item delivered again, and is acknowledged as skipped.
 * A failure at any point removes the temporary file, so no partial file ever carries a final name.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { Writable, type Readable } from 'node:stream';
import { link, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DestinationError, makeDirectory, type AckStatus } from '@integration-client/plugin-sdk';
import { toDestinationError } from './fs-errors.js';
import { tempName } from './temp-files.js';

/** The error for a Destination Directory that does not exist and may not be created. */
export function missingDirectory(dir: string): DestinationError {
  return new DestinationError(
    'IC_ERR_DESTINATION_UNAVAILABLE',
    `destination directory ${dir} does not exist (is the share mounted?); create it or set createDirectory to true`,
  );
}

export type ConflictHandling = 'AppendNumber' | 'Overwrite' | 'Skip';

/** Where and how a write landed. */
export interface Placed {
  readonly status: AckStatus;
  readonly path: string;
  readonly bytes: number;
}

/** `x.flv` → `x.1.flv`: the number goes just before the last period (at the end when there is none). */
export function numberedName(name: string, n: number): string {
  if (n === 0) return name;
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)}.${n}${name.slice(dot)}` : `${name}.${n}`;
}

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/** Claims `target` for the file at `tmp` without ever replacing an existing file. False when the name is taken. */
async function claim(tmp: string, target: string): Promise<boolean> {
  try {
    await link(tmp, target);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!LINK_UNSUPPORTED.has(code)) throw err;
  }
  // File systems without hard links (some SMB mounts): reserve the name exclusively, then rename over it.
  try {
    await (await open(target, 'wx')).close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  await rename(tmp, target);
  return true;
}

/** True when the file at `b` holds exactly the `size` bytes of the file at `a`. */
async function sameContent(a: string, b: string, size: number): Promise<boolean> {
  const sb = await stat(b).catch(() => undefined);
  if (!sb || sb.size !== size) return false;
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const chunk = 1024 * 1024;
    const ba = Buffer.allocUnsafe(chunk);
    const bb = Buffer.allocUnsafe(chunk);
    for (let at = 0; at < size; at += chunk) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, chunk, at), fb.read(bb, 0, chunk, at)]);
      if (ra.bytesRead !== rb.bytesRead || !ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead)))
        return false;
    }
    return true;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => undefined);
  await fh.close();
}

/** Writes streams into one directory, atomically, with the configured conflict handling. */
export class AtomicWriter {
  constructor(
    private readonly dir: string,
    private readonly conflict: ConflictHandling,
    private readonly createDirectory: boolean,
  ) {}

  /**
   * Opens a new temporary file for writing and waits until it is open, so a directory that vanished since the
   * last write (deleted, share unmounted) is noticed before any byte of the source is read: it is created again
   * when allowed, otherwise reported as unavailable.
   */
  async #openTemp(tmp: string): Promise<WriteStream> {
    const attempt = async (): Promise<WriteStream> => {
      // `flush` fsyncs before the descriptor closes; pipeline resolves only after that close.
      const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true, highWaterMark: 1024 * 1024 });
      await once(out, 'ready');
      return out;
    };
    try {
      return await attempt();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (!this.createDirectory) throw missingDirectory(this.dir);
      makeDirectory(this.dir);
      return attempt();
    }
  }

  /** Streams `source` to `name` in the directory. `expectedBytes`, when known, must match what arrived. */
  async write(name: string, source: Readable, expectedBytes: number | undefined, signal: AbortSignal): Promise<Placed> {
    const final = join(this.dir, name);
    if (this.conflict === 'Skip' && (await exists(final))) {
      await pipeline(source, new Writable({ write: (_c, _e, cb) => cb() }), { signal }).catch((err: unknown) => {
        throw toDestinationError(err, final);
      });
      return { status: 'skipped', path: final, bytes: 0 };
    }
    const tmp = join(this.dir, tempName());
    try {
      const bytes = await this.#receive(source, tmp, signal);
      if (expectedBytes !== undefined && bytes !== expectedBytes) {
        throw new DestinationError(
          'IC_ERR_DESTINATION_WRITE_FAILED',
          `received ${bytes} of ${expectedBytes} bytes for ${final}; the partial file was removed and the item is retried`,
          {
            details: { bytes, expectedBytes },
          },
        );
      }
      const placed = await this.#place(tmp, name, bytes);
      await syncDir(this.dir);
      return placed;
    } catch (err) {
      throw toDestinationError(err, final);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async #receive(source: Readable, tmp: string, signal: AbortSignal): Promise<number> {
    const out = await this.#openTemp(tmp);
    await pipeline(source, out, { signal });
    return out.bytesWritten;
  }

  async #place(tmp: string, name: string, bytes: number): Promise<Placed> {
    if (this.conflict === 'Overwrite') {
      const path = join(this.dir, name);
      const existed = await exists(path);
      await rename(tmp, path);
      return { status: existed ? 'replaced' : 'written', path, bytes };
    }
    for (let n = 0; ; n++) {
      const path = join(this.dir, numberedName(name, n));
      if (await claim(tmp, path)) return { status: 'written', path, bytes };
      if (this.conflict === 'Skip') return { status: 'skipped', path, bytes: 0 };
      // The same item delivered again (e.g. after a crash between write and acknowledgement): never a copy.
      if (await sameContent(tmp, path, bytes)) return { status: 'skipped', path, bytes: 0 };
    }
  }
}
