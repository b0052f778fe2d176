// parse: a generated SupportSession report of >= 100 MB parsed by the streaming report parser, against a bare
// saxes pass with no handlers over the same bytes (the floor), measured in the same run. Also prints the raw read
// rate of the bytes. Target: ratio >= 0.5. Usage: npm run bench -- parse [MB=110]
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { SaxesParser } from 'saxes';
import { parseReport } from '@integration-client/core';
import { rootStart, sessionXml, simSession } from '../dist/simulator/index.js';
import { result, round, seconds } from './lib.mjs';

const targetMB = Number(process.argv[2] ?? 110);
const dir = await mkdtemp(join(tmpdir(), 'ic-bench-parse-'));
const file = join(dir, 'report.xml');
const population = {
  seed: 7,
  sessions: 1e9,
  firstStart: Date.UTC(2024, 0, 1) / 1000,
  spacing: 60,
  eventsPerSession: 50,
};
const HWM = 1 << 20;

try {
  const out = createWriteStream(file);
  out.write(rootStart('session_list', 'rs'));
  let bytes = 0;
  let sessions = 0;
  while (bytes < targetMB * 1e6) {
    const xml = sessionXml(simSession(population, sessions++), 2e9, 'support.example.com');
    bytes += Buffer.byteLength(xml);
    if (!out.write(xml)) await once(out, 'drain');
  }
  out.end('</session_list>\n');
  await once(out, 'finish');
  const size = (await stat(file)).size;
  const mb = size / 1e6;
  console.log(`parse: ${round(mb)} MB report, ${sessions} sessions (50 events each)`);

  const read = async () => {
    for await (const chunk of createReadStream(file, { highWaterMark: HWM })) void chunk;
  };
  const bare = async () => {
    const p = new SaxesParser({ position: true });
    const d = new TextDecoder();
    for await (const c of createReadStream(file, { highWaterMark: HWM })) p.write(d.decode(c, { stream: true }));
    p.close();
  };
  let parsed = 0;
  const full = async () => {
    parsed = 0;
    for await (const item of parseReport(createReadStream(file, { highWaterMark: HWM }), 'session', {
      siteHost: 'support.example.com',
    })) {
      if (!item.ok) throw item.error;
      parsed++;
    }
  };
  const runs = { read: [], bare: [], full: [] };
  for (let i = 0; i < 3; i++) {
    runs.read.push((await seconds(read)).s);
    runs.bare.push((await seconds(bare)).s);
    runs.full.push((await seconds(full)).s);
  }
  if (parsed !== sessions) throw new Error(`parsed ${parsed} of ${sessions} sessions`);
  const best = (xs) => Math.min(...xs);
  const rate = (s) => mb / s;
  console.log(`raw read of the bytes        ${round(rate(best(runs.read)))} MB/s`);
  console.log(`bare saxes pass (floor)      ${round(rate(best(runs.bare)))} MB/s`);
  console.log(
    `report parser                ${round(rate(best(runs.full)))} MB/s, ${Math.round(sessions / best(runs.full))} sessions/s`,
  );
  result('parse', 'throughput', rate(best(runs.full)), 'MB/s', rate(best(runs.bare)), 0.5, {
    sessionsPerSecond: Math.round(sessions / best(runs.full)),
    rawReadMBps: round(rate(best(runs.read))),
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
