import type { Actor, Session, SessionEvent, SystemInformationCategory } from '@integration-client/schemas';
import { child, children, childText, keepExtra, type XmlNode } from './element-tree.js';
import { ownedCopy, toBool, toDurationSeconds, toInt, toIp, toIsoTime, known } from './values.js';
import { XML_NAMES as N } from './xml-names.js';

type Extra = Record<string, unknown>;

/** Maps the children of `node` with `handlers`; anything unhandled goes to `extra`. */
function dispatch(node: XmlNode, handlers: Record<string, (c: XmlNode) => void>, extra: Extra): void {
  for (const c of node.children) {
    const h = handlers[c.name];
    if (h) h(c);
    else keepExtra(extra, c);
  }
}

const str = (n: XmlNode): string | undefined => known(n.text);
const attrInt = (n: XmlNode, a: string): number | undefined => toInt(n.attrs[a]);

function actor(n: XmlNode): Actor {
  const a: Actor = { type: n.attrs.type ?? 'unknown', gsnumber: attrInt(n, 'gsnumber') ?? 0 };
  const name = n.text.trim();
  if (name) a.name = name;
  return a;
}

function category(n: XmlNode): SystemInformationCategory {
  const key = (f: XmlNode): string => N.fieldKey.map((k) => f.attrs[k]).find((v) => v !== undefined) ?? '';
  const fields = children(child(n, 'description') ?? n, 'field').map((f) => ({ name: key(f), label: f.text.trim() }));
  const rows = children(child(n, 'data') ?? n, 'row').map((r) =>
    children(r, 'field').map((f) => ({ name: key(f), value: f.text })),
  );
  return { name: n.attrs.name ?? '', fields, rows };
}

function event(n: XmlNode): SessionEvent {
  let extra: Extra | undefined;
  const e: SessionEvent = {
    type: n.attrs.event_type ?? '',
    time: toIsoTime(n.attrs.timestamp, undefined) ?? new Date(0).toISOString(),
    data: [],
    files: [],
  };
  for (const k of Object.keys(n.attrs))
    if (k !== 'event_type' && k !== 'timestamp') (extra ??= {})[`@${k}`] = n.attrs[k];
  let fileName: string | undefined;
  let fileSize: number | undefined;
  // A switch, not a table of closures: this runs for every event of every session (the parser's hot path).
  for (const c of n.children) {
    switch (c.name) {
      case 'performed_by':
        e.performedBy = actor(c);
        break;
      case 'destination':
        e.destination = actor(c);
        break;
      case 'data':
        for (const v of c.children)
          if (v.name === 'value') e.data.push({ name: v.attrs.name ?? '', value: v.attrs.value ?? v.text });
        break;
      case 'body':
        e.body = c.text;
        break;
      case 'encoded_body':
        e.encodedBody = c.text.trim();
        break;
      case 'filename':
        fileName = c.text;
        break;
      case 'filesize':
        fileSize = toInt(c.text);
        break;
      case 'files':
        for (const f of children(c, 'file')) {
          const size = toInt(childText(f, 'filesize', 'size'));
          e.files.push({ name: childText(f, 'filename', 'name') ?? '', ...(size !== undefined ? { size } : {}) });
        }
        break;
      case 'system_information':
        e.systemInformation = children(c, 'category').map(category);
        break;
      default:
        keepExtra((extra ??= {}), c);
    }
  }
  if (fileName !== undefined)
    e.files.unshift({ name: fileName, ...(fileSize !== undefined ? { size: fileSize } : {}) });
  if (extra) e.extra = extra;
  return e;
}

function instances(n: XmlNode, item: readonly string[]) {
  return children(n, ...item).map((r) => ({
    instance: attrInt(r, 'instance') ?? 0,
    ...(childText(r, 'download_url') ? { downloadUrl: childText(r, 'download_url') } : {}),
    ...(childText(r, 'view_url') ? { viewUrl: childText(r, 'view_url') } : {}),
  }));
}

function customer(n: XmlNode): Session['customers'][number] {
  const extra: Extra = {};
  const c: Session['customers'][number] = { gsnumber: attrInt(n, 'gsnumber') ?? 0 };
  const handlers: Record<string, (x: XmlNode) => void> = {
    username: (x) => (c.username = str(x)),
    public_ip: (x) => (c.publicIp = toIp(x.text)),
    private_ip: (x) => (c.privateIp = toIp(x.text)),
    hostname: (x) => (c.hostname = str(x)),
    os: (x) => (c.os = str(x)),
    primary_cust: (x) => (c.isPrimary = toBool(x.text)),
    info: (x) => {
      const info: NonNullable<typeof c.info> = {};
      const infoExtra: Extra = {};
      dispatch(
        x,
        {
          name: (y) => (info.name = y.text.trim()),
          company: (y) => (info.company = y.text.trim()),
          company_code: (y) => (info.companyCode = y.text.trim()),
          issue: (y) => (info.issue = y.text.trim()),
          details: (y) => (info.details = y.text),
        },
        infoExtra,
      );
      c.info = info;
      if (Object.keys(infoExtra).length) extra.info = infoExtra;
    },
  };
  for (const name of N.rpat) handlers[name] = (x) => (c.rpatSupport = toBool(x.text));
  dispatch(n, handlers, extra);
  if (Object.keys(extra).length) c.extra = extra;
  return stripUndefined(c);
}

