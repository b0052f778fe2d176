import { createAjv } from '@integration-client/plugin-sdk';
import {
  API,
  downloadBackup,
  downloadRecording,
  listSessions,
  SiteClient,
  testCredentials,
} from '@integration-client/core';
import { sessionSchema, type Session } from '@integration-client/schemas';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:http';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApplianceSimulator } from './simulator/index.js';
import { captureLogger, expectedSha256, FAST_RETRY, sha256, simulatorAndClient } from './site-helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});
async function setup(...args: Parameters<typeof simulatorAndClient>) {
  const s = await simulatorAndClient(...args);
  closers.push(s.close);
  return s;
}
async function all(client: SiteClient, params: Record<string, string | number>): Promise<Session[]> {
  const out: Session[] = [];
  for await (const it of client.sessions(params)) {
    if (!it.ok) throw it.error;
    out.push(it.model);
  }
  return out;
}
const lsids = (xs: readonly { lsid: string }[]): string[] => xs.map((s) => s.lsid).sort();
const everything = (sim: ApplianceSimulator) => ({
  [API.params.endTime]: sim.population.firstStart,
  [API.params.duration]: 0,
});

describe('site client against the simulator over HTTPS', () => {
  it('pulls every closed session once, as valid session models, closing the connection after each call', async () => {
    const { sim, client } = await setup({ sessions: 40 });
    const sessions = await all(client, everything(sim));
    expect(lsids(sessions)).toEqual(lsids(sim.closedSessions()));
    const validate = createAjv().compile(sessionSchema);
    for (const s of sessions) expect(validate(s), JSON.stringify(validate.errors)).toBe(true);
    expect(new Set(sessions.flatMap((s) => s.events.map((e) => e.type))).size).toBeGreaterThan(30);
    expect(sim.requests.every((r) => r.connection === 'close')).toBe(true);
    expect(sim.requests.filter((r) => r.path === API.tokenPath)).toHaveLength(1);
  });

  it.each(['rs', 'pra', 'none'] as const)(
    'reads the %s namespace and keeps it in the session XML',
    async (namespace) => {
      const { sim, client } = await setup({ sessions: 3, namespace });
      const items = [];
      for await (const it of client.sessions(everything(sim))) items.push(it);
      expect(items).toHaveLength(3);
      const ns = {
        rs: 'http://www.bomgar.com/namespaces/API/reporting',
        pra: 'http://www.beyondtrust.com/sra/namespaces/API/reporting',
        none: '',
      }[namespace];
      expect(items[0]!.ok && items[0]!.model.namespace).toBe(ns);
      expect(items[0]!.xml).toContain(ns ? `<session_list xmlns="${ns}">` : '<session_list>');
    },
  );

  it.each(['empty', 'error-en', 'error-fr'] as const)(
    'reads a %s "no data" answer as zero sessions',
    async (noData) => {
      const { sim, client } = await setup({ sessions: 3, noData });
      expect(await all(client, { [API.params.endTime]: sim.now + 10, [API.params.duration]: 0 })).toEqual([]);
      expect(await listSessions(client, { [API.params.endTime]: sim.now + 10, [API.params.duration]: 0 })).toEqual([]);
    },
  );

  it('selects by lsid, lsids, start window and end window, and lists summaries', async () => {
    const { sim, client } = await setup({ sessions: 20 });
    const [a, b] = [sim.session(3), sim.session(7)];
    expect((await all(client, { [API.params.lsid]: a.lsid })).map((s) => s.lsid)).toEqual([a.lsid]);
    expect((await all(client, { [API.params.lsids]: `${a.lsid},${b.lsid}` })).map((s) => s.lsid).sort()).toEqual(
      [a.lsid, b.lsid].sort(),
    );
    const byStart = await all(client, { [API.params.startTime]: a.start, [API.params.duration]: b.start - a.start });
    expect(byStart.map((s) => s.lseq)).toEqual([4, 5, 6, 7]);
    const summaries = await listSessions(client, everything(sim));
    expect(summaries).toHaveLength(20);
    expect(summaries.find((s) => s.lsid === sim.session(3).lsid)?.hasRecording).toBe(false);
    expect(summaries.find((s) => s.lsid === sim.session(1).lsid)).toMatchObject({
      hasRecording: true,
      externalKey: 'INC100001',
    });
  });

  it('selects by the *_date forms (days)', async () => {
    const { sim, client } = await setup({ sessions: 300, spacing: 600 });
    const day = new Date(sim.population.firstStart * 1000).toISOString().slice(0, 10);
    const byStartDate = await all(client, { [API.params.startDate]: day, [API.params.duration]: 1 });
    expect(byStartDate.length).toBe(144);
    const byEndDate = await all(client, { [API.params.endDate]: day, [API.params.duration]: 1 });
    expect(byEndDate.every((s) => s.endTime!.startsWith(day))).toBe(true);
  });

  it('waits out the appliance latency switch', async () => {
    const { sim, client } = await setup({ sessions: 2, faults: { latencyMs: 300 } });
    const t0 = Date.now();
    expect(await all(client, everything(sim))).toHaveLength(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
  });

  it('sees sessions in progress by start time and picks them up by end time once they close', async () => {
    const { sim, client } = await setup({ sessions: 10, spacing: 600 });
    const s5 = sim.session(5);
    sim.now = s5.start + 60;
    const started = await all(client, { [API.params.startTime]: sim.population.firstStart, [API.params.duration]: 0 });
    const open = started.find((s) => s.lsid === s5.lsid)!;
    expect(open.endTime).toBeUndefined();
    expect((await all(client, everything(sim))).map((s) => s.lsid)).not.toContain(s5.lsid);
    sim.now = s5.end + 1;
    const closed = (await all(client, everything(sim))).find((s) => s.lsid === s5.lsid)!;
    expect(closed.endTime).toBe(new Date(s5.end * 1000).toISOString());
    expect(closed.events.at(-1)!.type).toBe('Session End');
    expect(Math.abs(client.applianceNow() - sim.now * 1000)).toBeLessThan(5000);
  });

  it('logs when this host clock is over two minutes off the appliance clock: once, and again when it moves', async () => {
    const { sim, client, log } = await setup({ sessions: 3 });
    const warned = () =>
      log.lines.filter((l) => l.hostAheadSeconds !== undefined).map((l) => [l.hostAheadSeconds, l.msg] as const);
    const nowS = () => Math.floor(Date.now() / 1000);
    sim.now = nowS() - 30; // within the Date header's resolution and a network's delay: not a fault
    await all(client, everything(sim));
    expect(warned()).toEqual([]);
    sim.now = nowS() - 600; // this host ten minutes ahead (the seed's warning)
    await all(client, everything(sim));
    await all(client, everything(sim)); // the same difference: no second line
    sim.now = nowS() - 630; // moved by less than a minute: still none
    await all(client, everything(sim));
    expect(warned()).toHaveLength(1);
    const [ahead, msg] = warned()[0]!;
    expect(ahead).toBeGreaterThanOrEqual(600);
    expect(ahead).toBeLessThanOrEqual(602);
    expect(msg).toContain(`${String(ahead)} s ahead of the appliance's`);
    expect(msg).toContain('nothing is missed');
    sim.now = nowS() + 900; // now behind
    await all(client, everything(sim));
    expect(warned()).toHaveLength(2);
    expect(warned()[1]![1]).toMatch(/is (899|900|901) s behind the appliance's/);
  });
});

describe('site client faults', () => {
  it('retries 5xx and 429 (honouring Retry-After) and succeeds', async () => {
    const { sim, client, log } = await setup({ sessions: 5 });
    sim.faults.inject('5xx', 2);
    sim.faults.inject('429', 1);
    const t0 = Date.now();
    expect(await all(client, everything(sim))).toHaveLength(5);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(sim.requests.filter((r) => r.path === API.reportingPath).map((r) => r.status)).toEqual([503, 503, 429, 200]);
    expect(log.lines.filter((l) => l.msg === 'report failed; fetching it again')).toHaveLength(3);
  });

  it.each(['reset', 'truncate', 'malformed'] as const)(
    're-fetches a report whose body failed (%s) and yields each session once',
    async (fault) => {
      const { sim, client } = await setup({ sessions: 12 });
      sim.faults.inject(fault, 1, API.reports.supportSession);
      const sessions = await all(client, everything(sim));
      expect(lsids(sessions)).toEqual(lsids(sim.closedSessions()));
      expect(sim.requests.filter((r) => r.report === API.reports.supportSession)).toHaveLength(2);
    },
  );

  it('gives up after bounded attempts with a retryable code', async () => {
    const { sim, client } = await setup({ sessions: 2 });
    sim.faults.inject('5xx', 10);
    await expect(all(client, everything(sim))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_UNAVAILABLE',
      retryable: true,
      status: 503,
    });
    expect(sim.requests.filter((r) => r.path === API.reportingPath)).toHaveLength(4);
  });

  it('does not retry an <error> document on HTTP 200', async () => {
    const { sim, client } = await setup({ sessions: 2 });
    sim.faults.inject('error-doc', 1);
    await expect(all(client, everything(sim))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_API_ERROR',
      retryable: false,
    });
    expect(sim.requests.filter((r) => r.path === API.reportingPath)).toHaveLength(1);
  });

  it('refreshes an expired token once, mid-run', async () => {
    const { sim, client } = await setup({ sessions: 3 });
    await all(client, everything(sim));
    sim.faults.inject('token-expiry', 1);
    expect(await all(client, everything(sim))).toHaveLength(3);
    expect(sim.requests.filter((r) => r.path === API.tokenPath)).toHaveLength(2);
    expect(sim.requests.filter((r) => r.path === API.reportingPath).map((r) => r.status)).toEqual([200, 401, 200]);
  });

  it('honours a short token lifetime and a lowercase token type', async () => {
    const { sim, client } = await setup({ sessions: 1, tokenLifetime: 1, tokenType: 'bearer' });
    await all(client, everything(sim));
    await new Promise((r) => setTimeout(r, 1100));
    await all(client, everything(sim));
    expect(sim.requests.filter((r) => r.path === API.tokenPath)).toHaveLength(2);
    expect(sim.requests.filter((r) => r.status === 401)).toHaveLength(0);
  });

  it('fails with IC_ERR_SITE_AUTH_FAILED, not retried, once the secret is rotated', async () => {
    const { sim, client } = await setup({ sessions: 1 });
    await all(client, everything(sim));
    sim.rotateSecret();
    await expect(all(client, everything(sim))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_AUTH_FAILED',
      retryable: false,
    });
    expect(await testCredentials(client)).toMatchObject({ ok: false, problem: 'bad-secret' });
  });

  it('reports a missing permission as IC_ERR_SITE_FORBIDDEN, not retried', async () => {
    const { sim, client } = await setup({ sessions: 1, permissions: { reporting: false } });
    await expect(all(client, everything(sim))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_FORBIDDEN',
      retryable: false,
      status: 403,
    });
    expect(sim.requests.filter((r) => r.path === API.reportingPath)).toHaveLength(1);
    expect(await testCredentials(client)).toMatchObject({ ok: false, problem: 'no-permission' });
    expect((await sha256((await downloadBackup(client)).stream)).bytes).toBe(256 * 1024);
  });

  it('tells a disabled XML API apart from a missing permission', async () => {
    const { sim, client } = await setup({ sessions: 1, apiEnabled: false });
    await expect(all(client, everything(sim))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_FORBIDDEN',
      details: { endpoint: 'token' },
    });
    expect(await testCredentials(client)).toMatchObject({ ok: false, problem: 'api-disabled' });
  });

  it('refuses an untrusted certificate, and with insecure warns but connects', async () => {
    const { sim } = await setup({ sessions: 1 }, { site: { caFile: undefined } as never });
    const untrusted = await simulatorAndClient({ sessions: 1 }, { site: { caFile: undefined } as never });
    closers.push(untrusted.close);
    await expect(all(untrusted.client, everything(sim))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_TLS',
      retryable: false,
    });
    expect(await testCredentials(untrusted.client)).toMatchObject({ ok: false, problem: 'certificate' });
    const insecure = await simulatorAndClient(
      { sessions: 1 },
      { site: { caFile: undefined, insecure: true } as never },
    );
    closers.push(insecure.close);
    expect(await all(insecure.client, everything(insecure.sim))).toHaveLength(1);
    expect(
      insecure.log.lines.some((l) => l.level === 40 && String(l.msg).includes('TLS certificate checks are DISABLED')),
    ).toBe(true);
  });

  it('parses the site CA and the system roots once per site client, not again for every connection', async () => {
    // Every API call opens a connection (the API asks clients to close it); given as `ca`, ~150 PEM roots plus the
    // site's CA were parsed for each (20–40 ms of CPU per call). Counted at the native TLS context's addCACert.
    const proto = Object.getPrototypeOf(createSecureContext().context) as { addCACert: (...a: unknown[]) => unknown };
    const original = proto.addCACert;
    let parsed = 0;
    proto.addCACert = function (this: unknown, ...args: unknown[]) {
      parsed++;
      return original.apply(this, args);
    };
    try {
      const { sim, client } = await setup({ sessions: 3, recordingBytes: 1024 });
      const atCreate = parsed;
      expect(atCreate).toBeGreaterThan(rootCertificates.length); // the roots and the site's CA, once
      await all(client, everything(sim)); // a token call and a report call: two connections
      for (const s of sim.closedSessions().filter((x) => x.hasRecording))
        await pipeline((await downloadRecording(client, 'session', s.lsid)).stream, createWriteStream('/dev/null'));
      expect(sim.requests.length).toBeGreaterThanOrEqual(3);
      expect(parsed).toBe(atCreate);
    } finally {
      proto.addCACert = original;
    }
  });

  it('reports an unreachable site', async () => {
    const { sim, client } = await setup({ sessions: 1 });
    await sim.stop();
    await expect(all(client, everything(sim))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_UNREACHABLE',
      retryable: true,
    });
    expect(await testCredentials(client)).toMatchObject({ ok: false, problem: 'unreachable' });
  });

  it('says what is wrong with a port HTTP clients refuse (fetch said only "bad port")', async () => {
    const client = await SiteClient.create({
      site: { host: 'localhost:10080', clientId: 'a', clientSecret: 'b' },
      logger: captureLogger().logger,
      retry: FAST_RETRY,
    });
    closers.push(() => client.close());
    expect(await testCredentials(client)).toMatchObject({
      ok: false,
      problem: 'unreachable',
      message: expect.stringMatching(/^localhost:10080: the port is on the list of ports HTTP clients refuse/),
    });
  });

  it('says how to fix a CA file stored as a relative path (it is read from the working directory)', async () => {
    const site = { host: 'localhost:1', clientId: 'a', clientSecret: 'b' };
    const logger = captureLogger().logger;
    await expect(
      SiteClient.create({ site: { ...site, caFile: 'certs/no-such-ca.pem' }, logger }),
    ).rejects.toMatchObject({
      code: 'IC_ERR_SITE_TLS',
      message: expect.stringContaining(
        `(a relative path, read from the working directory ${process.cwd()}; store the absolute one: ic site edit <site> --ca-file <absolute path>)`,
      ),
    });
    await expect(SiteClient.create({ site: { ...site, caFile: '/no-such-ca.pem' }, logger })).rejects.toThrow(
      /cannot read the CA file \/no-such-ca\.pem: ENOENT[^(]*$/,
    );
  });

  it('says the credentials are good when they are', async () => {
    const { client } = await setup({ sessions: 1 });
    expect(await testCredentials(client)).toMatchObject({ ok: true });
  });

  it('limits its request rate per site', async () => {
    const { sim, client } = await setup({ sessions: 1 }, { site: { rateLimitPerSecond: 4 } as never });
    const t0 = Date.now();
    for (let i = 0; i < 8; i++) await listSessions(client, everything(sim));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });
});

