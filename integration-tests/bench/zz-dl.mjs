import { execFileSync } from 'node:child_process';
import { readFileSync, createWriteStream } from 'node:fs';
import { connect } from 'node:tls';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';
import { createLogger, downloadRecording, SiteClient } from '@integration-client/core';
import { simSession } from '../dist/simulator/index.js';
import { round, seconds, startSimulator } from './lib.mjs';
const mib = Number(process.argv[2] ?? 1024);
const only = process.argv[3]?.split(',');
const bytes = mib * 1024 * 1024;
const sim = await startSimulator(['--sessions', '4', '--recording-bytes', String(bytes)]);
const { url, clientId, clientSecret, caFile } = sim.address;
const ca = readFileSync(caFile, 'utf8');
const lsid = simSession({ seed: 42, sessions: 4, firstStart: Date.UTC(2024, 11, 1) / 1000, spacing: 600, eventsPerSession: 12 }, 0).lsid;
const token = JSON.parse(execFileSync('curl', ['-s','--cacert',caFile,'-u',`${clientId}:${clientSecret}`,'-d','grant_type=client_credentials',`${url}/oauth2/token`]).toString()).access_token;
const path = `/api/reporting?generate_report=SupportSessionRecording&lsid=${lsid}`;
const client = await SiteClient.create({ site: { ...sim.address }, logger: createLogger({ level: 'warn' }) });
const agent = new Agent({ pipelining: 0, connect: { ca } });
const variants = {
  curl: () => { execFileSync('curl', ['-s','-o','/dev/null','--cacert',caFile,'-H',`Authorization: Bearer ${token}`,`${url}${path}`]); },
  onread: () => new Promise((resolve, reject) => {
    const { hostname, port, host } = new URL(url); let n = 0;
    const socket = connect({ host: hostname, port: Number(port), ca, onread: { buffer: Buffer.allocUnsafe(65536), callback: (k) => { n += k; } } }, () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`));
    socket.on('error', reject); socket.on('close', () => (n >= bytes ? resolve() : reject(new Error(`got ${n}`))));
  }),
  undiciReq: async () => { const r = await request(`${url}${path}`, { headers: { authorization: `Bearer ${token}` }, dispatcher: agent }); let n = 0; for await (const c of r.body) n += c.length; if (n !== bytes) throw new Error('n'); },
  undiciDispatch: () => new Promise((resolve, reject) => { let n = 0; const u = new URL(url);
    agent.dispatch({ origin: u.origin, path, method: 'GET', headers: { authorization: `Bearer ${token}` } }, {
      onConnect() {}, onError: reject, onHeaders() { return true; }, onData(c) { n += c.length; return true; }, onComplete() { n === bytes ? resolve() : reject(new Error('n')); }, onUpgrade() {} }); }),
  httpsGet: () => new Promise((resolve, reject) => { https.get(`${url}${path}`, { ca, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => { let n = 0; res.on('data', (c) => (n += c.length)); res.on('end', () => n === bytes ? resolve() : reject(new Error('n'))); }).on('error', reject); }),
  protoDevNull: async () => {
    const { Readable } = await import('node:stream');
    const { hostname, port, host } = new URL(url);
    let cur = Buffer.allocUnsafe(262144), len = 0, head = true, n = 0, timer;
    const body = new Readable({ highWaterMark: 1 << 20, read() { socket.resume(); } });
    const flush = () => { clearTimeout(timer); timer = undefined; if (!len) return; const b = len === cur.length ? cur : cur.subarray(0, len); cur = Buffer.allocUnsafe(262144); len = 0; if (!body.push(b)) socket.pause(); };
    const socket = connect({ host: hostname, port: Number(port), ca, onread: { buffer: Buffer.allocUnsafe(65536), callback: (k, buf) => {
      let off = 0;
      if (head) { const i = buf.subarray(0, k).indexOf('\r\n\r\n'); off = i + 4; head = false; }
      while (off < k) { const m = Math.min(k - off, cur.length - len); buf.copy(cur, len, off, off + m); len += m; off += m; n += m; if (len === cur.length) flush(); }
      timer ??= setTimeout(flush, 20);
    } } }, () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`));
    socket.on('close', () => { flush(); body.push(null); });
    if (process.env.SINK === 'noop') { for await (const c of body); } else if (process.env.SINK === 'sync') { const { openSync, writeSync } = await import('node:fs'); const fd = openSync('/dev/null', 'w'); for await (const c of body) writeSync(fd, c); } else await pipeline(body, createWriteStream('/dev/null'));
    if (n !== bytes) throw new Error('n ' + n);
  },
  protoGen: async () => {
    const { Readable } = await import('node:stream');
    const { hostname, port, host } = new URL(url);
    const SZ = +(process.env.SZ ?? 262144);
    let cur = Buffer.allocUnsafeSlow(SZ), len = 0, head = true, n = 0, timer, start = 0;
    const body = new Readable({ highWaterMark: 1 << 20, read() { if (socket.isPaused()) socket.resume(); } });
    const flush = () => { clearTimeout(timer); timer = undefined; if (len === start) return; const b = cur.subarray(start, len); start = len; if (cur.length - len < 16384) { cur = Buffer.allocUnsafeSlow(SZ); len = start = 0; } if (!body.push(b)) socket.pause(); };
    const socket = connect({ host: hostname, port: Number(port), ca, onread: { buffer: () => cur.subarray(len), callback: (k, buf) => {
      if (head) { const i = buf.subarray(0, k).indexOf('\r\n\r\n') + 4; head = false; start = len + i; }
      len += k; n += k;
      if (cur.length - len < 16384) flush();
      else timer ??= setTimeout(flush, 20);
    } } }, () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`));
    socket.on('close', () => { flush(); body.push(null); });
    if (process.env.SINK === 'noop') { for await (const c of body); } else if (process.env.SINK === 'sync') { const { openSync, writeSync } = await import('node:fs'); const fd = openSync('/dev/null', 'w'); for await (const c of body) writeSync(fd, c); } else await pipeline(body, createWriteStream('/dev/null'));
  },
  oursNoop: async () => { const d = await downloadRecording(client, 'session', lsid); let n = 0; for await (const c of d.stream) n += c.length; },
  oursDevNull: async () => { const d = await downloadRecording(client, 'session', lsid); await pipeline(d.stream, createWriteStream('/dev/null')); },
};
const names = only ?? Object.keys(variants);
const runs = Object.fromEntries(names.map((k) => [k, []]));
const cpu = Object.fromEntries(names.map((k) => [k, []]));
for (let i = 0; i < 3; i++) for (const k of names) { const c0 = process.cpuUsage(); runs[k].push(round(mib / (await seconds(variants[k])).s)); const c = process.cpuUsage(c0); cpu[k].push(round((c.user + c.system) / 1e6, 2)); }
for (const k of names) console.log(k.padEnd(16), runs[k].join('  '), '  cpu-s', cpu[k].join(' '));
await client.close(); await agent.close();
sim.stop();