function representative(n: XmlNode): Session['representatives'][number] {
  const extra: Extra = {};
  const r: Session['representatives'][number] = {
    gsnumber: attrInt(n, 'gsnumber') ?? 0,
    ...(attrInt(n, 'id') !== undefined ? { id: attrInt(n, 'id') } : {}),
  };
  const handlers: Record<string, (x: XmlNode) => void> = {
    username: (x) => (r.username = str(x)),
    display_name: (x) => (r.displayName = x.text.trim()),
    public_display_name: (x) => (r.publicDisplayName = x.text.trim()),
    private_display_name: (x) => (r.privateDisplayName = x.text.trim()),
    public_ip: (x) => (r.publicIp = toIp(x.text)),
    private_ip: (x) => (r.privateIp = toIp(x.text)),
    hostname: (x) => (r.hostname = str(x)),
    os: (x) => (r.os = str(x)),
    session_owner: (x) => (r.isOwner = toBool(x.text)),
    primary_rep: (x) => (r.isPrimary = toBool(x.text)),
    invited: (x) => (r.invited = toBool(x.text)),
    seconds_involved: (x) => (r.secondsInvolved = toInt(x.text)),
  };
  for (const name of N.displayNumber) handlers[name] = (x) => (r.displayNumber = toInt(x.text));
  dispatch(n, handlers, extra);
  if (Object.keys(extra).length) r.extra = extra;
  return stripUndefined(r);
}

function teams(list: XmlNode, primaryId: number | undefined): Session['teams'] {
  return children(list, ...N.team).map((t) => {
    const id = attrInt(t, 'id') ?? toInt(childText(t, 'id'));
    const flag = N.teamPrimary.map((k) => t.attrs[k] ?? childText(t, k)).find((v) => v !== undefined);
    const isPrimary = toBool(flag) ?? (primaryId !== undefined && id === primaryId);
    return stripUndefined({ id, name: childText(t, 'name') ?? t.text.trim(), isPrimary });
  });
}

/**
 * `o` without undefined properties: `o` itself when it has none (the common case), else a copy (copying, not
 * `delete`, keeps V8's fast object shapes). A copy made by keyed stores of more than ~16 properties is a
 * dictionary-mode object, slower to read and to serialise, so the session itself avoids undefined properties.
 */
function stripUndefined<T extends object>(o: T): T {
  let complete = true;
  for (const k in o)
    if (o[k] === undefined) {
      complete = false;
      break;
    }
  if (complete) return o;
  const out = {} as Record<string, unknown>;
  for (const k in o) if (o[k] !== undefined) out[k] = o[k];
  return out as T;
}

interface SessionCtx {
  readonly extra: Extra;
  readonly primaryTeamId: number | undefined;
}
type SessionField = (s: Session, c: XmlNode, ctx: SessionCtx) => void;

const url =
  (key: 'chat' | 'session', field: 'downloadUrl' | 'viewUrl'): SessionField =>
  (s, c) => {
    const target = key === 'chat' ? (s.chat ??= {}) : (s.recordings.session ??= {});
    target[field] = c.text.trim();
  };

