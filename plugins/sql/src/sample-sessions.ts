/**
 * Deterministic session models for tests and the `sql` benchmark: `count` sessions of one site, each with
 * `events` events (chat lines with a body, data pairs, one system-information event), two reps, a customer,
 * a team and a custom attribute.
 */
import type { Session, SessionEvent } from '@integration-client/plugin-sdk';

export interface SampleSessionsOptions {
  readonly count: number;
  readonly events?: number;
  readonly host?: string;
  /** First lsid number (lsids are `s<number>`). */
  readonly from?: number;
  readonly startMs?: number;
}

export function sampleSessions(o: SampleSessionsOptions): Session[] {
  const out: Session[] = [];
  const events = Math.max(3, o.events ?? 10);
  const host = o.host ?? 'support.example.com';
  const t0 = o.startMs ?? Date.UTC(2024, 11, 3, 8);
  for (let n = o.from ?? 0; n < (o.from ?? 0) + o.count; n++) {
    const start = t0 + n * 60_000;
    const at = (i: number) => new Date(start + i * 1000).toISOString();
    const list: SessionEvent[] = [{ type: 'Session Start', time: at(0), data: [], files: [] }];
    list.push({
      type: 'System Information Retrieved',
      time: at(1),
      data: [],
      files: [],
      systemInformation: [
        {
          name: 'General',
          fields: [
            { name: 'os', label: 'Operating System' },
            { name: 'ram', label: 'Memory' },
          ],
          rows: [
            [
              { name: 'os', value: 'Windows 11 Pro' },
              { name: 'ram', value: `${8 + (n % 4) * 8} GB` },
            ],
          ],
        },
      ],
    });
    for (let i = 2; i < events - 1; i++)
      list.push(
        i % 5 === 0
          ? {
              type: 'Conference Member State Changed',
              time: at(i),
              performedBy: { type: 'system', gsnumber: 0, name: 'System' },
              destination: { type: 'representative', gsnumber: 21, name: 'Admin' },
              data: [
                { name: 'state', value: 'connected' },
                { name: 'os', value: 'Windows 11' },
              ],
              files: [],
            }
          : {
              type: 'Chat Message',
              time: at(i),
              performedBy: { type: 'representative', gsnumber: 21, name: 'Admin' },
              destination: { type: 'customer', gsnumber: 22, name: 'Jane Customer' },
              data: [],
              body: `message ${i} of session ${n}: please restart the print spooler & try again`,
              files: [],
            },
      );
    list.push({ type: 'Session End', time: at(events - 1), data: [], files: [] });
    out.push({
      lsid: `s${String(n).padStart(8, '0')}`,
      lseq: n,
      sessionType: 'support',
      startTime: at(0),
      endTime: at(events - 1),
      duration: events - 1,
      supportSiteHost: host,
      externalKey: n % 3 ? `INC${n}` : undefined,
      publicSite: { id: 1, name: 'Default' },
      jumpGroup: n % 2 ? { id: 3, name: 'Servers', type: 'shared' } : undefined,
      fileTransferCount: n % 4,
      fileMoveCount: 0,
      fileDeleteCount: 0,
      primaryCustomer: { gsnumber: 22, name: 'Jane Customer' },
      primaryRep: { gsnumber: 21, id: 1, name: 'Admin' },
      customers: [
        {
          gsnumber: 22,
          username: 'jdoe',
          publicIp: '4.231.237.19',
          privateIp: '10.0.0.4',
          hostname: `PC-${n % 100}`,
          os: 'Windows 11 Pro',
          rpatSupport: false,
          info: { name: 'Jane Customer', company: 'Acme', companyCode: 'AC1', issue: '3', details: 'Printer broken' },
        },
      ],
      representatives: [
        {
          gsnumber: 21,
          id: 1,
          username: 'admin',
          privateDisplayName: 'Admin',
          publicDisplayName: 'Admin',
          displayNumber: 1,
          isOwner: true,
          isPrimary: true,
          secondsInvolved: events - 1,
          publicIp: '2a01:e34::1',
          privateIp: '10.0.0.9',
          hostname: 'REP-PC',
          os: 'Windows 10',
        },
        {
          gsnumber: 23,
          id: 2 + (n % 5),
          username: `rep${n % 5}`,
          privateDisplayName: `Rep ${n % 5}`,
          isOwner: false,
          isPrimary: false,
          secondsInvolved: 30,
        },
      ],
      teams: [{ id: 2, name: 'Tier 1', isPrimary: true }],
      customAttributes: [{ displayName: 'Ticket', codeName: 'ticket_id', value: String(10_000 + n) }],
      events: list,
      recordings: { commandShell: [], showMyScreen: [] },
      exitSurveys: [],
      extra: {},
    });
  }
  return out;
}
