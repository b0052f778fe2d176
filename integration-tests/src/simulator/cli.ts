#!/usr/bin/env node
/**
 * `ic-appliance-sim`: runs the appliance simulator until stopped and prints one JSON line
 * {"url","host","clientId","clientSecret"} (plus "caFile" for HTTPS) so scripts can point a site at it.
 */
import { parseArgs } from 'node:util';
import { ApplianceSimulator } from './appliance-simulator.js';

const HELP = `usage: ic-appliance-sim [options]

  --port <n>             port on 127.0.0.1 (0 = any free port)        [0]
  --sessions <n>         sessions in the population                  [100]
  --seed <n>             data seed                                    [42]
  --events <n>           events per session                           [12]
  --http                 plain HTTP instead of HTTPS
  --namespace rs|pra|none                                             [rs]
  --no-data empty|error-en|error-fr   how "nothing matched" is answered [empty]
  --token-lifetime <s>                                                [3600]
  --recording-bytes <n>                                               [65536]
  --client-id <id> --client-secret <secret>
  --latency <ms> --rate-5xx <p> --rate-429 <p> --rate-reset <p> --rate-truncate <p> --rate-malformed <p>
  --help

example: npx ic-appliance-sim --port 0 --sessions 1000 --seed 42`;

const { values: v } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    sessions: { type: 'string', default: '100' },
    seed: { type: 'string', default: '42' },
    events: { type: 'string', default: '12' },
    http: { type: 'boolean', default: false },
    namespace: { type: 'string', default: 'rs' },
    'no-data': { type: 'string', default: 'empty' },
    'token-lifetime': { type: 'string', default: '3600' },
    'recording-bytes': { type: 'string', default: '65536' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    latency: { type: 'string', default: '0' },
    'rate-5xx': { type: 'string', default: '0' },
    'rate-429': { type: 'string', default: '0' },
    'rate-reset': { type: 'string', default: '0' },
    'rate-truncate': { type: 'string', default: '0' },
    'rate-malformed': { type: 'string', default: '0' },
    help: { type: 'boolean', default: false },
  },
});
if (v.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const sim = new ApplianceSimulator({
  sessions: Number(v.sessions),
  seed: Number(v.seed),
  eventsPerSession: Number(v.events),
  https: !v.http,
  namespace: v.namespace as 'rs',
  noData: v['no-data'] as 'empty',
  tokenLifetime: Number(v['token-lifetime']),
  recordingBytes: Number(v['recording-bytes']),
  ...(v['client-id'] ? { clientId: v['client-id'] } : {}),
  ...(v['client-secret'] ? { clientSecret: v['client-secret'] } : {}),
  faults: {
    latencyMs: Number(v.latency),
    error5xx: Number(v['rate-5xx']),
    rate429: Number(v['rate-429']),
    reset: Number(v['rate-reset']),
    truncate: Number(v['rate-truncate']),
    malformed: Number(v['rate-malformed']),
  },
});
const address = await sim.start(Number(v.port));
process.stdout.write(`${JSON.stringify({ ...address, ...(v.http ? {} : { caFile: ApplianceSimulator.caFile }) })}\n`);
const stop = () => void sim.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