/** How each known child of `<session>` lands in the model; built once (the parser's hot path). */
const SESSION_FIELDS: Record<string, SessionField> = {
  session_type: (s, c) => (s.sessionType = c.text.trim() || 'support'),
  lseq: (s, c, x) => (toInt(c.text) === undefined ? keepExtra(x.extra, c) : (s.lseq = toInt(c.text))),
  start_time: (s, c) => (s.startTime = toIsoTime(c.attrs.timestamp, c.text) ?? ''),
  end_time: (s, c) => {
    const t = toIsoTime(c.attrs.timestamp, c.text);
    if (t) s.endTime = t;
  },
  duration: (s, c) => {
    const d = toDurationSeconds(c.text);
    if (d !== undefined) s.duration = d;
  },
  public_site: (s, c) => (s.publicSite = stripUndefined({ id: attrInt(c, 'id'), name: c.text.trim() || undefined })),
  external_key: (s, c) => {
    if (c.text.trim()) s.externalKey = c.text.trim();
  },
  custom_attributes: (s, c) => {
    for (const a of children(c, 'custom_attribute')) {
      s.customAttributes.push(
        stripUndefined({ displayName: a.attrs.display_name, codeName: a.attrs.code_name ?? '', value: a.text }),
      );
    }
  },
  session_chat_view_url: url('chat', 'viewUrl'),
  session_chat_download_url: url('chat', 'downloadUrl'),
  session_recording_view_url: url('session', 'viewUrl'),
  session_recording_download_url: url('session', 'downloadUrl'),
  command_shell_recordings: (s, c) => s.recordings.commandShell.push(...instances(c, ['command_shell_recording'])),
  file_transfer_count: (s, c) => (s.fileTransferCount = toInt(c.text) ?? 0),
  file_move_count: (s, c) => (s.fileMoveCount = toInt(c.text) ?? 0),
  file_delete_count: (s, c) => (s.fileDeleteCount = toInt(c.text) ?? 0),
  jumpoint: (s, c) => (s.jumpoint = stripUndefined({ id: attrInt(c, 'id'), name: c.text.trim() || undefined })),
  jump_group: (s, c) =>
    (s.jumpGroup = stripUndefined({ id: attrInt(c, 'id'), name: c.text.trim() || undefined, type: c.attrs.type })),
  primary_customer: (s, c) =>
    (s.primaryCustomer = stripUndefined({ gsnumber: attrInt(c, 'gsnumber') ?? 0, name: c.text.trim() || undefined })),
  primary_rep: (s, c) =>
    (s.primaryRep = stripUndefined({
      gsnumber: attrInt(c, 'gsnumber') ?? 0,
      id: attrInt(c, 'id'),
      name: c.text.trim() || undefined,
    })),
  customer_list: (s, c) => {
    for (const x of children(c, 'customer')) s.customers.push(customer(x));
  },
  rep_list: (s, c) => {
    for (const x of children(c, 'representative')) s.representatives.push(representative(x));
  },
  session_details: (s, c) => {
    for (const x of c.children) if (x.name === 'event') s.events.push(event(x));
  },
  cust_survey_list: (s, c) => s.exitSurveys.push(...surveys(c, 'customer')),
  rep_survey_list: (s, c) => s.exitSurveys.push(...surveys(c, 'representative')),
};
for (const name of N.showMyScreenRecordings)
  SESSION_FIELDS[name] = (s, c) => s.recordings.showMyScreen.push(...instances(c, N.showMyScreenRecording));
for (const name of N.teamList) SESSION_FIELDS[name] = (s, c, x) => s.teams.push(...teams(c, x.primaryTeamId));
for (const name of N.primaryTeam) SESSION_FIELDS[name] = () => undefined;

/** The element's lsid attribute, trimmed, as an owned copy (the engine keeps it while the item is in flight). */
export function ownedLsid(node: XmlNode, element: 'session' | 'presentation'): string {
  const lsid = node.attrs.lsid?.trim();
  if (!lsid) throw new Error(`${element} element has no lsid attribute`);
  return ownedCopy(lsid);
}

/**
 * Maps one `<session>` element to the session model. Every child the mapper does not know is kept in `extra`
 * (on the session, a customer, a representative or an event). Throws a plain Error only when the session has no
 * lsid or no usable start time; the parser turns that into a per-session failure.
 */
export function mapSession(node: XmlNode, supportSiteHost: string, namespace: string): Session {
  const lsid = ownedLsid(node, 'session');
  const extra: Extra = {};
  for (const [k, v] of Object.entries(node.attrs)) if (k !== 'lsid') extra[`@${k}`] = v;
  const s: Session = {
    lsid,
    sessionType: 'support',
    startTime: '',
    supportSiteHost,
    namespace,
    fileTransferCount: 0,
    fileMoveCount: 0,
    fileDeleteCount: 0,
    customers: [],
    representatives: [],
    teams: [],
    customAttributes: [],
    events: [],
    recordings: { commandShell: [], showMyScreen: [] },
    exitSurveys: [],
    extra,
  };
  const primaryTeam = child(node, ...N.primaryTeam);
  const ctx: SessionCtx = { extra, primaryTeamId: primaryTeam ? attrInt(primaryTeam, 'id') : undefined };
  for (const c of node.children) {
    const field = SESSION_FIELDS[c.name];
    if (field) field(s, c, ctx);
    else keepExtra(extra, c);
  }
  if (primaryTeam && s.teams.length === 0)
    s.teams.push(stripUndefined({ id: ctx.primaryTeamId, name: primaryTeam.text.trim(), isPrimary: true }));
  if (!s.startTime) throw new Error(`session ${lsid} has no usable start_time`);
  return stripUndefined(s);
}

function surveys(list: XmlNode, kind: 'customer' | 'representative'): Session['exitSurveys'] {
  return list.children.map((sv) =>
    stripUndefined({
      kind,
      gsnumber: attrInt(sv, 'gsnumber'),
      values: children(sv, 'value').map((v) => ({ name: v.attrs.name ?? '', value: v.attrs.value ?? v.text })),
    }),
  );
}
