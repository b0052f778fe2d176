import { Worker } from 'node:worker_threads';
const t = () => performance.now();
for (const code of ["await import('/tmp/one.mjs')", "await import('@integration-client/schemas')", "await import('@integration-client/plugin-sdk')"]) {
  for (let i = 0; i < 3; i++) {
    const t0 = t();
    const w = new Worker(`import { parentPort } from 'node:worker_threads'; const t0 = performance.now(); ${code}; parentPort.postMessage(performance.now() - t0);`, { eval: true, type: 'module' });
    const inner = await new Promise((r) => w.once('message', r));
    if (i == 2) console.log(code.slice(0, 50).padEnd(50), 'ready', (t() - t0).toFixed(0), 'imports', inner.toFixed(0));
    await w.terminate();
  }
}
