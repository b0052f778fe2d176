import { setFlagsFromString } from 'node:v8';

let tuned = false;

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
