/**
 * Session model → table rows, in the column order of schema.ts (`insertColumns`). Parent references are left
 * as `null` at their column and filled by the store once the parent's id is known. Every value is checked here,
 * the same way for every engine: text with NUL characters or a bounded column over its length is refused as a
 * bad item (the whole session, before anything is written).
 */
import { DestinationError, type Session, type SessionEvent } from '@integration-client/plugin-sdk';
import { insertColumns, SHORT_LENGTH, type TableName } from './schema.js';

/** A column value as handed to a driver; times are UTC ISO-8601 strings. */
export type Value = string | number | null;
export type Row = Value[];

export interface EventRows {
  readonly row: Row;
  readonly data: Row[];
  readonly systemInformation: Row[];
}

/** Tables whose rows hang off `session` directly, apart from events. */
export type SessionChild = 'representative' | 'customer' | 'team' | 'custom_attribute' | 'session_extra';

export interface SessionRows {
  readonly host: string;
  readonly lsid: string;
  readonly session: Row;
  readonly events: EventRows[];
  readonly children: Readonly<Record<SessionChild, Row[]>>;
}

const flag = (b: boolean | undefined): number | null => (b === undefined ? null : b ? 1 : 0);
const str = (s: string | undefined): string | null => (s === undefined ? null : s);
const num = (n: number | undefined): number | null => (n === undefined ? null : n);

