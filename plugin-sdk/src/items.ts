import type { Readable } from 'node:stream';
import type { Presentation, Session } from '@integration-client/schemas';

/** The site an item was pulled from. */
export interface SiteRef {
  /** Host name (the seed's %SUPPORT_SITE_HOST%). */
  readonly host: string;
  /** Name of the site configuration, for logs. */
  readonly name?: string;
}

/** `session-data`: one session's model and the exact XML of that session as the appliance sent it. */
export interface SessionDataItem {
  readonly operation: 'session-data';
  readonly site: SiteRef;
  /** The session's lsid (as `session.lsid`), readable without touching the model — see `modelJson`. */
  readonly lsid: string;
  readonly session: Session;
  /** A complete XML document: the report's root element (namespace kept) around this one `<session>`. */
  readonly xml: string;
}

/** `system-information`: the session whose events carry system information categories to store. */
export interface SystemInformationItem {
  readonly operation: 'system-information';
  readonly site: SiteRef;
  readonly lsid: string;
  readonly session: Session;
  readonly xml: string;
}

/** `presentation-data`: one presentation's model and its exact XML. */
export interface PresentationDataItem {
  readonly operation: 'presentation-data';
  readonly site: SiteRef;
  /** The presentation's lsid (as `presentation.lsid`), readable without touching the model. */
  readonly lsid: string;
  readonly presentation: Presentation;
  readonly xml: string;
}

/** Facts about a recording, for file names and logs. */
export interface RecordingMeta {
  readonly siteHost: string;
  readonly lsid: string;
  readonly lseq?: number;
  readonly externalKey?: string;
  readonly sessionType?: string;
  /** 0-based instance for command-shell and Show My Screen recordings. */
  readonly instance?: number;
  /** File extension without the dot, from the content (default `flv`). */
  readonly extension: string;
  /** Exact byte length when the appliance announced it. */
  readonly byteLength?: number;
  readonly contentType?: string;
}

/** A recording of any kind, as a stream that must be read to the end. */
export interface RecordingItem {
  readonly operation:
    'session-recording' | 'command-shell-recording' | 'show-my-screen-recording' | 'presentation-recording';
  readonly site: SiteRef;
  readonly meta: RecordingMeta;
  readonly stream: Readable;
}

/** Facts about a site backup. */
export interface BackupMeta {
  readonly siteHost: string;
  /** When the backup was taken (UTC ISO-8601). */
  readonly takenAt: string;
  /** `nsb`. */
  readonly extension: string;
  readonly byteLength?: number;
}

/** `site-backup`: the appliance's backup file as a stream. */
export interface BackupItem {
  readonly operation: 'site-backup';
  readonly site: SiteRef;
  readonly meta: BackupMeta;
  readonly stream: Readable;
}

/** The item each operation's handler receives. */
export interface ItemByOperation {
  'session-data': SessionDataItem;
  'system-information': SystemInformationItem;
  'presentation-data': PresentationDataItem;
  'session-recording': RecordingItem & { readonly operation: 'session-recording' };
  'command-shell-recording': RecordingItem & { readonly operation: 'command-shell-recording' };
  'show-my-screen-recording': RecordingItem & { readonly operation: 'show-my-screen-recording' };
  'presentation-recording': RecordingItem & { readonly operation: 'presentation-recording' };
  'site-backup': BackupItem;
}

/** Any item. */
export type Item = ItemByOperation[keyof ItemByOperation];