describe('site client downloads', () => {
  it('streams every kind of recording and the backup with the right bytes', async () => {
    const { sim, client } = await setup({ sessions: 10, recordingBytes: 300_000, backupBytes: 123_456 });
    const s0 = sim.session(0);
    const rec = await downloadRecording(client, 'session', s0.lsid);
    expect(rec).toMatchObject({ byteLength: 300_000, contentType: 'video/x-flv' });
    expect(await sha256(rec.stream)).toEqual({ hash: expectedSha256(300_000, 0), bytes: 300_000 });
    expect((await sha256((await downloadRecording(client, 'command-shell', s0.lsid, 1)).stream)).hash).toBe(
      expectedSha256(300_000, 2),
    );
    expect((await sha256((await downloadRecording(client, 'show-my-screen', s0.lsid, 0)).stream)).hash).toBe(
      expectedSha256(300_000, 50),
    );
    const p0 = [...Array(1).keys()].map(() => sim.presentations).map((o) => o)[0]!;
    const presentationLsid = (await import('./simulator/index.js')).simSession(p0, 0).lsid;
    expect((await sha256((await downloadRecording(client, 'presentation', presentationLsid)).stream)).bytes).toBe(
      300_000,
    );
    const backup = await downloadBackup(client, 's3cret-backup');
    expect(await sha256(backup.stream)).toEqual({ hash: expectedSha256(123_456, 999), bytes: 123_456 });
    expect(sim.backupPasswords).toEqual(['s3cret-backup']);
  });

  it('detects an XML error instead of a recording before handing on any byte', async () => {
    const { sim, client } = await setup({ sessions: 10 });
    const err = await downloadRecording(client, 'session', sim.session(3).lsid).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'IC_ERR_SITE_API_ERROR',
      retryable: false,
      details: { text: 'This recording has expired and can no longer be viewed or downloaded.' },
    });
  });

  it('fails the stream of a truncated or reset download, so nothing partial is accepted', async () => {
    // 3 MiB: cut at half, after the first 1 MiB chunk was handed on (a cut before it is retried, see below)
    const { sim, client } = await setup({ sessions: 2, recordingBytes: 3 * 1024 * 1024 });
    sim.faults.inject('truncate', 1, API.reports.sessionRecording);
    const truncated = await downloadRecording(client, 'session', sim.session(0).lsid);
    await expect(sha256(truncated.stream)).rejects.toMatchObject({ retryable: true });
    sim.faults.inject('reset', 1, API.reports.sessionRecording);
    const reset = await downloadRecording(client, 'session', sim.session(0).lsid);
    await expect(sha256(reset.stream)).rejects.toMatchObject({ retryable: true });
  });

  it('hands on a body shorter than the sniffed prefix intact', async () => {
    const { sim, client } = await setup({ sessions: 2, recordingBytes: 100 });
    expect(await sha256((await downloadRecording(client, 'session', sim.session(0).lsid)).stream)).toEqual({
      hash: expectedSha256(100, 0),
      bytes: 100,
    });
  });

  it('survives a fast consumer of a large body the appliance closes the connection after (undici regression guard)', async () => {
    const { sim, client } = await setup({ sessions: 2, recordingBytes: 32 * 1024 * 1024 });
    for (let i = 0; i < 3; i++) {
      const d = await downloadRecording(client, 'session', sim.session(0).lsid);
      await pipeline(d.stream, createWriteStream('/dev/null'));
    }
  });

  it('retries a download that failed before its first byte', async () => {
    const { sim, client } = await setup({ sessions: 2 });
    sim.faults.inject('5xx', 1, API.reports.sessionRecording);
    expect((await sha256((await downloadRecording(client, 'session', sim.session(0).lsid)).stream)).bytes).toBe(
      64 * 1024,
    );
  });

  it('yields a session it cannot read once, also when the report had to be fetched again', async () => {
    // A stand-in appliance over plain HTTP: the first report body is cut after an unreadable <session> (no lsid)
    // and a good one; the second is whole. Items without an lsid are recognised by a digest of their XML.
    const session = (lsid: string | undefined, i: number) =>
      `<session${lsid ? ` lsid="${lsid}"` : ''}><session_type>support</session_type><lseq>${i}</lseq>` +
      `<start_time timestamp="1700000000"/><end_time timestamp="1700000600"/><duration>00:10:00</duration></session>`;
    const full = `<?xml version="1.0" encoding="UTF-8"?><session_list xmlns="http://www.bomgar.com/namespaces/API/reporting">${session(undefined, 1)}${session('good-1', 2)}${session('good-2', 3)}</session_list>`;
    let reports = 0;
    const server = createServer((req, res) => {
      req.resume();
      if (req.url === API.tokenPath) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 't', token_type: 'bearer', expires_in: 3600 }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/xml' });
      if (++reports === 1) {
        res.write(full.slice(0, full.indexOf('<session lsid="good-2"')));
        setTimeout(() => res.socket?.destroy(), 20);
      } else res.end(full);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const client = await SiteClient.create({
      site: { host: `127.0.0.1:${port}`, clientId: 'c', clientSecret: 's' },
      scheme: 'http',
      logger: captureLogger().logger,
      retry: FAST_RETRY,
    });
    closers.push(async () => {
      await client.close();
      await new Promise((r) => server.close(r));
    });
    const items = [];
    for await (const it of client.sessions({ [API.params.endTime]: 0, [API.params.duration]: 0 })) items.push(it);
    expect(reports).toBe(2);
    expect(items.map((i) => (i.ok ? i.lsid : `unreadable: ${i.error.code}`))).toEqual([
      'unreadable: IC_ERR_SITE_SESSION_INVALID',
      'good-1',
      'good-2',
    ]);
  });
});