/** Seconds → the seed's `HH:MM:SS` (hours may exceed 24). */
export function hhmmss(seconds: number | undefined): string | null {
  if (seconds === undefined) return null;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(h)}:${two(m)}:${two(s)}`;
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
const escapeXml = (s: string) => s.replace(/[&<>"]/g, (c) => XML_ESCAPES[c]!);

/**
 * `system_information.information`: the category's `<field>` elements as the appliance sends them — the
 * field descriptors under `<description>`, then one `<row>` of `<field name="…">value</field>` per data row.
 */
export function informationXml(category: NonNullable<SessionEvent['systemInformation']>[number]): string {
  const field = (name: string, text: string) => `<field name="${escapeXml(name)}">${escapeXml(text)}</field>`;
  const description = category.fields.map((f) => field(f.name, f.label)).join('');
  const rows = category.rows.map((r) => `<row>${r.map((v) => field(v.name, v.value)).join('')}</row>`).join('');
  return `<description>${description}</description><data>${rows}</data>`;
}

function eventRows(e: SessionEvent, storeSystemInformation: boolean): EventRows {
  const data: Row[] = e.data.map((d) => [null, d.name, d.value]);
  // What the seed's columns have no place for goes in as key-value pairs of the event (documented in README).
  if (e.body !== undefined) data.push([null, 'body', e.body]);
  if (e.encodedBody !== undefined) data.push([null, 'encoded_body', e.encodedBody]);
  for (const f of e.files) {
    data.push([null, 'file', f.name]);
    if (f.size !== undefined) data.push([null, 'file_size', String(f.size)]);
  }
  if (e.extra && Object.keys(e.extra).length) data.push([null, 'extra', JSON.stringify(e.extra)]);
  const systemInformation: Row[] =
    storeSystemInformation && e.systemInformation
      ? e.systemInformation.map((c) => [null, c.name, informationXml(c)])
      : [];
  return {
    row: [
      null,
      e.type,
      e.time,
      str(e.performedBy?.name),
      str(e.performedBy?.type),
      str(e.destination?.name),
      str(e.destination?.type),
    ],
    data,
    systemInformation,
  };
}

/** `session_extra` rows: model facts the seed's tables have no column for, as JSON. */
function extraRows(s: Session): Row[] {
  const extras: [string, unknown][] = [
    ['jumpoint', s.jumpoint],
    ['file_move_count', s.fileMoveCount || undefined],
    ['file_delete_count', s.fileDeleteCount || undefined],
    ['primary_customer', s.primaryCustomer],
    ['primary_rep', s.primaryRep],
    ['chat', s.chat],
    [
      'recordings',
      s.recordings.session || s.recordings.commandShell.length || s.recordings.showMyScreen.length
        ? s.recordings
        : undefined,
    ],
    ['exit_surveys', s.exitSurveys.length ? s.exitSurveys : undefined],
    ['extra', Object.keys(s.extra).length ? s.extra : undefined],
    ['representative_extra', extrasOf(s.representatives)],
    ['customer_extra', extrasOf(s.customers)],
  ];
  return extras.filter(([, v]) => v !== undefined).map(([name, v]) => [null, name, JSON.stringify(v)]);
}

function extrasOf(actors: readonly { gsnumber: number; extra?: Record<string, unknown> }[]) {
  const found = actors.filter((a) => a.extra && Object.keys(a.extra).length);
  return found.length ? found.map((a) => ({ gsnumber: a.gsnumber, extra: a.extra })) : undefined;
}

/** Builds and checks every row of one session. */
export function sessionRows(s: Session, storeSystemInformation: boolean): SessionRows {
  const rows: SessionRows = {
    host: s.supportSiteHost,
    lsid: s.lsid,
    session: [
      s.lsid,
      s.sessionType,
      s.startTime,
      str(s.endTime),
      hhmmss(s.duration),
      s.fileTransferCount,
      s.supportSiteHost,
      str(s.externalKey),
      num(s.publicSite?.id),
      str(s.publicSite?.name),
      num(s.lseq),
      num(s.jumpGroup?.id),
      str(s.jumpGroup?.name),
      str(s.jumpGroup?.type),
    ],
    events: s.events.map((e) => eventRows(e, storeSystemInformation)),
    children: {
      representative: s.representatives.map((r) => [
        r.gsnumber,
        null,
        num(r.id),
        str(r.username),
        str(r.privateDisplayName ?? r.displayName),
        str(r.publicDisplayName),
        num(r.displayNumber),
        str(r.publicIp),
        str(r.privateIp),
        flag(r.isOwner),
        flag(r.isPrimary),
        num(r.secondsInvolved),
        str(r.hostname),
        str(r.os),
      ]),
      customer: s.customers.map((c) => [
        null,
        c.gsnumber,
        str(c.info?.issue),
        str(c.info?.details),
        str(c.info?.name ?? c.username),
        str(c.info?.company),
        str(c.info?.companyCode),
        str(c.publicIp),
        str(c.privateIp),
        flag(c.rpatSupport),
        str(c.hostname),
        str(c.os),
      ]),
      team: s.teams.map((t) => [null, num(t.id), t.name, flag(t.isPrimary)]),
      custom_attribute: s.customAttributes.map((a) => [null, str(a.displayName), a.codeName, a.value]),
      session_extra: extraRows(s),
    },
  };
  checkRows(rows);
  return rows;
}

/** Index of the parent-reference column in a row of `table`. */
export function refIndex(table: TableName): number {
  let at = REF_INDEX.get(table);
  if (at === undefined) REF_INDEX.set(table, (at = insertColumns(table).findIndex((c) => c.kind === 'ref')));
  return at;
}
const REF_INDEX = new Map<TableName, number>();

function checkRows(r: SessionRows): void {
  const where = `session ${r.lsid} of ${r.host}`;
  checkRow('session', r.session, where);
  for (const e of r.events) {
    checkRow('session_event', e.row, where);
    for (const d of e.data) checkRow('session_event_data', d, where);
    for (const d of e.systemInformation) checkRow('system_information', d, where);
  }
  for (const [name, list] of Object.entries(r.children) as [SessionChild, Row[]][])
    for (const row of list) checkRow(name, row, where);
}

function checkRow(name: TableName, row: Row, where: string): void {
  const columns = insertColumns(name);
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (typeof v !== 'string') continue;
    const col = columns[i]!;
    if (v.includes('\0'))
      throw badItem(`${where}: ${name}.${col.name} contains a NUL character, which SQL text columns cannot hold`);
    if ((col.kind === 'short' || col.kind === 'key') && v.length > SHORT_LENGTH)
      throw badItem(
        `${where}: ${name}.${col.name} is ${v.length} characters long; the column holds at most ${SHORT_LENGTH}`,
      );
    if (!v.isWellFormed()) row[i] = v.toWellFormed();
  }
}

const badItem = (message: string) =>
  new DestinationError('IC_ERR_DESTINATION_BAD_ITEM', `${message}; the session was not stored, the others go on`);
