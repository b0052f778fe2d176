import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  runConformance,
  sampleItem,
  sampleSession,
  sampleSessionXml,
  sampleStream,
} from '@integration-client/plugin-sdk/testing';
import type { Item, RecordingItem } from '@integration-client/plugin-sdk';
import { describe, expect, it } from 'vitest';
import { deliver, makeDestination, tempDir } from './test-helpers.js';

const recording = (
  lsid: string,
  bytes: number,
  extra: Partial<RecordingItem['meta']> = {},
  failAfter?: number,
): Item => ({
  operation: 'session-recording',
  site: { host: 'support.example.com' },
  meta: {
    siteHost: 'support.example.com',
    lsid,
    sessionType: 'support',
    extension: 'flv',
    byteLength: bytes,
    ...extra,
  },
  stream: sampleStream(bytes, failAfter === undefined ? {} : { failAfter }),
});

const backup = (takenAt: string): Item => ({
  operation: 'site-backup',
  site: { host: 'support.example.com' },
  meta: { siteHost: 'support.example.com', takenAt, extension: 'nsb', byteLength: 1000 },
  stream: sampleStream(1000),
});

const listing = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();

describe('File System plugin', () => {
  it('passes the SDK conformance suite', async () => {
    const dir = await tempDir();
    const report = await runConformance({
      packageDir: fileURLToPath(new URL('..', import.meta.url)),
      config: { destinationDirectory: join(dir, 'out') },
    });
    expect(report.codes).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('stores a session as its own XML, namespace and session_list root kept, named like the seed', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: dir });
    const session = sampleSession({ lsid: '1234' });
    const xml = sampleSessionXml(session);
    const ack = await deliver(dest, {
      operation: 'session-data',
      site: { host: 'support.example.com' },
      lsid: session.lsid,
      session,
      xml,
    });
    expect(ack).toEqual({
      status: 'written',
      location: join(dir, 'support.example.com-support-1234.xml'),
      bytes: Buffer.byteLength(xml),
    });
    const stored = await readFile(join(dir, 'support.example.com-support-1234.xml'), 'utf8');
    expect(stored).toBe(xml);
    expect(stored).toContain('<session_list xmlns="http://www.bomgar.com/namespaces/API/reporting">');
  });

  it('AppendNumber: x.flv, then x.1.flv, then x.2.flv', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: dir });
    for (let i = 0; i < 3; i++) await deliver(dest, recording('1234', 100 + i));
    expect(await listing(dir)).toEqual([
      'support.example.com-support-1234.1.flv',
      'support.example.com-support-1234.2.flv',
      'support.example.com-support-1234.flv',
    ]);
    expect((await stat(join(dir, 'support.example.com-support-1234.2.flv'))).size).toBe(102);
  });

  it('AppendNumber: the same bytes delivered again are acknowledged skipped, never stored as a numbered copy', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: dir });
    expect((await deliver(dest, recording('1234', 5000))).status).toBe('written');
    expect((await deliver(dest, recording('1234', 5001))).status).toBe('written');
    const again = await deliver(dest, recording('1234', 5001));
    expect(again).toMatchObject({ status: 'skipped', location: join(dir, 'support.example.com-support-1234.1.flv') });
    const xml = sampleSessionXml(sampleSession({ lsid: '77' }));
    const item = {
      operation: 'session-data' as const,
      site: { host: 'support.example.com' },
      lsid: '77',
      session: sampleSession({ lsid: '77' }),
      xml,
    };
    await deliver(dest, item);
    expect((await deliver(dest, item)).status).toBe('skipped');
    expect(await listing(dir)).toEqual([
      'support.example.com-support-1234.1.flv',
      'support.example.com-support-1234.flv',
      'support.example.com-support-77.xml',
    ]);
  });

  it('AppendNumber: two concurrent writers of one name each get their own complete file', async () => {
    const dir = await tempDir();
    const [a, b] = await Promise.all([
      makeDestination({ destinationDirectory: dir }),
      makeDestination({ destinationDirectory: dir }),
    ]);
    const acks = await Promise.all(
      Array.from({ length: 12 }, (_, i) => deliver(i % 2 ? a.dest : b.dest, recording('1234', 300_000 + i))),
    );
    const names = await listing(dir);
    expect(names).toHaveLength(12);
    expect(new Set(acks.map((x) => x.location)).size).toBe(12);
    const sizes = await Promise.all(acks.map(async (x) => (await stat(x.location!)).size));
    expect(sizes.sort()).toEqual(Array.from({ length: 12 }, (_, i) => 300_000 + i).sort());
    expect(names).toContain('support.example.com-support-1234.11.flv');
  });

  it('Skip: concurrent writers of one name store it exactly once; later ones are acknowledged skipped', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: dir, fileNameConflictHandling: 'Skip' });
    const acks = await Promise.all(Array.from({ length: 6 }, () => deliver(dest, recording('1234', 50_000))));
    expect(acks.filter((x) => x.status === 'written')).toHaveLength(1);
    expect(acks.filter((x) => x.status === 'skipped')).toHaveLength(5);
    const item = recording('1234', 70_000);
    expect(await deliver(dest, item)).toMatchObject({ status: 'skipped' });
    expect((item as RecordingItem).stream.readableEnded).toBe(true);
    expect(await listing(dir)).toEqual(['support.example.com-support-1234.flv']);
    expect((await stat(join(dir, 'support.example.com-support-1234.flv'))).size).toBe(50_000);
  });

  it('Overwrite: replaces the file atomically and says so', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: dir, fileNameConflictHandling: 'Overwrite' });
    expect(await deliver(dest, recording('1234', 10))).toMatchObject({ status: 'written', bytes: 10 });
    expect(await deliver(dest, recording('1234', 20))).toMatchObject({ status: 'replaced', bytes: 20 });
    expect(await listing(dir)).toEqual(['support.example.com-support-1234.flv']);
    expect((await stat(join(dir, 'support.example.com-support-1234.flv'))).size).toBe(20);
  });

  it('an interrupted stream leaves no file under a final name and no temporary file, with a retryable code', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: dir });
    await expect(deliver(dest, recording('1234', 1_000_000, {}, 400_000))).rejects.toMatchObject({
      code: 'IC_ERR_DESTINATION_WRITE_FAILED',
      retryable: true,
    });
    expect(await listing(dir)).toEqual([]);
  });

  it('a body shorter than its announced length is refused and removed', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: dir });
    const item = {
      ...recording('1234', 500),
      meta: { siteHost: 'support.example.com', lsid: '1234', extension: 'flv', byteLength: 600 },
    } as Item;
    await expect(deliver(dest, item)).rejects.toMatchObject({
      code: 'IC_ERR_DESTINATION_WRITE_FAILED',
      details: { bytes: 500, expectedBytes: 600 },
    });
    expect(await listing(dir)).toEqual([]);
  });

  it('removes temporary files a crashed writer left, and only those', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, '.ic-tmp-999999999-1700000000000-abcdef.part'), 'partial');
    await writeFile(join(dir, `.ic-tmp-${process.ppid}-1-abcdef.part`), 'a live process, recent');
    const old = join(dir, `.ic-tmp-${process.ppid}-2-abcdef.part`);
    await writeFile(old, 'a live process, untouched for two hours');
    await utimes(old, new Date(Date.now() - 7_200_000), new Date(Date.now() - 7_200_000));
    await writeFile(join(dir, 'user-file.part'), 'not ours');
    const { dest, ctx } = await makeDestination({ destinationDirectory: dir });
    const check = await dest.check();
    expect(check.ok).toBe(true);
    expect(check.steps.map((x) => x.name)).toEqual(['directory', 'writable', 'free space']);
    expect(check.steps[2]!.message).toMatch(/^\d+\.\d GiB free of \d+\.\d GiB/);
    expect(await listing(dir)).toEqual([`.ic-tmp-${process.ppid}-1-abcdef.part`, 'user-file.part']);
    expect(ctx.logs.some((l) => l.msg === 'removed temporary files left by an interrupted write')).toBe(true);
  });

  it('keeps hostile LSIDs and external keys inside the directory', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({
      destinationDirectory: join(dir, 'out'),
      fileNameFormat: '%EXTERNAL_KEY%-%LSID%.%EXTENSION%',
    });
    const session = sampleSession({ lsid: '../../../../tmp/evil', externalKey: '..\\..\\CON\u0000\nx' });
    const ack = await deliver(dest, {
      operation: 'session-data',
      site: { host: 'h' },
      lsid: session.lsid,
      session,
      xml: sampleSessionXml(session),
    });
    expect(ack.location).toBe(join(dir, 'out', '.._.._CON__x-.._.._.._.._tmp_evil.xml'));
    expect(await listing(join(dir, 'out'))).toEqual(['.._.._CON__x-.._.._.._.._tmp_evil.xml']);
    const reserved = sampleSession({ lsid: 'x', externalKey: 'nul' });
    const { dest: d2 } = await makeDestination({
      destinationDirectory: join(dir, 'out'),
      fileNameFormat: '%EXTERNAL_KEY%.%EXTENSION%',
    });
    expect(
      (await deliver(d2, { operation: 'session-data', site: { host: 'h' }, lsid: 'x', session: reserved, xml: '<x/>' }))
        .location,
    ).toBe(join(dir, 'out', '_nul.xml'));
  });

  it('names backups by site and time, and Retention Count keeps that many prior backups it wrote', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: dir, retentionCount: 2 });
    await writeFile(join(dir, 'support.example.com-backup-20000101T000000Z.nsb'), 'a backup this plugin did not write');
    for (let day = 1; day <= 5; day++) await deliver(dest, backup(`2024-12-0${day}T12:00:00Z`));
    expect(await listing(dir)).toEqual([
      'support.example.com-backup-20000101T000000Z.nsb',
      'support.example.com-backup-20241203T120000Z.nsb',
      'support.example.com-backup-20241204T120000Z.nsb',
      'support.example.com-backup-20241205T120000Z.nsb',
    ]);
  });

  it('Retention leaves a backup that changed since it was written', async () => {
    const dir = await tempDir();
    const { dest, ctx } = await makeDestination({ destinationDirectory: dir, retentionCount: 0 });
    const first = await deliver(dest, backup('2024-12-01T12:00:00Z'));
    await writeFile(first.location!, 'edited by a person');
    await deliver(dest, backup('2024-12-02T12:00:00Z'));
    expect(await listing(dir)).toHaveLength(2);
    expect(ctx.logs.some((l) => l.level === 'warn' && l.msg?.includes('retention leaves it'))).toBe(true);
    await deliver(dest, backup('2024-12-03T12:00:00Z'));
    expect(await listing(dir)).toEqual([
      'support.example.com-backup-20241201T120000Z.nsb',
      'support.example.com-backup-20241203T120000Z.nsb',
    ]);
  });

  it('creates a missing directory, or refuses with a clear code when not allowed', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: join(dir, 'a', 'b') });
    await deliver(dest, sampleItem('session-data').item);
    expect(await listing(join(dir, 'a', 'b'))).toHaveLength(1);
    const { dest: strict } = await makeDestination({
      destinationDirectory: join(dir, 'unmounted'),
      createDirectory: false,
    });
    await expect(deliver(strict, sampleItem('session-data').item)).rejects.toMatchObject({
      code: 'IC_ERR_DESTINATION_UNAVAILABLE',
      message: expect.stringContaining('does not exist'),
    });
    const check = await strict.check();
    expect(check.ok).toBe(false);
    expect(check.steps[0]).toMatchObject({ name: 'directory', ok: false });
    await mkdir(join(dir, 'unmounted'));
    expect((await strict.check()).ok).toBe(true);
  });

  it('re-creates a directory that vanished after the first write, or reports it unavailable', async () => {
    const dir = await tempDir();
    const { dest } = await makeDestination({ destinationDirectory: join(dir, 'out') });
    await deliver(dest, recording('1', 10));
    await rm(join(dir, 'out'), { recursive: true });
    expect(await deliver(dest, recording('2', 10))).toMatchObject({ status: 'written' });
    await mkdir(join(dir, 'share'));
    const { dest: strict } = await makeDestination({
      destinationDirectory: join(dir, 'share'),
      createDirectory: false,
    });
    await deliver(strict, recording('1', 10));
    await rm(join(dir, 'share'), { recursive: true });
    await expect(deliver(strict, recording('2', 10))).rejects.toMatchObject({
      code: 'IC_ERR_DESTINATION_UNAVAILABLE',
      retryable: true,
    });
  });

  it('refuses a relative directory and a bad token when created', async () => {
    await expect(makeDestination({ destinationDirectory: 'relative/dir' })).rejects.toMatchObject({
      code: 'IC_ERR_CONFIG_INVALID',
    });
    await expect(makeDestination({ destinationDirectory: '/tmp/x', fileNameFormat: '%lsid%' })).rejects.toMatchObject({
      code: 'IC_ERR_CONFIG_INVALID',
    });
    await expect(
      makeDestination({ destinationDirectory: '/tmp/x', fileNameConflictHandling: 'Rename' }),
    ).rejects.toMatchObject({ code: 'IC_ERR_CONFIG_INVALID' });
  });

  it('refuses formats that give two items one name under Skip or Overwrite (one would be lost); warns under AppendNumber', async () => {
    const dir = await tempDir();
    const cases: [Record<string, unknown>, string | undefined][] = [
      [{}, undefined], // the defaults tell every item apart
      [{ fileNameFormat: '%LSID%.%EXTENSION%' }, `session 1's recording and session 1's command-shell recording 1`],
      [{ fileNameFormat: '%LSID%-%INSTANCE%' }, `session 1's XML and session 1's recording`],
      [
        {
          fileNameFormat: '%EXTERNAL_KEY%%INSTANCE%.%EXTENSION%',
          fileNameFormats: { 'show-my-screen-recording': '%EXTERNAL_KEY%-sms%INSTANCE%.%EXTENSION%' },
        },
        `session 1's XML and session 2's XML`, // external keys need not be unique
      ],
      [
        {
          fileNameFormat: '%LSEQ%%INSTANCE%.%EXTENSION%',
          fileNameFormats: { 'show-my-screen-recording': '%LSEQ%-sms%INSTANCE%.%EXTENSION%' },
        },
        `session 1's XML and a presentation's XML`, // presentations are numbered apart from sessions
      ],
      [
        {
          fileNameFormat: '%LSID%%INSTANCE%.%EXTENSION%',
          fileNameFormats: {
            'show-my-screen-recording': '%LSID%-sms%INSTANCE%.%EXTENSION%',
            'site-backup': 'backup.nsb',
          },
        },
        'the backup of day 1 and the backup of day 2',
      ],
      [
        {
          fileNameFormat: '%LSID%%INSTANCE%.%EXTENSION%',
          fileNameFormats: { 'show-my-screen-recording': '%LSID%-sms%INSTANCE%.%EXTENSION%' },
        },
        undefined,
      ],
    ];
    for (const [formats, collision] of cases) {
      for (const handling of ['Skip', 'Overwrite'] as const) {
        const made = makeDestination({ destinationDirectory: dir, fileNameConflictHandling: handling, ...formats });
        if (collision === undefined) await (await made).dest.close();
        else
          await expect(made).rejects.toMatchObject({
            code: 'IC_ERR_CONFIG_INVALID',
            message: expect.stringContaining(`File Name Format: ${collision} would both be named`),
          });
      }
      const { ctx } = await makeDestination({ destinationDirectory: dir, ...formats }); // AppendNumber: both kept
      expect(ctx.logs.filter((l) => l.level === 'warn').map((l) => l.obj)).toEqual(
        collision === undefined ? [] : [{ collision: expect.stringContaining(collision) }],
      );
    }
    await expect(
      makeDestination({
        destinationDirectory: dir,
        fileNameConflictHandling: 'Skip',
        fileNameFormat: '%LSID%-%INSTANCE%',
      }),
    ).rejects.toThrow(
      /with File Name Conflict Handling Skip one of them would be skipped and lost; add the replacement value/,
    );
  });
});
