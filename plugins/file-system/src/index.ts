/**
 * The File System destination: session and presentation data as `.xml`, recordings as video files, site backups
 * as `.nsb`, in one directory, named by the File Name Format, written atomically (see atomic-writer.ts).
 */
import { rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  checkResult,
  ConfigError,
  defineDestination,
  type CallOptions,
  type CheckStep,
  type Destination,
  type Item,
  type PluginContext,
  makeDirectory,
} from '@integration-client/plugin-sdk';
import { AtomicWriter, missingDirectory, type Placed } from './atomic-writer.js';
import { BackupRetention } from './backup-retention.js';
import { readFormatsFrom, type FileOperation, type FileSystemConfig, type Formats } from './config.js';
import { renderFileName } from './file-name-format.js';
import { toDestinationError } from './fs-errors.js';
import { tokenValues } from './item-names.js';
import { nameCollision } from './name-collisions.js';
import { safeFileName } from './safe-name.js';
import { cleanStaleTemps, tempName } from './temp-files.js';

export type { FileSystemConfig };
export { numberedName } from './atomic-writer.js';
export { parseFileNameFormat, DEFAULT_FORMATS, TOKENS } from './file-name-format.js';
export { safeFileName, safeValue } from './safe-name.js';

class FileSystemDestination implements Destination {
  readonly #writer: AtomicWriter;
  readonly #retention: BackupRetention;
  #ready: Promise<void> | undefined;

  constructor(
    private readonly ctx: PluginContext<FileSystemConfig>,
    private readonly formats: Formats,
  ) {
    const c = ctx.config;
    this.#writer = new AtomicWriter(c.destinationDirectory, c.fileNameConflictHandling, c.createDirectory);
    this.#retention = new BackupRetention(ctx.dataDir, c.retentionCount, ctx.logger);
  }

  readonly handlers = {
    'session-data': (item: Item, o: CallOptions) => this.#store(item, o),
    'presentation-data': (item: Item, o: CallOptions) => this.#store(item, o),
    'session-recording': (item: Item, o: CallOptions) => this.#store(item, o),
    'command-shell-recording': (item: Item, o: CallOptions) => this.#store(item, o),
    'show-my-screen-recording': (item: Item, o: CallOptions) => this.#store(item, o),
    'presentation-recording': (item: Item, o: CallOptions) => this.#store(item, o),
    'site-backup': (item: Item, o: CallOptions) => this.#store(item, o),
  };

  /** Makes sure the directory exists (or says why not) and removes temporary files a crash left. Once. */
  ready(): Promise<void> {
    this.#ready ??= this.#prepare().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async #prepare(): Promise<void> {
    const dir = this.ctx.config.destinationDirectory;
    if (this.ctx.config.createDirectory)
      try {
        makeDirectory(dir);
      } catch (err) {
        throw toDestinationError(err, dir);
      }
    else {
      const s = await stat(dir).catch(() => undefined);
      if (!s?.isDirectory()) throw missingDirectory(dir);
    }
    const removed = await cleanStaleTemps(dir);
    if (removed.length) this.ctx.logger.warn({ dir, removed }, 'removed temporary files left by an interrupted write');
  }

  async #store(item: Item, { signal }: CallOptions) {
    await this.ready();
    const op = item.operation as FileOperation;
    const name = safeFileName(renderFileName(this.formats[op], tokenValues(item)));
    let placed: Placed;
    if ('stream' in item) placed = await this.#writer.write(name, item.stream, item.meta.byteLength, signal);
    else {
      const bytes = Buffer.from(item.xml, 'utf8');
      placed = await this.#writer.write(name, Readable.from([bytes]), bytes.length, signal);
    }
    this.ctx.logger.debug({ op, path: placed.path, status: placed.status, bytes: placed.bytes }, 'item stored');
    if (item.operation === 'site-backup' && placed.status !== 'skipped')
      await this.#retention.landed(item.meta.siteHost, placed.path);
    return { status: placed.status, location: placed.path, bytes: placed.bytes };
  }

  async check() {
    const dir = this.ctx.config.destinationDirectory;
    const steps: CheckStep[] = [];
    try {
      await this.ready();
      steps.push({ name: 'directory', ok: true, message: `${dir} exists` });
      const probe = join(dir, tempName());
      await writeFile(probe, 'integration-client write probe\n', { flag: 'wx' });
      await rm(probe);
      steps.push({ name: 'writable', ok: true, message: `a probe file was written to and removed from ${dir}` });
    } catch (err) {
      steps.push({
        name: steps.length ? 'writable' : 'directory',
        ok: false,
        message: toDestinationError(err, dir).message,
      });
      return checkResult(steps);
    }
    // The seed asks for "storage space sufficient to retain all desired recordings": say what there is (information
    // only; a file system that cannot say is not a failure).
    const fs = await statfs(dir).catch(() => undefined);
    if (fs) {
      const free = fs.bavail * fs.bsize;
      steps.push({
        name: 'free space',
        ok: true,
        message: `${gib(free)} free of ${gib(fs.blocks * fs.bsize)}${free < LOW_SPACE_BYTES ? ': little for recordings (a full disk stops each transfer until there is room)' : ''}`,
      });
    }
    return checkResult(steps);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Under this much free space the check says it is little. */
const LOW_SPACE_BYTES = 1024 ** 3;
const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

export default defineDestination<FileSystemConfig>({
  id: 'file-system',
  create(ctx) {
    const formats = readFormatsFrom(ctx.config);
    // Two items with one name: AppendNumber keeps both (x.flv, x.1.flv); Skip and Overwrite would lose one.
    const collision = nameCollision(formats);
    const handling = ctx.config.fileNameConflictHandling;
    if (collision && handling !== 'AppendNumber')
      throw new ConfigError(
        `File Name Format: ${collision}, and with File Name Conflict Handling ${handling} one of them would be ${handling === 'Skip' ? 'skipped' : 'overwritten'} and lost; add the replacement value that tells them apart (%LSID%, %EXTENSION%, %INSTANCE%, or a text of its own in fileNameFormats for that data type), or use AppendNumber`,
        { details: { errors: [{ path: '/fileNameFormat', message: collision }] } },
      );
    if (collision)
      ctx.logger.warn(
        { collision },
        'File Name Format gives different items the same name; AppendNumber keeps both under numbered names',
      );
    return new FileSystemDestination(ctx, formats);
  },
});
