import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { simSession } from '../dist/simulator/index.js';
import { round, seconds, startSimulator } from './lib.mjs';
const mib = Number(process.argv[2] ?? 1024);
const bytes = mib * 1024 * 1024;
const sim = await startSimulator(['--sessions', '4', '--recording-bytes', String(bytes)]);
const { url, clientId, clientSecret, caFile } = sim.address;
const lsid = simSession({ seed: 42, sessions: 4, firstStart: Date.UTC(2024, 11, 1) / 1000, spacing: 600, eventsPerSession: 12 }, 0).lsid;
const token = JSON.parse(execFileSync('curl', ['-s','--cacert',caFile,'-u',`${clientId}:${clientSecret}`,'-d','grant_type=client_credentials',`${url}/oauth2/token`]).toString()).access_token;
const path = `/api/reporting?generate_report=SupportSessionRecording&lsid=${lsid}`;
const curl = () => { const out = execFileSync('curl', ['-s','-o','/dev/null','-w','%{size_download} %{ssl_verify_result}','--cacert',caFile,'-H',`Authorization: Bearer ${token}`,`${url}${path}`]).toString(); };
const tls = (opts) => new Promise((resolve, reject) => {
  const { hostname, port, host } = new URL(url);
  let n = 0;
  const extra = {};
  if (opts.onread) extra.onread = { buffer: Buffer.allocUnsafe(opts.onread), callback: (k) => { n += k; } };
  if (opts.ciphers) extra.ciphers = opts.ciphers;
  if (opts.maxVersion) extra.maxVersion = opts.maxVersion;
  const socket = connect({ host: hostname, port: Number(port), ca: readFileSync(caFile, 'utf8'), ...extra }, () => {
    if (opts.log) console.log(socket.getCipher());
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
  });
  if (!opts.onread) socket.on('data', (c) => (n += c.length));
  socket.on('error', reject);
  socket.on('end', () => (n >= bytes ? resolve() : reject(new Error(`raw TLS got ${n} bytes`))));
  socket.on('close', () => (n >= bytes ? resolve() : reject(new Error(`raw TLS got ${n} bytes`))));
});
await tls({ log: true });
const variants = {
  curl: curl,
  data: () => tls({}),
  onread64k: () => tls({ onread: 65536 }),
  onread1m: () => tls({ onread: 1 << 20 }),
  aes128: () => tls({ ciphers: 'TLS_AES_128_GCM_SHA256' }),
};
const runs = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let i = 0; i < 3; i++) for (const [k, f] of Object.entries(variants)) runs[k].push(round(mib / (await seconds(f)).s));
console.log(runs);
sim.stop();
