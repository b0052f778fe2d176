/**
 * Whether a destination's File Name Formats can give two different items the same name. Found by rendering the
 * formats for stand-in items that differ the way real ones can: two sessions (the same external key, which need
 * not be unique), their XML, recording and two instances of each per-instance recording, a presentation with the
 * first session's sequence number (a separate sequence), and two backups. One site: LSEQ is unique per site only.
 */
import type { FileOperation, Formats } from './config.js';
import { renderFileName, type TokenValues } from './file-name-format.js';

interface Sample {
  readonly what: string;
  readonly op: FileOperation;
  readonly values: TokenValues;
}

const NONE: TokenValues = {
  LSEQ: '',
  LSID: '',
  EXTERNAL_KEY: '',
  SESSION_TYPE: '',
  SUPPORT_SITE_HOST: 'support.example.com',
  INSTANCE: '',
  EXTENSION: '',
};

function sessionSamples(n: number, lseq: string, lsid: string): Sample[] {
  const s = { ...NONE, LSEQ: lseq, LSID: lsid, EXTERNAL_KEY: 'TICKET-1', SESSION_TYPE: 'support' };
  const of = `session ${n}'s`;
  return [
    { what: `${of} XML`, op: 'session-data', values: { ...s, EXTENSION: 'xml' } },
    { what: `${of} recording`, op: 'session-recording', values: { ...s, EXTENSION: 'flv' } },
    ...(['1', '2'] as const).flatMap((i): Sample[] => [
      {
        what: `${of} command-shell recording ${i}`,
        op: 'command-shell-recording',
        values: { ...s, INSTANCE: i, EXTENSION: 'flv' },
      },
      {
        what: `${of} Show My Screen recording ${i}`,
        op: 'show-my-screen-recording',
        values: { ...s, INSTANCE: i, EXTENSION: 'flv' },
      },
    ]),
  ];
}

const SAMPLES: readonly Sample[] = [
  ...sessionSamples(1, '101', 'c69a8e10bea9428f816cfababe9815fe'),
  ...sessionSamples(2, '102', '0b1f3d6a2c5e4f7a9b8c7d6e5f4a3b2c'),
  ...(['xml', 'flv'] as const).map((ext): Sample => ({
    what: `a presentation's ${ext === 'xml' ? 'XML' : 'recording'}`,
    op: ext === 'xml' ? 'presentation-data' : 'presentation-recording',
    values: {
      ...NONE,
      LSEQ: '101',
      LSID: '5d4c3b2a19f8e7d6c5b4a39281706f5e',
      SESSION_TYPE: 'presentation',
      EXTENSION: ext,
    },
  })),
  ...(['20241203T120000Z', '20241204T120000Z'] as const).map((time, i): Sample => ({
    what: `the backup of day ${i + 1}`,
    op: 'site-backup',
    values: {
      ...NONE,
      LSEQ: String(Date.parse('2024-12-03T12:00:00Z') / 1000 + i * 86400),
      LSID: time,
      SESSION_TYPE: 'backup',
      EXTENSION: 'nsb',
    },
  })),
];

/** The first two stand-in items that would get the same name, in words; undefined when every name differs. */
export function nameCollision(formats: Formats): string | undefined {
  const seen = new Map<string, string>();
  for (const s of SAMPLES) {
    const name = renderFileName(formats[s.op], s.values);
    const other = seen.get(name);
    if (other !== undefined) return `${other} and ${s.what} would both be named ${JSON.stringify(name)}`;
    seen.set(name, s.what);
  }
  return undefined;
}
