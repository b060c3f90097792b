// npm run bench:serve — 2,000 requests to /metrics and /healthz at 50 concurrent while a cleanup runs.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { MongoClient } from 'mongodb';
import { OLORIN_PRESET } from '../src/config/presets/olorin.ts';
import { startSandboxProcess } from '../src/sandbox/process.ts';
import { report } from './support.ts';

const sandbox = await startSandboxProcess({ seed: 'olorin' });
const client = await new MongoClient(sandbox.uri).connect();
const work = await mkdtemp(join(tmpdir(), 'oc-bench-serve-'));
const configPath = join(work, 'config.json');
await writeFile(
  configPath,
  JSON.stringify({
    ...OLORIN_PRESET,
    sources: {
      olorin: { uri: sandbox.uri, database: 'olorin_platform' },
      bayit: { uri: sandbox.uri, database: 'bayit_plus' },
    },
  }),
);
const serve = spawn(
  process.execPath,
  [
    'bin/orphan-cleanup',
    'serve',
    '--no-auth',
    '--port',
    '0',
    '--config',
    configPath,
    '--grace-days',
    '0',
    '--batch-size',
    '10',
    '--backup-dir',
    join(work, 'backups'),
    '--log-level',
    'warn',
  ],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  },
);
let logs = '';
serve.stdout.on('data', (chunk) => {
  logs += chunk;
});
try {
  await client.db('admin').command({
    configureFailPoint: 'failCommand',
    mode: 'alwaysOn',
    data: { failCommands: ['delete'], blockConnection: true, blockTimeMS: 40 },
  });
  // Logs are at warn, so the port comes from the socket table.
  const port = await new Promise<number>((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(async () => {
      const { execSync } = await import('node:child_process');
      const out = execSync(`ss -ltnp 2>/dev/null | grep "pid=${serve.pid}," || true`).toString();
      const match = /127\.0\.0\.1:(\d+)/.exec(out);
      if (match) {
        clearInterval(poll);
        resolve(Number(match[1]));
      } else if (Date.now() - started > 20_000) {
        clearInterval(poll);
        reject(new Error(`serve did not start: ${logs}`));
      }
    }, 100);
  });
  const base = `http://127.0.0.1:${port}`;
  const accepted = await (
    await fetch(`${base}/api/v1/cleanup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ execute: true }),
    })
  ).json();
  process.stdout.write(
    `serve benchmark: 2,000 requests (/metrics and /healthz) at 50 concurrent while cleanup ${accepted.id} runs\n`,
  );
  const result = await autocannon({
    url: base,
    connections: 50,
    amount: 2000,
    requests: [
      { method: 'GET', path: '/metrics' },
      { method: 'GET', path: '/healthz' },
    ],
  });
  const run = await (await fetch(`${base}/api/v1/runs/${accepted.id}`)).json();
  report([
    [
      'requests',
      `${result.requests.total} (${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts)`,
    ],
    [
      'latency p50 / p99',
      `${result.latency.p50} ms / ${result.latency.p99} ms (max ${result.latency.max} ms)`,
    ],
    ['cleanup during the load', `${run.status}, ${JSON.stringify(run.counts ?? {})}`],
  ]);
} finally {
  await client
    .db('admin')
    .command({ configureFailPoint: 'failCommand', mode: 'off' })
    .catch(() => undefined);
  serve.kill('SIGTERM');
  await new Promise((resolve) => serve.once('close', resolve));
  await client.close();
  await sandbox.stop();
  await rm(work, { recursive: true, force: true });
}
