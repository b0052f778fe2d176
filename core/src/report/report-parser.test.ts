import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseReport, type ParsedItem } from './report-parser.js';
import type { Session } from '@integration-client/schemas';

const RS = 'http://www.bomgar.com/namespaces/API/reporting';
const PRA = 'http://www.beyondtrust.com/sra/namespaces/API/reporting';

const SESSION = `<session lsid="c69a8e10bea9428f816cfababe9815fe">
    <session_type>support</session_type>
    <lseq>8</lseq>
    <start_time timestamp="1733239565">2024-12-03T15:26:05+00:00</start_time>
    <end_time timestamp="1733240467">2024-12-03T15:41:07+00:00</end_time>
    <duration>00:15:02</duration>
    <public_site id="1">Default</public_site>
    <external_key></external_key>
    <custom_attributes><custom_attribute display_name="Ticket" code_name="ticket_id">12345</custom_attribute></custom_attributes>
    <session_chat_download_url>https://h/session_download?lsid=l%3Dx&amp;dl_action=chat</session_chat_download_url>
    <command_shell_recordings><command_shell_recording instance="0"><download_url>u0</download_url></command_shell_recording><command_shell_recording instance="1"><download_url>u1</download_url></command_shell_recording></command_shell_recordings>
    <file_transfer_count>2</file_transfer_count>
    <jump_group type="shared" id="1">Helpdesk</jump_group>
    <primary_customer gsnumber="22">Jane Customer</primary_customer>
    <primary_rep gsnumber="21" id="1">Admin</primary_rep>
    <customer_list><customer gsnumber="22"><username>jdoe</username><public_ip>4.231.237.19:61606</public_ip><private_ip>10.0.0.4</private_ip>
      <hostname>PC-042</hostname><os>Windows 11 Pro</os><primary_cust>1</primary_cust>
      <info><name>Jane</name><company>Acme</company><company_code>AC1</company_code><issue>3</issue><details>Printer broken</details><favourite_colour>blue</favourite_colour></info></customer></customer_list>
    <rep_list><representative gsnumber="21" id="1"><username>admin</username><display_name>Admin</display_name>
      <public_ip>[2a01:e34::1]:56722</public_ip><private_ip>Unknown</private_ip><os>Unknown</os><session_owner>1</session_owner><primary_rep>1</primary_rep><seconds_involved>901</seconds_involved><badge>gold</badge></representative></rep_list>
    <session_details>
      <event timestamp="1733239565" event_type="Session Start" ></event>
      <event timestamp="1733239565" event_type="Conference Owner Changed" >
        <performed_by type="representative" gsnumber="21">Admin</performed_by>
        <destination type="system" gsnumber="0">Pre-start Conference</destination>
        <data><value name="owner" value="Pre-start Conference" /></data>
      </event>
      <event timestamp="1733239700" event_type="Chat Message"><performed_by type="representative" gsnumber="21">Admin</performed_by><body>Hello &lt;b&gt; &amp; bye</body></event>
      <event timestamp="1733239710" event_type="Session Note Added"><encoded_body>bm90ZQE=</encoded_body></event>
      <event timestamp="1733239800" event_type="File Upload"><filename>fix.reg</filename><filesize>1024</filesize></event>
      <event timestamp="1733239600" event_type="System Information Retrieved"><system_information><category name="General">
        <description><field name="os">Operating System</field></description><data><row><field name="os">Windows 11</field></row></data></category></system_information></event>
      <event timestamp="1733239900" event_type="Teleport Started"><portal>7</portal></event>
    </session_details>
    <cust_survey_list><cust_exit_survey gsnumber="22"><value name="rating" value="5"/></cust_exit_survey></cust_survey_list>
    <rep_join_time>2024</rep_join_time>
  </session>`;

