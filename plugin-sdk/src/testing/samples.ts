import { Readable } from 'node:stream';
import type { Presentation, Session } from '@integration-client/schemas';

const RS_NS = 'http://www.bomgar.com/namespaces/API/reporting';

/** A complete session model built from the seed's field list, for tests. */
export function sampleSession(overrides: Partial<Session> = {}): Session {
  return {
    lsid: 'c69a8e10bea9428f816cfababe9815fe',
    lseq: 1234,
    sessionType: 'support',
    startTime: '2024-12-03T15:26:05.000Z',
    endTime: '2024-12-03T15:41:07.000Z',
    duration: 902,
    supportSiteHost: 'support.example.com',
    namespace: RS_NS,
    externalKey: 'INC0012345',
    publicSite: { id: 1, name: 'Default' },
    jumpGroup: { id: 1, name: 'Helpdesk', type: 'shared' },
    fileTransferCount: 2,
    fileMoveCount: 0,
    fileDeleteCount: 1,
    primaryCustomer: { gsnumber: 22, name: 'Jane Customer' },
    primaryRep: { gsnumber: 21, id: 1, name: 'Admin' },
    customers: [
      {
        gsnumber: 22,
        username: 'jdoe',
        publicIp: '4.231.237.19',
        privateIp: '10.0.0.4',
        hostname: 'PC-042',
        os: 'Windows 11 Pro',
        isPrimary: true,
        rpatSupport: false,
        info: { name: 'Jane Customer', company: 'Acme', companyCode: 'AC1', issue: '3', details: 'Printer broken' },
      },
    ],
    representatives: [
      {
        gsnumber: 21,
        id: 1,
        username: 'admin',
        displayName: 'Admin',
        publicDisplayName: 'Admin',
        privateDisplayName: 'Admin',
        displayNumber: 1,
        publicIp: '2a01:e34::1',
        privateIp: 'Unknown',
        hostname: 'REP-PC',
        os: 'Unknown',
        isOwner: true,
        isPrimary: true,
        secondsInvolved: 901,
      },
    ],
    teams: [{ id: 2, name: 'Tier 1', isPrimary: true }],
    customAttributes: [{ displayName: 'Ticket', codeName: 'ticket_id', value: '12345' }],
    events: [
      { type: 'Session Start', time: '2024-12-03T15:26:05.000Z', data: [], files: [] },
      {
        type: 'Chat Message',
        time: '2024-12-03T15:28:20.000Z',
        performedBy: { type: 'representative', gsnumber: 21, name: 'Admin' },
        destination: { type: 'customer', gsnumber: 22, name: 'Jane Customer' },
        data: [],
        body: 'Hello',
        files: [],
      },
      {
        type: 'System Information Retrieved',
        time: '2024-12-03T15:26:40.000Z',
        data: [],
        files: [],
        systemInformation: [
          {
            name: 'General',
            fields: [{ name: 'os', label: 'Operating System' }],
            rows: [[{ name: 'os', value: 'Windows 11 Pro' }]],
          },
        ],
      },
      { type: 'Session End', time: '2024-12-03T15:41:07.000Z', data: [], files: [] },
    ],
    recordings: {
      session: { downloadUrl: 'https://support.example.com/session_download?lsid=x' },
      commandShell: [{ instance: 0 }],
      showMyScreen: [],
    },
    exitSurveys: [{ kind: 'customer', gsnumber: 22, values: [{ name: 'rating', value: '5' }] }],
    extra: {},
    ...overrides,
  };
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A small but well-formed SupportSession document around one session, as a destination would receive it. */
export function sampleSessionXml(session: Session = sampleSession()): string {
  const ns = session.namespace ? ` xmlns="${esc(session.namespace)}"` : '';
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<session_list${ns}><session lsid="${esc(session.lsid)}">` +
    `<session_type>${esc(session.sessionType)}</session_type>` +
    (session.lseq === undefined ? '' : `<lseq>${session.lseq}</lseq>`) +
    `<start_time timestamp="${Date.parse(session.startTime) / 1000}">${esc(session.startTime)}</start_time>` +
    `<external_key>${esc(session.externalKey ?? '')}</external_key>` +
    `</session></session_list>\n`
  );
}

/** A presentation model for tests. */
export function samplePresentation(overrides: Partial<Presentation> = {}): Presentation {
  return {
    lsid: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
    lseq: 77,
    startTime: '2024-12-03T10:00:00.000Z',
    endTime: '2024-12-03T10:30:00.000Z',
    duration: 1800,
    supportSiteHost: 'support.example.com',
    namespace: RS_NS,
    presenter: { gsnumber: 5, id: 1, name: 'Admin' },
    attendees: [{ gsnumber: 6, name: 'Viewer' }],
    events: [],
    extra: {},
    ...overrides,
  };
}

/** XML document around one presentation. */
export function samplePresentationXml(p: Presentation = samplePresentation()): string {
  const ns = p.namespace ? ` xmlns="${esc(p.namespace)}"` : '';
  return `<?xml version="1.0" encoding="UTF-8"?>\n<presentation_list${ns}><presentation lsid="${esc(p.lsid)}"></presentation></presentation_list>\n`;
}

/** A deterministic byte stream that counts what was read from it. */
export interface SampleStream extends Readable {
  /** Bytes handed to the consumer so far. */
  readonly bytesRead: number;
}

/** Options for {@link sampleStream}. */
export interface SampleStreamOptions {
  /** Emit an error (code ECONNRESET) after this many bytes instead of ending. */
  readonly failAfter?: number;
  readonly chunkSize?: number;
}

/** A stream of `size` deterministic bytes generated on the fly (never held in memory at once). */
export function sampleStream(size: number, options: SampleStreamOptions = {}): SampleStream {
  const chunkSize = options.chunkSize ?? 64 * 1024;
  const pattern = Buffer.alloc(chunkSize);
  for (let i = 0; i < chunkSize; i++) pattern[i] = (i * 31 + 7) & 0xff;
  let sent = 0;
  const stream = new Readable({
    read() {
      if (options.failAfter !== undefined && sent >= options.failAfter) {
        this.destroy(Object.assign(new Error('connection reset by the appliance (simulated)'), { code: 'ECONNRESET' }));
        return;
      }
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(chunkSize, size - sent, (options.failAfter ?? Infinity) - sent);
      sent += n;
      this.push(n === chunkSize ? Buffer.from(pattern) : pattern.subarray(0, n));
    },
  }) as Readable & { bytesRead: number };
  Object.defineProperty(stream, 'bytesRead', { get: () => sent });
  return stream;
}
