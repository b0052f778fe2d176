/** Notifications through a real SMTP server (smtp-server on loopback): grouping, `ic notify`, errors → mails. */
import { mkdtemp } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
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

/** An SMTP server that keeps what it receives in `mails`. */
const smtpServer = () =>
  new SMTPServer({
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

beforeAll(async () => {
  smtp = smtpServer();
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

  it("a run's summary is left out when its cause was mailed in the window, and mailed when its problems were only warnings", async () => {
    const before = mails.length;
    const n = new Notifier({ ...settings(), groupWindowMinutes: 60 });
    n.notify({ kind: 'IC_ERR_SITE_UNREACHABLE main->files', subject: 'appliance unreachable', text: 'down' });
    n.notify({
      kind: 'IC_ERR_SITE_UNREACHABLE m',
      subject: 'run m failed',
      text: 'down',
      covers: 'IC_ERR_SITE_UNREACHABLE',
    });
    n.notify({
      kind: 'IC_ERR_DESTINATION_WRITE_FAILED n',
      subject: 'run n partly failed',
      text: 'retried items',
      covers: 'IC_ERR_DESTINATION_WRITE_FAILED',
    });
    await waitFor(() => mails.length >= before + 2);
    await n.flush();
    n.close();
    expect(mails.slice(before).map((m) => m.subject)).toEqual(
      expect.arrayContaining([
        '[Integration Client] appliance unreachable',
        '[Integration Client] run n partly failed',
      ]),
    );
    expect(mails.slice(before)).toHaveLength(2);
  });

  it('a mail the SMTP server does not take is tried again and marked as sent late; one given up is said in the next', async () => {
    // A port nothing listens on yet.
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const latePort = (free.address() as AddressInfo).port;
    await new Promise((r) => free.close(r));
    const tries: (number | undefined)[] = [];
    const n = new Notifier(
      { ...settings(), smtpPort: latePort },
      (_err, retryInMs) => tries.push(retryInMs),
      undefined,
      [300, 300, 300],
    );
    n.notify({ kind: 'IC_ERR_SITE_UNREACHABLE main', subject: 'appliance down at night', text: 'down' });
    await waitFor(() => tries.length >= 1);
    expect(tries[0]).toBe(300);
    expect(n.waiting).toBe(1);
    const late = smtpServer();
    await new Promise<void>((r) => late.listen(latePort, '127.0.0.1', r));
    await waitFor(() => mails.some((m) => m.subject === '[Integration Client] appliance down at night'));
    const sent = mails.find((m) => m.subject === '[Integration Client] appliance down at night')!;
    expect(sent.body).toMatch(/Sent late: the SMTP server did not take it at \S+; try [2-4]\./);
    expect(n.waiting).toBe(0);
    n.close();
    await new Promise<void>((r) => late.close(() => r()));

    // Given up after its last try: the next mail that goes says so. At stop (flush), a waiting mail gets a last try.
    const given: (number | undefined)[] = [];
    const m = new Notifier(
      { ...settings(), smtpPort: latePort },
      (_err, retryInMs) => given.push(retryInMs),
      undefined,
      [50],
    );
    m.notify({ kind: 'A', subject: 'lost one', text: 'a' });
    await waitFor(() => given.length >= 2);
    expect(given).toEqual([50, undefined]);
    expect(m.waiting).toBe(0);
    m.notify({ kind: 'B', subject: 'waits for the stop', text: 'b' });
    await waitFor(() => given.length >= 3);
    expect(m.waiting).toBe(1);
    const back = smtpServer();
    await new Promise<void>((r) => back.listen(latePort, '127.0.0.1', r));
    await m.flush();
    m.close();
    await new Promise<void>((r) => back.close(() => r()));
    const last = mails.find((x) => x.subject === '[Integration Client] waits for the stop')!;
    expect(last.body).toMatch(/1 earlier notification mail\(s\) could not be sent at all; see the log/);
    expect(mails.some((x) => x.subject.includes('lost one'))).toBe(false);
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