function doc(ns: string, ...sessions: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<session_list${ns ? ` xmlns="${ns}"` : ''}>\n  ${sessions.join('\n  ')}\n</session_list>\n`;
}

async function parse(xml: string | Buffer, chunk = 1 << 16, options = {}): Promise<ParsedItem<Session>[]> {
  const buf = Buffer.isBuffer(xml) ? xml : Buffer.from(xml);
  const chunks = [];
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk));
  const out: ParsedItem<Session>[] = [];
  for await (const item of parseReport(Readable.from(chunks), 'session', {
    siteHost: 'support.example.com',
    ...options,
  }))
    out.push(item);
  return out;
}

const model = (items: ParsedItem<Session>[], i = 0): Session => {
  const it = items[i]!;
  if (!it.ok) throw it.error;
  return it.model;
};

describe('parseReport (sessions)', () => {
  it('maps every seed field of a session', async () => {
    const s = model(await parse(doc(RS, SESSION)));
    expect(s).toMatchObject({
      lsid: 'c69a8e10bea9428f816cfababe9815fe',
      lseq: 8,
      sessionType: 'support',
      startTime: '2024-12-03T15:26:05.000Z',
      endTime: '2024-12-03T15:41:07.000Z',
      duration: 902,
      supportSiteHost: 'support.example.com',
      namespace: RS,
      publicSite: { id: 1, name: 'Default' },
      jumpGroup: { id: 1, name: 'Helpdesk', type: 'shared' },
      fileTransferCount: 2,
      primaryCustomer: { gsnumber: 22, name: 'Jane Customer' },
      primaryRep: { gsnumber: 21, id: 1, name: 'Admin' },
      customAttributes: [{ displayName: 'Ticket', codeName: 'ticket_id', value: '12345' }],
      chat: { downloadUrl: 'https://h/session_download?lsid=l%3Dx&dl_action=chat' },
      recordings: {
        commandShell: [
          { instance: 0, downloadUrl: 'u0' },
          { instance: 1, downloadUrl: 'u1' },
        ],
        showMyScreen: [],
      },
      exitSurveys: [{ kind: 'customer', gsnumber: 22, values: [{ name: 'rating', value: '5' }] }],
    });
    expect(s.externalKey).toBeUndefined();
    expect(s.customers[0]).toMatchObject({
      gsnumber: 22,
      publicIp: '4.231.237.19',
      privateIp: '10.0.0.4',
      isPrimary: true,
      info: { name: 'Jane', companyCode: 'AC1', issue: '3', details: 'Printer broken' },
    });
    expect(s.representatives[0]).toMatchObject({
      gsnumber: 21,
      id: 1,
      publicIp: '2a01:e34::1',
      isOwner: true,
      isPrimary: true,
      secondsInvolved: 901,
    });
    expect(s.representatives[0]!.privateIp).toBeUndefined();
    expect(s.events.map((e) => e.type)).toEqual([
      'Session Start',
      'Conference Owner Changed',
      'Chat Message',
      'Session Note Added',
      'File Upload',
      'System Information Retrieved',
      'Teleport Started',
    ]);
    expect(s.events[1]).toMatchObject({
      performedBy: { type: 'representative', gsnumber: 21, name: 'Admin' },
      destination: { type: 'system', gsnumber: 0 },
      data: [{ name: 'owner', value: 'Pre-start Conference' }],
    });
    expect(s.events[2]!.body).toBe('Hello <b> & bye');
    expect(s.events[3]!.encodedBody).toBe('bm90ZQE=');
    expect(s.events[4]!.files).toEqual([{ name: 'fix.reg', size: 1024 }]);
    expect(s.events[5]!.systemInformation).toEqual([
      {
        name: 'General',
        fields: [{ name: 'os', label: 'Operating System' }],
        rows: [[{ name: 'os', value: 'Windows 11' }]],
      },
    ]);
  });

  it('keeps what it does not recognise in extra, at every level', async () => {
    const s = model(await parse(doc(RS, SESSION)));
    expect(s.extra).toEqual({ rep_join_time: '2024' });
    expect(s.customers[0]!.extra).toEqual({ info: { favourite_colour: 'blue' } });
    expect(s.representatives[0]!.extra).toEqual({ badge: 'gold' });
    expect(s.events[6]!.extra).toEqual({ portal: '7' });
  });

  it('gives plain data that JSON carries unchanged (models cross to plugin workers as JSON text)', async () => {
    const empty = SESSION.replace(/<end_time[^/]*\/end_time>/, '<end_time></end_time>')
      .replace('<duration>00:15:02</duration>', '<duration>unknown</duration>')
      .replace('c69a', 'aaaa');
    for (const ns of [RS, PRA, ''])
      for (const item of await parse(doc(ns, SESSION, empty))) {
        if (!item.ok) throw item.error;
        // toStrictEqual also fails on a property set to undefined, NaN read back as null, or a non-plain object.
        expect(JSON.parse(JSON.stringify(item.model))).toStrictEqual(item.model);
      }
  });

  it('gives each session its exact XML inside its root, namespace kept', async () => {
    const second = SESSION.replace('c69a8e10bea9428f816cfababe9815fe', 'aaaa').replace(
      '<lseq>8</lseq>',
      '<lseq>9</lseq>',
    );
    const items = await parse(doc(RS, SESSION, second));
    expect(items).toHaveLength(2);
    expect(items[0]!.xml).toBe(
      `<?xml version="1.0" encoding="UTF-8"?>\n<session_list xmlns="${RS}">${SESSION}</session_list>\n`,
    );
    expect(items[1]!.xml).toBe(
      `<?xml version="1.0" encoding="UTF-8"?>\n<session_list xmlns="${RS}">${second}</session_list>\n`,
    );
  });

  it('yields the same items whatever the chunk boundaries, multi-byte characters included', async () => {
    const uni = SESSION.replace('Printer broken', 'Drucker kaputt — 😀 é 中文');
    const xml = doc(RS, uni, uni.replace('c69a8e10bea9428f816cfababe9815fe', 'bbbb'));
    const whole = await parse(xml);
    expect(model(whole).customers[0]!.info!.details).toBe('Drucker kaputt — 😀 é 中文');
    for (const size of [1, 2, 3, 7, 13, 64, 1000]) {
      const split = await parse(xml, size);
      expect(split.map((i) => i.xml)).toEqual(whole.map((i) => i.xml));
      expect(split.map((i) => i.ok && i.model)).toEqual(whole.map((i) => i.ok && i.model));
    }
  });

  it('is namespace-agnostic: RS, PRA, none and prefixed', async () => {
    expect(model(await parse(doc(PRA, SESSION))).namespace).toBe(PRA);
    expect(model(await parse(doc('', SESSION))).namespace).toBe('');
    const prefixed = `<r:session_list xmlns:r="${RS}"><r:session lsid="p1"><r:start_time timestamp="1733239565"/><r:lseq>3</r:lseq></r:session></r:session_list>`;
    const items = await parse(prefixed);
    expect(model(items)).toMatchObject({ lsid: 'p1', lseq: 3, namespace: RS });
    expect(items[0]!.xml).toContain(`<r:session_list xmlns:r="${RS}"><r:session lsid="p1">`);
  });

  it('treats an in-progress session (empty end_time) as having no end', async () => {
    const open = SESSION.replace(/<end_time[^/]*\/end_time>/, '<end_time></end_time>');
    expect(model(await parse(doc(RS, open))).endTime).toBeUndefined();
  });

  it('reads empty roots and "no data" errors in any language as zero sessions', async () => {
    expect(await parse(`<?xml version="1.0"?><session_list xmlns="${RS}"/>`)).toEqual([]);
    expect(
      await parse(
        `<?xml version="1.0"?>\n\n<error xmlns="${RS}">No session report information matching your chosen criteria is available.</error>\n\n\n`,
      ),
    ).toEqual([]);
    expect(
      await parse(`<error>Aucune information de rapport correspondant à vos critères n’est disponible.</error>`),
    ).toEqual([]);
  });

  it('turns any other <error> root into IC_ERR_SITE_API_ERROR with its text', async () => {
    await expect(parse(`<?xml version="1.0"?><error xmlns="${PRA}">Login failed</error>`)).rejects.toMatchObject({
      code: 'IC_ERR_SITE_API_ERROR',
      retryable: false,
      details: { text: 'Login failed' },
    });
    await expect(parse(`<session_list><error>Invalid parameter</error></session_list>`)).rejects.toMatchObject({
      code: 'IC_ERR_SITE_API_ERROR',
    });
  });

  it('reports an unreadable session on its own and goes on with the others', async () => {
    const items = await parse(
      doc(RS, '<session><lseq>1</lseq></session>', '<session lsid="nostart"><lseq>2</lseq></session>', SESSION),
    );
    expect(items.map((i) => i.ok)).toEqual([false, false, true]);
    expect(items[0]).toMatchObject({ ok: false, error: { code: 'IC_ERR_SITE_SESSION_INVALID' } });
    expect(items[1]).toMatchObject({ ok: false, lsid: 'nostart' });
  });

  it('fails truncated and malformed bodies as retryable IC_ERR_SITE_REPORT_MALFORMED', async () => {
    const xml = doc(RS, SESSION, SESSION);
    await expect(parse(xml.slice(0, xml.length - 200))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_REPORT_MALFORMED',
      retryable: true,
    });
    await expect(parse(doc(RS, '<session lsid="x"><lseq>1</lseq></sesion>'))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_REPORT_MALFORMED',
    });
    await expect(parse('')).rejects.toMatchObject({ code: 'IC_ERR_SITE_REPORT_MALFORMED' });
    await expect(parse(Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0xfe, 0x3c, 0x2f, 0x61, 0x3e]))).rejects.toMatchObject({
      code: 'IC_ERR_SITE_REPORT_MALFORMED',
    });
    await expect(parse('<html><body>proxy error</body></html>')).rejects.toMatchObject({
      code: 'IC_ERR_SITE_REPORT_MALFORMED',
    });
  });

  it('refuses hostile XML fast: DTDs, entity bombs, external entities, deep nesting, huge text', async () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><session_list><session lsid="x">&lol2;</session></session_list>`;
    await expect(parse(bomb)).rejects.toMatchObject({ code: 'IC_ERR_SITE_REPORT_REJECTED', retryable: false });
    const xxe = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><session_list><session lsid="x">&xxe;</session></session_list>`;
    await expect(parse(xxe)).rejects.toMatchObject({ code: 'IC_ERR_SITE_REPORT_REJECTED' });
    await expect(parse(`<session_list><session lsid="x">&undefined;</session></session_list>`)).rejects.toMatchObject({
      code: 'IC_ERR_SITE_REPORT_MALFORMED',
    });
    const deep = `<session_list><session lsid="x">${'<a>'.repeat(100)}${'</a>'.repeat(100)}</session></session_list>`;
    await expect(parse(deep)).rejects.toMatchObject({
      code: 'IC_ERR_SITE_REPORT_REJECTED',
      message: expect.stringContaining('deeper than 64'),
    });
    const huge = `<session_list><session lsid="x"><external_key>${'k'.repeat(5000)}</external_key></session></session_list>`;
    await expect(parse(huge, 100, { maxTextLength: 1000 })).rejects.toMatchObject({
      code: 'IC_ERR_SITE_REPORT_REJECTED',
      message: expect.stringContaining('longer than 1000'),
    });
  });

  it('reads teams from team_list with the primary flag', async () => {
    const teams = SESSION.replace(
      '<rep_join_time>',
      '<primary_team id="2">Tier 1</primary_team><team_list><team id="2" primary="1">Tier 1</team><team id="5">Escalations</team></team_list><rep_join_time>',
    );
    expect(model(await parse(doc(RS, teams))).teams).toEqual([
      { id: 2, name: 'Tier 1', isPrimary: true },
      { id: 5, name: 'Escalations', isPrimary: false },
    ]);
  });
});

describe('parseReport (presentations)', () => {
  it('maps a presentation and keeps unknown children', async () => {
    const xml = `<presentation_list xmlns="${RS}"><presentation lsid="p1"><lseq>4</lseq><start_time timestamp="1733239565"/><duration>00:01:00</duration><presenter gsnumber="21" id="1"><display_name>Admin</display_name></presenter><attendee_list><attendee gsnumber="40"><name>V</name><public_ip>1.2.3.4:5</public_ip></attendee></attendee_list><session_details><event timestamp="1733239565" event_type="Presentation Started"/></session_details><recording_download_url>u</recording_download_url><slides>3</slides></presentation></presentation_list>`;
    const out = [];
    for await (const it of parseReport(Readable.from([xml]), 'presentation', { siteHost: 'h' })) out.push(it);
    expect(out[0]).toMatchObject({
      ok: true,
      model: {
        lsid: 'p1',
        lseq: 4,
        duration: 60,
        presenter: { gsnumber: 21, id: 1, name: 'Admin' },
        attendees: [{ gsnumber: 40, name: 'V', publicIp: '1.2.3.4' }],
        recording: { downloadUrl: 'u' },
        extra: { slides: '3' },
      },
    });
    expect(out[0]!.ok && out[0]!.model.events[0]!.type).toBe('Presentation Started');
    const m = out[0]!.ok ? out[0]!.model : undefined;
    expect(JSON.parse(JSON.stringify(m))).toStrictEqual(m);
  });
});
