// file-write: a 1 GB recording stream written through the File System plugin (temp file, fsync, byte check,
// atomic link into place) against a raw fs stream copy of the same bytes, measured in the same run.
// Target: ratio >= 0.8, and peak RSS flat (growth during the write well under the stream size).
// The plugin acknowledges only durable data, so it fsyncs; the floor is therefore the raw copy + fsync (the same
// guarantee). The ratio to a raw copy without fsync (which only reaches the page cache) is printed as well.
// `sync` runs before every timed run so no run pays for the previous one's dirty pages.
// Usage: npm run bench -- file-write [sizeMiB=1024]
import { execSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createFakeContext, sampleStream } from '@integration-client/plugin-sdk/testing';
import plugin from '../dist/index.js';

const sizeMiB = Number(process.argv[2] ?? 1024);
const bytes = sizeMiB * 1024 * 1024;
const work = await mkdtemp(join(tmpdir(), 'ic-bench-file-write-'));
const source = join(work, 'source.flv');

function rssSampler() {
  const base = process.memoryUsage.rss();
  let peak = base;
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  return () => {
    clearInterval(t);
    return { base, peak, growth: peak - base };
  };
}

async function timed(label, fn) {
  execSync('sync');
  globalThis.gc?.();
  const stop = rssSampler();
  const t0 = process.hrtime.bigint();
  await fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const rss = stop();
  const mbps = bytes / 1024 / 1024 / s;
  console.log(
    `${label.padEnd(34)} ${s.toFixed(2)} s  ${mbps.toFixed(0)} MiB/s  peak RSS ${(rss.peak / 2 ** 20).toFixed(0)} MiB (+${(rss.growth / 2 ** 20).toFixed(0)})`,
  );
  return { s, mbps, rss };
}

try {
  await pipeline(sampleStream(bytes, { chunkSize: 1024 * 1024 }), createWriteStream(source));
  const ctx = createFakeContext({
    config: {
      destinationDirectory: join(work, 'out'),
      createDirectory: true,
      downloadFormat: 'default',
      fileNameConflictHandling: 'AppendNumber',
    },
    dataDir: work,
  });
  const dest = await plugin.create(ctx);
  const handler = dest.handlers['session-recording'];
  const deliver = () =>
    handler(
      {
        operation: 'session-recording',
        site: { host: 'bench' },
        meta: { siteHost: 'bench', lsid: 'x', extension: 'flv', byteLength: bytes },
        stream: createReadStream(source, { highWaterMark: 1024 * 1024 }),
      },
      { signal: new AbortController().signal },
    );
  // Every run writes a new file, as the plugin does; the previous run's output is removed (and synced) first.
  const copy = async (flush) => {
    await pipeline(
      createReadStream(source, { highWaterMark: 1024 * 1024 }),
      createWriteStream(join(work, `copy-${flush}.flv`), { flush, highWaterMark: 1024 * 1024 }),
    );
  };
  const clean = async () => {
    await rm(join(work, 'out'), { recursive: true, force: true });
    await rm(join(work, 'copy-true.flv'), { force: true });
    await rm(join(work, 'copy-false.flv'), { force: true });
  };

  console.log(`file-write: ${sizeMiB} MiB, source on ${work}`);
  // Alternate runs so page-cache and disk state affect all sides alike; compare medians (this VM's disk is noisy).
  const floor = [];
  const floorSync = [];
  const plug = [];
  const variants = [
    [floor, 'raw fs stream copy', () => copy(false)],
    [floorSync, 'raw fs stream copy + fsync', () => copy(true)],
    [
      plug,
      'through the plugin (fsync, atomic)',
      async () => {
        const ack = await deliver();
        if (ack.bytes !== bytes) throw new Error(`ack says ${ack.bytes} bytes`);
      },
    ],
  ];
  // The order rotates every round so no variant always follows the same one.
  for (let i = 0; i < 6; i++) {
    await clean();
    for (let k = 0; k < variants.length; k++) {
      const [into, label, fn] = variants[(i + k) % variants.length];
      into.push(await timed(label, fn));
    }
  }
  const best = (xs) => {
    const v = xs.map((x) => x.mbps).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)];
  };
  const value = best(plug);
  const floorValue = best(floorSync);
  const ratio = value / floorValue;
  const growth = Math.max(...plug.map((x) => x.rss.growth)) / 2 ** 20;
  console.log(
    `ratio to raw copy + fsync (floor): ${ratio.toFixed(2)}; to raw copy without fsync: ${(value / best(floor)).toFixed(2)}; peak RSS growth through the plugin: ${growth.toFixed(0)} MiB for a ${sizeMiB} MiB stream`,
  );
  const pass = ratio >= 0.8 && growth < 64;
  console.log(
    JSON.stringify({
      name: 'file-write',
      metric: 'throughput, durable (fsync)',
      value: Number(value.toFixed(1)),
      unit: 'MiB/s',
      floor: Number(floorValue.toFixed(1)),
      ratio: Number(ratio.toFixed(3)),
      target: 0.8,
      pass,
      rssGrowthMiB: Number(growth.toFixed(1)),
      ratioNoFsync: Number((value / best(floor)).toFixed(3)),
    }),
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
