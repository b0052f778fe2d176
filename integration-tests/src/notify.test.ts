/** Notifications through a real SMTP server (smtp-server on loopback): grouping, `ic notify`, errors → mails. */
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Notifier } from '@integration-client/core';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIc, addFilesDestination } from './ic-helpers.js';
import { ApplianceSimulator } from './simulator/index.js';

interface Mail {
  from: string;
  to: string[];
  subject: string;
  body: string;
}
const mails: Mail[] = [];
let smtp: SMTPServer;
let port: number;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onAuth: (auth, _s, cb) => cb(null, { user: auth.username }),
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString('utf8')));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: /^Subject: (.*)$/m.exec(raw)?.[1] ?? '',
          body: raw.replace(/=\r\n/g, ''), // undo quoted-printable soft line breaks
        });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  port = (smtp.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((r) => smtp.close(() => r()));
});

const settings = () => ({ smtpHost: '127.0.0.1', smtpPort: port, from: 'ic@example.com', to: ['ops@example.com'] });
const waitFor = async (pred: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  expect(pred()).toBe(true);
};

describe('notifications', () => {
  it('mails the first error of a kind at once and the rest of the window as one summary', async () => {
    const before = mails.length;
    const n = new Notifier({ ...settings(), groupWindowMinutes: 60 });
    n.notify({ kind: 'IC_ERR_SITE_UNREACHABLE main', subject: 'site main unreachable', text: 'down' });
    for (let i = 0; i < 5; i++)
      n.notify({ kind: 'IC_ERR_SITE_UNREACHABLE main', subject: 'site main unreachable', text: `down ${i}` });
    n.notify({ kind: 'IC_ERR_DESTINATION_UNAVAILABLE db', subject: 'db down', text: 'db' });
    await waitFor(() => mails.length >= before + 2);
    await n.flush();
    n.close();
    const got = mails.slice(before).map((m) => m.subject);
    expect(got).toHaveLength(3);
    expect(got).toEqual(
      expect.arrayContaining([
        '[Integration Client] site main unreachable',
        '[Integration Client] db down',
        '[Integration Client] 5 more: site main unreachable',
      ]),
    );
    expect(mails.at(-1)!.to).toEqual(['ops@example.com']);
  });

  it('ic notify set/show/test through the built binary; errors of a run become mails, with the password-reset hint', async () => {
    const home = await mkdtemp(join(tmpdir(), 'ic-notify-'));
    const ic = (...args: string[]) => runIc(home, args);
    await ic('init');
    expect((await ic('notify', 'test')).stderr).toMatch(/not set up; run `ic notify set`/);
    const bad = await ic(
      'notify',
      'set',
      '--smtp-host',
      '127.0.0.1',
      '--from',
      'not-an-address',
      '--to',
      'ops@example.com',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/\/notification\/from: must match format "email"/);
    const set = await ic(
      'notify',
      'set',
      '--smtp-host',
      '127.0.0.1',
      '--smtp-port',
      String(port),
      '--username',
      'ic',
      '--password',
      'smtp-s3cret',
      '--from',
      'ic@example.com',
      '--to',
      'ops@example.com',
      '--to',
      'dba@example.com',
    );
    expect(set.code).toBe(0);
    const shown = await ic('notify', 'show', '--json');
    expect(JSON.parse(shown.stdout)).toMatchObject({
      password: '********',
      to: ['ops@example.com', 'dba@example.com'],
      groupWindowMinutes: 60, // the schema's default, in effect
    });
    const readable = (await ic('notify', 'show')).stdout;
    expect(readable).toMatch(/^smtpPort +\d+$/m); // given
    expect(readable).toMatch(/^groupWindowMinutes +60 {2}\(default\)$/m);
    expect(readable).not.toContain('smtp-s3cret');
    expect((await ic('notify', 'set', '--disable')).stdout).toMatch(
      /notifications disabled \(on again: `ic notify set`\)/,
    );
    expect(JSON.parse((await ic('notify', 'show', '--json')).stdout)).toMatchObject({ enabled: false });
    expect((await ic('notify', 'set')).code).toBe(0);
    const before = mails.length;
    const test = await ic('notify', 'test');
    expect(test.stdout).toMatch(/ok: test mail sent to ops@example.com, dba@example.com/);
    expect(mails.slice(before).map((m) => m.subject)).toEqual(['[Integration Client] test mail']);

    const sim = new ApplianceSimulator({ sessions: 3 });
    const a = await sim.start();
    try {
      await ic(
        'site',
        'add',
        'main',
        '--host',
        a.host,
        '--client-id',
        a.clientId,
        '--client-secret',
        'reset-long-ago',
        '--ca-file',
        ApplianceSimulator.caFile,
        '--no-test',
      );
      await addFilesDestination(home, join(home, 'files'));
      await ic('schedule', 'add', 's', '--every', '1h', '--transfer', 'main:files:session-data');
      const n = mails.length;
      const run = await ic('schedule', 'run', 's');
      expect(run.code).toBe(1);
      await waitFor(() => mails.length > n);
      const mail = mails.slice(n).find((m) => m.subject.includes('IC_ERR_SITE_AUTH_FAILED'));
      expect(mail?.body).toMatch(/password or client secret was reset/);
      expect(mails.slice(n).every((m) => !m.body.includes('smtp-s3cret'))).toBe(true);
    } finally {
      await sim.stop();
    }
  }, 60_000);
});
