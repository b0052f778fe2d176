import { XMLParser } from 'fast-xml-parser';
import { isIcError, SiteAccessError } from '@integration-client/plugin-sdk';
import { isNoDataText } from '../report/xml-names.js';
import { API } from './api-names.js';
import type { Download, ReportParams, SiteClient } from './site-client.js';

/** Recordings the Reporting API serves. */
export type RecordingKind = 'session' | 'command-shell' | 'show-my-screen' | 'presentation';

const RECORDING_REPORTS: Record<RecordingKind, string> = {
  session: API.reports.sessionRecording,
  'command-shell': API.reports.commandShellRecording,
  'show-my-screen': API.reports.showMyScreenRecording,
  presentation: API.reports.presentationRecording,
};

/** Downloads one recording (command-shell and Show My Screen ones per 0-based instance). */
export function downloadRecording(
  client: SiteClient,
  kind: RecordingKind,
  lsid: string,
  instance?: number,
): Promise<Download> {
  const params: Record<string, string | number> = {
    [API.params.report]: RECORDING_REPORTS[kind],
    [API.params.lsid]: lsid,
  };
  if (instance !== undefined) params[API.params.instance] = instance;
  return client.download(
    API.reportingPath,
    params,
    `${kind} recording ${lsid}${instance === undefined ? '' : `#${instance}`}`,
  );
}

/** Downloads a site backup, with the optional backup password. */
export function downloadBackup(client: SiteClient, password?: string): Promise<Download> {
  return client.download(API.backupPath, password ? { [API.params.backupPassword]: password } : {}, 'site backup');
}

/** One row of SupportSessionListing. */
export interface SessionSummary {
  readonly lsid: string;
  readonly hasRecording: boolean;
  readonly externalKey?: string;
  /** Every attribute as sent. */
  readonly attributes: Readonly<Record<string, string>>;
}

const listingParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  removeNSPrefix: true,
  processEntities: true,
  isArray: (name) => name === 'session_summary',
});

/** SupportSessionListing (or PresentationSessionListing) for a window; an empty root or a "no data" error is []. */
export async function listSessions(
  client: SiteClient,
  params: ReportParams,
  presentations = false,
): Promise<SessionSummary[]> {
  const report = presentations ? API.reports.presentationSessionListing : API.reports.supportSessionListing;
  const res = await client.request(API.reportingPath, { [API.params.report]: report, ...params }, report);
  const text = Buffer.concat((await res.body.toArray()) as Buffer[]).toString('utf8');
  const doc = listingParser.parse(text) as Record<string, unknown>;
  if ('error' in doc) {
    const e = doc.error;
    const msg = String(
      typeof e === 'object' && e !== null ? ((e as Record<string, unknown>)['#text'] ?? '') : e,
    ).trim();
    if (isNoDataText(msg)) return [];
    throw new SiteAccessError('IC_ERR_SITE_API_ERROR', `${client.host}: ${report}: the appliance answered: ${msg}`, {
      details: { text: msg },
    });
  }
  const root = doc.session_summary_list as { session_summary?: Record<string, string>[] } | '' | undefined;
  if (root === undefined)
    throw new SiteAccessError(
      'IC_ERR_SITE_REPORT_MALFORMED',
      `${client.host}: ${report}: no <session_summary_list> root`,
    );
  return ((root || {}).session_summary ?? []).map((a) => ({
    lsid: a.lsid ?? '',
    hasRecording: a.has_recording === '1',
    ...(a.external_key ? { externalKey: a.external_key } : {}),
    attributes: a,
  }));
}

/** The verdict of a credentials test, readable by a person. */
export interface CredentialsTest {
  readonly ok: boolean;
  readonly problem?: 'unreachable' | 'certificate' | 'bad-secret' | 'api-disabled' | 'no-permission' | 'api-error';
  readonly message: string;
  readonly code?: string;
}

/** The seed's "Test the supplied credentials": a token plus one cheap report call. */
export async function testCredentials(client: SiteClient): Promise<CredentialsTest> {
  try {
    const now = Math.floor(client.applianceNow() / 1000);
    await listSessions(client, { [API.params.endTime]: now - 60, [API.params.duration]: 60 });
    return { ok: true, message: `${client.host}: credentials accepted and session reports readable` };
  } catch (err) {
    if (!isIcError(err)) throw err;
    const problem =
      (
        {
          IC_ERR_SITE_UNREACHABLE: 'unreachable',
          IC_ERR_SITE_UNAVAILABLE: 'unreachable',
          IC_ERR_SITE_TLS: 'certificate',
          IC_ERR_SITE_AUTH_FAILED: 'bad-secret',
          IC_ERR_SITE_FORBIDDEN: err.details?.endpoint === 'token' ? 'api-disabled' : 'no-permission',
        } as Record<string, CredentialsTest['problem']>
      )[err.code] ?? 'api-error';
    return { ok: false, problem, message: err.message, code: err.code };
  }
}
