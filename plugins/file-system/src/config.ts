import { isAbsolute } from 'node:path';
import { ConfigError } from '@integration-client/plugin-sdk';
import type { ConflictHandling } from './atomic-writer.js';
import { DEFAULT_FORMATS, parseFileNameFormat, type FormatPart } from './file-name-format.js';

/** The operations this plugin implements. */
export type FileOperation = keyof typeof DEFAULT_FORMATS;

/** A File System destination's config, as validated by config.schema.json. */
export interface FileSystemConfig {
  readonly destinationDirectory: string;
  readonly createDirectory: boolean;
  readonly downloadFormat: 'default';
  readonly fileNameConflictHandling: ConflictHandling;
  readonly fileNameFormat?: string;
  readonly fileNameFormats?: Partial<Record<FileOperation, string>>;
  readonly retentionCount?: number;
}

/** Parsed File Name Format of every operation. */
export type Formats = Readonly<Record<FileOperation, readonly FormatPart[]>>;

/** Checks what the schema cannot (absolute path on this OS, valid tokens) and parses every format. */
export function readFormatsFrom(config: FileSystemConfig): Formats {
  if (!isAbsolute(config.destinationDirectory)) {
    throw new ConfigError(
      `destinationDirectory ${JSON.stringify(config.destinationDirectory)} must be an absolute path on this machine`,
      {
        details: { errors: [{ path: '/destinationDirectory', message: 'must be an absolute path' }] },
      },
    );
  }
  const formats = {} as Record<FileOperation, readonly FormatPart[]>;
  for (const op of Object.keys(DEFAULT_FORMATS) as FileOperation[]) {
    const own = config.fileNameFormats?.[op];
    const field = own ? `fileNameFormats/${op}` : 'fileNameFormat';
    formats[op] = parseFileNameFormat(own ?? config.fileNameFormat ?? DEFAULT_FORMATS[op], field);
  }
  return formats;
}
