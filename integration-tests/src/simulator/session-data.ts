/**
 * Deterministic appliance data: session i of a simulator with seed S always has the same lsid, times, people,
 * events and recordings, so tests and benchmarks can predict what a pull must deliver.
 */

/** Every RS event type the seed guide lists (SQL `session_event.type`). */
export const EVENT_TYPES = [
  'Callback Button Deployed',
  'Callback Button Removed',
  'Chat Message',
  'Command Shell Session Started',
  'Conference Member Added',
  'Conference Member Departed',
  'Conference Member State Changed',
  'Conference Owner Changed',
  'Customer Exit Survey',
  'Directory Created',
  'External Key',
  'File Deleted',
  'File Download',
  'File Download Failed',
  'File Moved',
  'File Upload',
  'File Upload Failed',
  'Files Shared',
  'Foreground Window Changed',
  'Legal Agreement Response',
  'Registry Exported',
  'Registry Imported',
  'Registry Key Added',
  'Registry Key Deleted',
  'Registry Key Renamed',
  'Registry Value Added',
  'Registry Value Deleted',
  'Registry Value Modified',
  'Registry Value Renamed',
  'Remote Shell Session Started',
  'Representative Exit Survey',
  'Service Access Allowed',
  'Session Assigned',
  'Session Assignment Response',
  'Session End',
  'Session Note Added',
  'Session Start',
  'Show My Screen Recording',
  'System Information Retrieved',
] as const;

/** A 32-bit PRNG (mulberry32): same seed, same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The facts of one simulated session. */
export interface SimSession {
  readonly index: number;
  readonly lsid: string;
  readonly lseq: number;
  /** Unix seconds. */
  readonly start: number;
  readonly end: number;
  readonly externalKey: string;
  readonly hasRecording: boolean;
  readonly shellInstances: number;
  readonly smsInstances: number;
  readonly events: number;
}

/** Parameters of the generated population. */
export interface PopulationOptions {
  readonly seed: number;
  readonly sessions: number;
  /** Unix seconds of the first session's start. */
  readonly firstStart: number;
  /** Seconds between session starts. */
  readonly spacing: number;
  readonly eventsPerSession: number;
}

function hex32(rand: () => number): string {
  let s = '';
  for (let i = 0; i < 4; i++)
    s += Math.floor(rand() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  return s;
}

/** Session `index` (0-based) of the population. Cheap: derived from (seed, index) only. */
export function simSession(o: PopulationOptions, index: number): SimSession {
  const rand = prng(o.seed * 1_000_003 + index);
  const start = o.firstStart + index * o.spacing;
  const length = 120 + Math.floor(rand() * 3600);
  return {
    index,
    lsid: hex32(rand),
    lseq: index + 1,
    start,
    end: start + length,
    externalKey: index % 3 === 0 ? '' : `INC${String(100000 + index)}`,
    hasRecording: index % 4 !== 3,
    shellInstances: index % 5 === 0 ? 2 : index % 5 === 1 ? 1 : 0,
    smsInstances: index % 7 === 0 ? 1 : 0,
    events: o.eventsPerSession,
  };
}

const BLOCK = 64 * 1024;
const FLV_HEADER = Buffer.from([0x46, 0x4c, 0x56, 0x01, 0x05, 0x00, 0x00, 0x00, 0x09]);
const blocks = new Map<number, Buffer>();

function block(salt: number): Buffer {
  let b = blocks.get(salt);
  if (!b) {
    const rand = prng(salt);
    b = Buffer.allocUnsafe(BLOCK);
    for (let i = 0; i < BLOCK; i++) b[i] = Math.floor(rand() * 256);
    if (blocks.size > 64) blocks.clear();
    blocks.set(salt, b);
  }
  return b;
}

/**
 * Deterministic recording / backup bytes of `total` length, generated on the fly in 64 KiB chunks (a 1 GB file
 * never needs 1 GB of memory): an FLV header, then a block of pseudo-random bytes chosen by `salt`, repeated.
 */
export function* binaryChunks(total: number, salt: number): Generator<Buffer> {
  const b = block(salt);
  for (let offset = 0; offset < total; offset += BLOCK) {
    const n = Math.min(BLOCK, total - offset);
    if (offset === 0) {
      const first = Buffer.from(b.subarray(0, n));
      FLV_HEADER.copy(first, 0, 0, Math.min(FLV_HEADER.length, n));
      yield first;
    } else yield b.subarray(0, n);
  }
}
