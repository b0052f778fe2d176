import { EVENT_TYPES, prng, type SimSession } from './session-data.js';

/** Report namespaces the simulator can speak. */
export const NAMESPACES = {
  rs: 'http://www.bomgar.com/namespaces/API/reporting',
  pra: 'http://www.beyondtrust.com/sra/namespaces/API/reporting',
  none: '',
} as const;
export type NamespaceChoice = keyof typeof NAMESPACES;

const esc = (t: string | number): string =>
  String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const iso = (secs: number): string => new Date(secs * 1000).toISOString().replace('.000Z', '+00:00');
const hms = (secs: number): string =>
  [Math.floor(secs / 3600), Math.floor(secs / 60) % 60, secs % 60].map((n) => String(n).padStart(2, '0')).join(':');

/** XML declaration and root start tag of a report. */
export function rootStart(root: string, ns: NamespaceChoice): string {
  const x = NAMESPACES[ns] ? ` xmlns="${NAMESPACES[ns]}"` : '';
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}${x}>\n`;
}

const REPS = [
  { gs: 21, id: 1, user: 'admin', name: 'Admin', ip: '[2a01:e34::1]:56722', host: 'REP-PC', os: 'Unknown' },
  { gs: 31, id: 7, user: 'tier2', name: 'Tier 2 Tech', ip: '198.51.100.7:443', host: 'REP-7', os: 'Windows 11 Pro' },
];

function event(s: SimSession, k: number, siteHost: string, closed: boolean): string {
  const last = k === s.events - 1;
  const type =
    k === 0 ? 'Session Start' : last && closed ? 'Session End' : EVENT_TYPES[(s.index * 7 + k) % EVENT_TYPES.length]!;
  const t = s.start + Math.floor(((s.end - s.start) * k) / Math.max(1, s.events));
  const rep = REPS[k % 2]!;
  const by = `<performed_by type="representative" gsnumber="${rep.gs}">${esc(rep.name)}</performed_by>`;
  const to = `<destination type="customer" gsnumber="22">Customer ${s.index}</destination>`;
  let body = '';
  switch (type) {
    case 'Session Start':
    case 'Session End':
      return `<event timestamp="${t}" event_type="${type}"></event>\n`;
    case 'Chat Message':
      body = `${by}${to}<body>Hello &amp; welcome &lt;${esc(siteHost)}&gt; #${k}</body>`;
      break;
    case 'Session Note Added':
      body = `${by}<encoded_body>${Buffer.from(`note ${k}\u0001`).toString('base64')}</encoded_body>`;
      break;
    case 'File Upload':
    case 'File Download':
      body = `${by}<filename>fix-${k}.reg</filename><filesize>${1024 + k}</filesize>`;
      break;
    case 'Conference Owner Changed':
      body = `${by}<destination type="system" gsnumber="0">Pre-start Conference</destination><data><value name="owner" value="${esc(rep.name)}" /></data>`;
      break;
    case 'System Information Retrieved':
      body =
        `<system_information><category name="General"><description><field name="os">Operating System</field><field name="host">Host Name</field></description>` +
        `<data><row><field name="os">Windows 11 Pro</field><field name="host">PC-${s.index}</field></row></data></category>` +
        `<category name="Memory"><description><field name="total">Total</field></description><data><row><field name="total">16 GB</field></row></data></category></system_information>`;
      break;
    default:
      body = `${by}<data><value name="step" value="${k}" /></data>`;
  }
  return `<event timestamp="${t}" event_type="${type}">${body}</event>\n`;
}

