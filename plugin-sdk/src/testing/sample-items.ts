import type { Item } from '../items.js';
import type { Operation } from '../operations.js';
import {
  samplePresentation,
  samplePresentationXml,
  sampleSession,
  sampleSessionXml,
  sampleStream,
  type SampleStream,
} from './samples.js';

/** Options for {@link sampleItem}. */
export interface SampleItemOptions {
  readonly streamBytes?: number;
  readonly failAfter?: number;
  readonly lsid?: string;
}

/** A sample item of an operation, and the stream inside it when it has one. */
export interface SampleItem {
  readonly item: Item;
  readonly stream?: SampleStream;
}

const site = { host: 'support.example.com', name: 'example' };

/** Builds a sample item for any operation. */
export function sampleItem(op: Operation, options: SampleItemOptions = {}): SampleItem {
  const session = sampleSession(options.lsid ? { lsid: options.lsid } : {});
  switch (op) {
    case 'session-data':
    case 'system-information':
      return { item: { operation: op, site, lsid: session.lsid, session, xml: sampleSessionXml(session) } };
    case 'presentation-data': {
      const presentation = samplePresentation(options.lsid ? { lsid: options.lsid } : {});
      return {
        item: { operation: op, site, lsid: presentation.lsid, presentation, xml: samplePresentationXml(presentation) },
      };
    }
    case 'site-backup': {
      const stream = sampleStream(options.streamBytes ?? 1024, options);
      const takenAt = new Date(Date.UTC(2024, 11, 3, 12, 0, 0)).toISOString();
      return {
        item: {
          operation: op,
          site,
          stream,
          meta: { siteHost: site.host, takenAt, extension: 'nsb', byteLength: options.streamBytes ?? 1024 },
        },
        stream,
      };
    }
    default: {
      const stream = sampleStream(options.streamBytes ?? 1024, options);
      const instance = op === 'command-shell-recording' || op === 'show-my-screen-recording' ? 0 : undefined;
      const meta = {
        siteHost: site.host,
        lsid: session.lsid,
        lseq: session.lseq,
        externalKey: session.externalKey,
        sessionType: session.sessionType,
        extension: 'flv',
        byteLength: options.streamBytes ?? 1024,
        ...(instance === undefined ? {} : { instance }),
      };
      return { item: { operation: op, site, stream, meta }, stream };
    }
  }
}
