/**
 * Secrets at rest: AES-256-GCM with a random 96-bit IV per value. The key is 32 bytes from `IC_SECRET_KEY`
 * (base64) or from a key file in the data directory, created with mode 0600 on first use. A sealed value reads
 * `enc:v1:<iv>:<tag>:<ciphertext>` (base64 parts), so sealed and plain values can be told apart.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError, makeDirectory } from '@integration-client/plugin-sdk';

const PREFIX = 'enc:v1:';
export const SECRET_KEY_ENV = 'IC_SECRET_KEY';

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /**
   * A box whose key comes from IC_SECRET_KEY or the key file, created (0600) when missing — unless `create` is
   * false: a data directory that already holds settings had its secrets sealed with the missing key, and a new one
   * would only make them unreadable (and look like a working set-up until a run needs a secret).
   */
  static async open(
    keyFile: string,
    env: NodeJS.ProcessEnv = process.env,
    { create = true }: { create?: boolean } = {},
  ): Promise<SecretBox> {
    const fromEnv = env[SECRET_KEY_ENV];
    if (fromEnv) return new SecretBox(decodeKey(fromEnv, SECRET_KEY_ENV));
    const existing = await readFile(keyFile, 'utf8').catch((err: NodeJS.ErrnoException) =>
      err.code === 'ENOENT' ? undefined : Promise.reject(err),
    );
    if (existing !== undefined) {
      const mode = (await stat(keyFile)).mode & 0o777;
      if (mode & 0o077) await chmod(keyFile, 0o600);
      return new SecretBox(decodeKey(existing.trim(), keyFile));
    }
    if (!create)
      throw new ConfigError(
        `the secret key file ${keyFile} is missing, but this data directory holds settings whose secrets were encrypted with it: restore the file from a backup (mode 0600) or set ${SECRET_KEY_ENV}; a new key could not read them`,
      );
    const key = randomBytes(32);
    makeDirectory(dirname(keyFile), 0o700);
    await writeFile(keyFile, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return new SecretBox(key);
  }

  /** A box with a given key (tests, migrations). */
  static withKey(key: Buffer): SecretBox {
    if (key.length !== 32) throw new Error('a secret key is 32 bytes');
    return new SecretBox(key);
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `${PREFIX}${iv.toString('base64')}:${c.getAuthTag().toString('base64')}:${body.toString('base64')}`;
  }

  open(sealed: string): string {
    if (!isSealed(sealed)) throw new ConfigError('a stored secret is not encrypted; set it again');
    const [iv, tag, body] = sealed.slice(PREFIX.length).split(':') as [string, string, string];
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
      d.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([d.update(Buffer.from(body, 'base64')), d.final()]).toString('utf8');
    } catch {
      throw new ConfigError(
        `a stored secret cannot be decrypted with this key; use the key file it was saved with (or ${SECRET_KEY_ENV}), or set the secret again`,
      );
    }
  }
}

export const isSealed = (v: unknown): v is string => typeof v === 'string' && v.startsWith(PREFIX);

function decodeKey(text: string, where: string): Buffer {
  const key = Buffer.from(text, 'base64');
  if (key.length !== 32)
    throw new ConfigError(`${where} must hold a base64 32-byte key (e.g. \`openssl rand -base64 32\`)`);
  return key;
}

/** Seals the fields named in `secretFields` (top level) of a config object; leaves others as they are. */
export function sealFields<T extends Record<string, unknown>>(
  box: SecretBox,
  obj: T,
  secretFields: readonly string[],
): T {
  const out: Record<string, unknown> = { ...obj };
  for (const f of secretFields) if (typeof out[f] === 'string' && !isSealed(out[f])) out[f] = box.seal(out[f]);
  return out as T;
}

/** Opens sealed fields of a config object. */
export function openFields<T extends Record<string, unknown>>(
  box: SecretBox,
  obj: T,
  secretFields: readonly string[],
): T {
  const out: Record<string, unknown> = { ...obj };
  for (const f of secretFields) if (isSealed(out[f])) out[f] = box.open(out[f]);
  return out as T;
}
