import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSealed, openFields, sealFields, SecretBox } from './secret-box.js';

describe('SecretBox', () => {
  it('creates a 0600 key file once, seals with a fresh IV, and opens what it sealed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ic-secret-'));
    const file = join(dir, 'secret.key');
    const box = await SecretBox.open(file, {});
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const a = box.seal('s3cret');
    expect(a).toMatch(/^enc:v1:/);
    expect(a).not.toContain('s3cret');
    expect(box.seal('s3cret')).not.toBe(a);
    const again = await SecretBox.open(file, {});
    expect(again.open(a)).toBe('s3cret');
    expect(await readFile(file, 'utf8')).toMatch(/^[A-Za-z0-9+/=]+\n$/);
  });

  it('takes the key from IC_SECRET_KEY, refuses a bad key, and says so when a value was sealed with another key', async () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const box = await SecretBox.open('/nonexistent/never-created', { IC_SECRET_KEY: key });
    const sealed = box.seal('x');
    await expect(SecretBox.open('/nonexistent/x', { IC_SECRET_KEY: 'short' })).rejects.toThrow(
      expect.objectContaining({ code: 'IC_ERR_CONFIG_INVALID' }),
    );
    const other = SecretBox.withKey(Buffer.alloc(32, 8));
    expect(() => other.open(sealed)).toThrow(/cannot be decrypted with this key/);
    const tampered = sealed.slice(0, -4) + (sealed.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect(() => box.open(tampered)).toThrow(expect.objectContaining({ code: 'IC_ERR_CONFIG_INVALID' }));
  });

  it('seals and opens only the named fields', async () => {
    const box = SecretBox.withKey(Buffer.alloc(32, 1));
    const sealed = sealFields(box, { connectionString: 'postgres://u:pw@h/db', storeSystemInformation: true }, [
      'connectionString',
    ]);
    expect(isSealed(sealed.connectionString)).toBe(true);
    expect(sealed.storeSystemInformation).toBe(true);
    expect(sealFields(box, sealed, ['connectionString']).connectionString).toBe(sealed.connectionString);
    expect(openFields(box, sealed, ['connectionString']).connectionString).toBe('postgres://u:pw@h/db');
    const dir = await mkdtemp(join(tmpdir(), 'ic-secret-'));
    await writeFile(join(dir, 'k'), Buffer.alloc(32, 2).toString('base64'), { mode: 0o644 });
    await SecretBox.open(join(dir, 'k'), {});
    expect((await stat(join(dir, 'k'))).mode & 0o777).toBe(0o600);
  });
});
