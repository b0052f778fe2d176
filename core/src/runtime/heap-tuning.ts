import { setFlagsFromString } from 'node:v8';

let tuned = false;

/**
 * V8 flags the service is started with (they only act on node's command line: V8 sizes its heap before any code
 * runs, and Node refuses this one in NODE_OPTIONS). `--initial-old-space-size=128` puts a floor under the old
 * generation's limit. V8 counts ArrayBuffer memory allocated since the last full collection against that limit. A
 * download allocates its body as ArrayBuffers (1 MiB chunks, ADR 012), so with the limit just above the live heap V8
 * ran a full collection every 15–60 MiB downloaded (16–32 per GiB in stop 21: 0.67 of curl's rate instead of 0.94).
 * With the floor there were none, and the report parser was not slower (ADR 011, stop 20).
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/** The SERVICE_NODE_FLAGS this process was not started with. */
export function missingServiceNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const name = (flag: string) => flag.split('=')[0]!.replaceAll('_', '-');
  return SERVICE_NODE_FLAGS.filter((f) => !execArgv.some((a) => name(a) === name(f)));
}

/**
 * V8 settings for a process that streams reports: call once at start-up (the `ic` CLI does; the benchmarks do, to
 * measure the same process).
 *
 * `--no-allocation-site-pretenuring`: V8 watches where objects are allocated and, when many from one place survive
 * a young-generation collection, allocates the later ones straight into the old generation. The report parser's
 * per-session trees are alive while their session is read, so a collection that lands mid-session convinced V8 to
 * pretenure them — and from then on every parsed session went to the old generation and stayed until the next full
 * collection: the old generation grew at the parse rate (~35 MB/s) and peak RSS with the report's length. Without
 * pretenuring they die young (old generation flat at the live set, ~28 MB; parsing a few % faster). The flag is
 * read by the collector at run time, so setting it after start is effective.
 */
export function tuneHeapForStreaming(): void {
  if (tuned) return;
  tuned = true;
  setFlagsFromString('--no-allocation-site-pretenuring');
}