/** One `<session>` element as the appliance would send it at appliance time `now` (Unix seconds). */
export function sessionXml(s: SimSession, now: number, siteHost: string): string {
  const closed = s.end <= now;
  const rand = prng(s.index + 17);
  const dl = (m: string) =>
    `https://${esc(siteHost)}/session_download?lsid=l%3D${s.lsid}%3Bh%3Dabc%3Bt%3Dsd%3Bm%3D${m}&amp;dl_action=${m}`;
  const shell = Array.from(
    { length: closed ? s.shellInstances : 0 },
    (_, i) =>
      `<command_shell_recording instance="${i}"><download_url>${dl('shell')}&amp;instance=${i}</download_url><view_url>${dl('shell')}&amp;view=1</view_url></command_shell_recording>`,
  ).join('');
  const sms = Array.from(
    { length: closed ? s.smsInstances : 0 },
    (_, i) =>
      `<show_my_screen_recording instance="${i}"><download_url>${dl('smsr')}&amp;instance=${i}</download_url></show_my_screen_recording>`,
  ).join('');
  const events = Array.from({ length: closed ? s.events : Math.max(1, Math.floor(s.events / 2)) }, (_, k) =>
    event(s, k, siteHost, closed),
  ).join('');
  const rep2 = s.index % 2 === 0;
  return (
    `<session lsid="${s.lsid}">\n<session_type>support</session_type>\n<lseq>${s.lseq}</lseq>\n` +
    `<start_time timestamp="${s.start}">${iso(s.start)}</start_time>\n` +
    (closed ? `<end_time timestamp="${s.end}">${iso(s.end)}</end_time>\n` : `<end_time></end_time>\n`) +
    `<duration>${hms((closed ? s.end : now) - s.start)}</duration>\n<public_site id="1">Default</public_site>\n` +
    `<external_key>${esc(s.externalKey)}</external_key>\n` +
    `<custom_attributes><custom_attribute display_name="Ticket" code_name="ticket_id">${1000 + s.index}</custom_attribute><custom_attribute display_name="Priority" code_name="priority">${1 + Math.floor(rand() * 3)}</custom_attribute></custom_attributes>\n` +
    (closed
      ? `<session_chat_view_url>${dl('chat')}&amp;view=1</session_chat_view_url>\n<session_chat_download_url>${dl('chat')}</session_chat_download_url>\n`
      : '') +
    (closed && s.hasRecording
      ? `<session_recording_view_url>${dl('scr')}&amp;view=1</session_recording_view_url>\n<session_recording_download_url>${dl('scr')}</session_recording_download_url>\n`
      : '') +
    (shell ? `<command_shell_recordings>${shell}</command_shell_recordings>\n` : '') +
    (sms ? `<show_my_screen_recordings>${sms}</show_my_screen_recordings>\n` : '') +
    `<file_transfer_count>${s.index % 4}</file_transfer_count>\n<file_move_count>${s.index % 2}</file_move_count>\n<file_delete_count>0</file_delete_count>\n` +
    (s.index % 6 === 0 ? `<jump_group type="shared" id="1">Helpdesk</jump_group>\n` : '') +
    `<primary_customer gsnumber="22">Customer ${s.index}</primary_customer>\n<primary_rep gsnumber="${REPS[0]!.gs}" id="${REPS[0]!.id}">${REPS[0]!.name}</primary_rep>\n` +
    `<primary_team id="2">Tier 1</primary_team>\n<team_list><team id="2" primary="1">Tier 1</team>${rep2 ? '<team id="5" primary="0">Escalations</team>' : ''}</team_list>\n` +
    `<customer_list><customer gsnumber="22"><username>user${s.index}</username><public_ip>203.0.113.${s.index % 250}:${40000 + (s.index % 1000)}</public_ip><private_ip>10.0.0.${s.index % 250}</private_ip><hostname>PC-${s.index}</hostname><os>Windows 11 Pro</os><primary_cust>1</primary_cust><rpat_support>0</rpat_support>` +
    `<info><name>Customer ${s.index}</name><company>Acme &amp; Sons</company><company_code>AC${s.index % 10}</company_code><issue>${1 + (s.index % 4)}</issue><details>Printer ${s.index} broken</details></info></customer></customer_list>\n` +
    `<rep_list>` +
    REPS.slice(0, rep2 ? 2 : 1)
      .map(
        (r, i) =>
          `<representative gsnumber="${r.gs}" id="${r.id}"><username>${r.user}</username><display_name>${r.name}</display_name><public_display_name>${r.name}</public_display_name><private_display_name>${r.name}</private_display_name><display_number>${i + 1}</display_number>` +
          `<public_ip>${r.ip}</public_ip><private_ip>Unknown</private_ip><hostname>${r.host}</hostname><os>${r.os}</os><session_owner>${i === 0 ? 1 : 0}</session_owner><primary_rep>${i === 0 ? 1 : 0}</primary_rep><seconds_involved>${(s.end - s.start) >> i}</seconds_involved></representative>`,
      )
      .join('') +
    `</rep_list>\n<session_details>\n${events}</session_details>\n` +
    (closed
      ? `<cust_survey_list><cust_exit_survey gsnumber="22"><value name="rating" value="${1 + (s.index % 5)}" /></cust_exit_survey></cust_survey_list>\n<rep_survey_list><rep_exit_survey gsnumber="21"><value name="comments" value="ok" /></rep_exit_survey></rep_survey_list>\n`
      : '') +
    `</session>\n`
  );
}

/** A `<session_summary>` element of SupportSessionListing. */
export function summaryXml(s: SimSession, now: number): string {
  const closed = s.end <= now;
  return `<session_summary lsid="${s.lsid}" has_recording="${closed && s.hasRecording ? 1 : 0}" external_key="${esc(s.externalKey)}" />\n`;
}

/** A presentation element (presentations are sessions of the population with odd index / 10). */
export function presentationXml(s: SimSession, now: number): string {
  const closed = s.end <= now;
  return (
    `<presentation lsid="${s.lsid}">\n<lseq>${s.lseq}</lseq>\n<start_time timestamp="${s.start}">${iso(s.start)}</start_time>\n` +
    (closed ? `<end_time timestamp="${s.end}">${iso(s.end)}</end_time>\n` : '<end_time></end_time>\n') +
    `<duration>${hms((closed ? s.end : now) - s.start)}</duration>\n<public_site id="1">Default</public_site>\n` +
    `<presenter gsnumber="21" id="1"><display_name>Admin</display_name></presenter>\n` +
    `<attendee_list><attendee gsnumber="40"><name>Viewer ${s.index}</name><public_ip>198.51.100.${s.index % 250}:5000</public_ip><seconds_involved>${s.end - s.start}</seconds_involved></attendee></attendee_list>\n` +
    `<session_details><event timestamp="${s.start}" event_type="Presentation Started"></event></session_details>\n` +
    (closed
      ? `<recording_download_url>https://example/presentation_download?lsid=${s.lsid}</recording_download_url>\n`
      : '') +
    `</presentation>\n`
  );
}

/** An `<error>` document (what the appliance sends on HTTP 200 for application errors and, in some versions, no data). */
export function errorXml(text: string, ns: NamespaceChoice): string {
  const x = NAMESPACES[ns] ? ` xmlns="${NAMESPACES[ns]}"` : '';
  return `<?xml version="1.0" encoding="UTF-8"?>\n\n<error${x}>${esc(text)}</error>\n\n\n\n`;
}
