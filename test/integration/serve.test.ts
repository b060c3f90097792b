import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SourcePool } from '../../src/mongo/sources.ts';
import { buildServer, type ServeHandle } from '../../src/serve/server.ts';
import { loadOlorinDemo, type OlorinFixture } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

const TOKEN = 'test-token-7f3a';
let server: TestServer;
let demo: OlorinFixture;
let pool: SourcePool;
let serve: ServeHandle;
let base: string;

beforeAll(async () => {
  server = await startTestServer();
  demo = await loadOlorinDemo(server, { graceDays: 0 });
  pool = new SourcePool(demo.config.sources);
  serve = await demoServer({ logLevel: 'silent' });
  base = await serve.app.listen({ host: '127.0.0.1', port: 0 });
});
/** `serve` on the suite's demo data, writable, with its own backup root; `extra` changes what a test needs. */
async function demoServer(extra: Partial<Parameters<typeof buildServer>[0]>) {
  return buildServer({
    config: demo.config,
    pool,
    access: { readOnly: false },
    token: TOKEN,
    openHealth: false,
    backupRoot: await mkdtemp(join(tmpdir(), 'oc-serve-')),
    batchSize: 100,
    ...extra,
  });
}

afterEach(async () => {
  await server.client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' });
});
afterAll(async () => {
  await serve?.shutdown();
  await pool?.close();
  await server?.stop();
});

async function call(method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) };
}

async function finished(id: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const run = (await call('GET', `/api/v1/runs/${id}`)).json();
    if (run.status === 'succeeded' || run.status === 'failed') return run;
    if (Date.now() > deadline) throw new Error(`run ${id} did not finish`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('serve', () => {
  it('wants the bearer token, and says nothing about why it is refused', async () => {
    for (const token of [null, 'wrong', `${TOKEN}x`]) {
      const response = await call('GET', '/healthz', undefined, token);
      expect(response.status).toBe(401);
      expect(response.json()).toEqual({ error: 'unauthorized' });
    }
    const ok = await call('GET', '/healthz');
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({
      status: 'ok',
      sources: { olorin: 'ok', bayit: 'ok' },
      // The heartbeats the console shows, per source.
      liveness: { olorin: { answering: true }, bayit: { answering: true } },
    });
    expect(ok.json().liveness.olorin.quietSeconds).toBeLessThanOrEqual(3);
  });

  it('runs a scan in the background and shows its result', async () => {
    const accepted = await call('POST', '/api/v1/scan', { relations: ['recap_sessions'] });
    expect(accepted.status).toBe(202);
    const run = await finished(accepted.json().id);
    expect(run).toMatchObject({ kind: 'scan', status: 'succeeded', relations: ['recap_sessions'] });
    expect(run.counts.recap_sessions).toMatchObject({ scanned: 435, orphans: 32, deletable: 32 });
    const metrics = parsePrometheus((await call('GET', '/metrics')).text);
    const documents = metrics.find((m) => m.name === 'orphan_cleanup_documents')!;
    expect(documents.type).toBe('GAUGE');
    expect(documents.metrics).toContainEqual({
      labels: { relation: 'recap_sessions', category: 'orphans' },
      value: '32',
    });
  });

  it('plans without deleting unless execute is true', async () => {
    const accepted = await call('POST', '/api/v1/cleanup', { relations: ['recap_sessions'] });
    const run = await finished(accepted.json().id);
    expect(run.counts.recap_sessions).toEqual({ deletable: 32, toDelete: 32, deferred: 0 });
    expect(run.backupPath).toBeUndefined();
    expect(await server.client.db(demo.olorinDb).collection('recap_sessions').countDocuments()).toBe(435);
  });

  it('executes a cleanup with a backup, and refuses an overlapping one with 409', async () => {
    await server.client.db('admin').command({
      configureFailPoint: 'failCommand',
      mode: 'alwaysOn',
      data: { failCommands: ['delete'], blockConnection: true, blockTimeMS: 200 },
    });
    const first = await call('POST', '/api/v1/cleanup', { relations: ['content_embeddings'], execute: true });
    expect(first.status).toBe(202);
    const second = await call('POST', '/api/v1/cleanup', { execute: true });
    expect(second.status).toBe(409);
    expect(second.json()).toEqual({
      error: 'a cleanup of these relations is already running',
      runningId: first.json().id,
    });
    await server.client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' });
    const run = await finished(first.json().id);
    expect(run.status).toBe('succeeded');
    expect(run.counts.content_embeddings).toMatchObject({ toDelete: 600, backedUp: 600, deleted: 600 });
    expect(run.backupPath).toMatch(/oc-serve-/);
    const metrics = parsePrometheus((await call('GET', '/metrics')).text);
    expect(metrics.find((m) => m.name === 'orphan_cleanup_deleted_documents')!.metrics).toContainEqual({
      labels: { relation: 'content_embeddings' },
      value: '600',
    });
  });

  it('answers bad requests with 400 and a clear message, never a stack trace', async () => {
    const wrongType = await call('POST', '/api/v1/cleanup', { relations: 'content_embeddings' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.json().error).toMatch(/^invalid request body: body\/relations must be array/);
    const unknown = await call('POST', '/api/v1/scan', { relations: ['nope'] });
    expect(unknown.status).toBe(400);
    expect(unknown.json()).toEqual({ error: 'unknown relation nope' });
    const broken = await call('POST', '/api/v1/scan', '{"relations": [');
    expect(broken.status).toBe(400);
    expect(broken.text).not.toMatch(/at .*\.(js|ts):\d+/);
    const huge = await call('POST', '/api/v1/scan', { relations: ['x'.repeat(20_000)] });
    expect(huge.status).toBe(413);
    expect((await call('GET', '/api/v1/runs/nope')).status).toBe(404);
  });

  it('refuses a misspelt field instead of running a dry run, and a token in the URL', async () => {
    const typo = await call('POST', '/api/v1/cleanup', { exceute: true });
    expect(typo.status).toBe(400);
    expect(typo.json().error).toMatch(/^invalid request body: body must NOT have additional properties/);
    const inUrl = await call('GET', `/api/v1/runs?token=${TOKEN}`, undefined, null);
    expect(inUrl.status).toBe(400);
    expect(inUrl.json()).toEqual({
      error: 'send the token in the Authorization header (Bearer), never in the URL',
    });
    // Issue 25 item 7: a pattern, not a list — by name, and by a value that is a credential whatever its name.
    for (const query of [
      `X-Api-Key=${TOKEN}`,
      `client_secret=${TOKEN}`,
      `password=${TOKEN}`,
      `sessionId=${TOKEN}`,
      `sig=${TOKEN}`,
      `jwt=${TOKEN}`,
      `x=${encodeURIComponent(`Bearer ${TOKEN}`)}`,
      `uri=${encodeURIComponent('mongodb://admin:hunter2@db.example:27017/')}`,
    ]) {
      const refused = await call('GET', `/api/v1/runs?${query}`);
      expect(refused.status, query).toBe(400);
    }
    expect((await call('GET', '/api/v1/runs?relation=x')).status).toBe(200);
  });
});

describe('a request that trickles in', () => {
  it('is cut after the request timeout, even with a valid token', async () => {
    process.env.ORPHAN_CLEANUP_SERVE_REQUEST_TIMEOUT_SECONDS = '2';
    const slow = await demoServer({ logLevel: 'silent' });
    delete process.env.ORPHAN_CLEANUP_SERVE_REQUEST_TIMEOUT_SECONDS;
    const address = new URL(await slow.app.listen({ host: '127.0.0.1', port: 0 }));
    try {
      const socket = connect(Number(address.port), address.hostname);
      let answer = '';
      socket.on('data', (chunk) => {
        answer += chunk;
      });
      const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
      await new Promise((resolve) => socket.on('connect', resolve));
      const started = Date.now();
      socket.write(
        `POST /api/v1/scan HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n`,
      );
      // One byte every 300 ms: never the whole body.
      const trickle = setInterval(() => {
        if (!socket.destroyed) socket.write(' ');
      }, 300);
      const end = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(0), 10_000))]);
      clearInterval(trickle);
      socket.destroy();
      expect(end, 'the connection was never cut').toBeGreaterThan(0);
      expect(end - started).toBeLessThan(5000);
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      await slow.shutdown();
    }
  });
});

describe('serve under load and mistakes', () => {
  it('never forgets a running job, keeps its 409, and logs URLs without their query strings', async () => {
    const lines: string[] = [];
    const logStream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const small = await demoServer({ logLevel: 'info', logStream, maxJobsKept: 3 });
    const url = await small.app.listen({ host: '127.0.0.1', port: 0 });
    const to = (method: string, path: string, body?: unknown) =>
      fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
    try {
      await server.client.db('admin').command({
        configureFailPoint: 'failCommand',
        mode: 'alwaysOn',
        // The cleanup's delete takes 3 s: it is still running while the scans below come and go.
        data: { failCommands: ['delete'], blockConnection: true, blockTimeMS: 3000 },
      });
      const running = (
        await (await to('POST', '/api/v1/cleanup', { relations: ['recap_sessions'], execute: true })).json()
      ).id;
      // More finished jobs than the table keeps.
      for (let i = 0; i < 5; i++) {
        const { id } = await (await to('POST', '/api/v1/scan', { relations: ['dubbing_sessions'] })).json();
        for (;;) {
          const job = await (await to('GET', `/api/v1/runs/${id}`)).json();
          if (job.status === 'succeeded' || job.status === 'failed') break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const kept = await to('GET', `/api/v1/runs/${running}`);
      expect(kept.status).toBe(200);
      expect(['queued', 'running']).toContain((await kept.json()).status);
      const overlapping = await to('POST', '/api/v1/cleanup', {
        relations: ['recap_sessions'],
        execute: true,
      });
      expect(overlapping.status).toBe(409);
      expect((await (await to('GET', '/api/v1/runs')).json()).runs).toHaveLength(3);
      await to('GET', '/api/v1/runs?page=2&secret=hunter2');
    } finally {
      await server.client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' });
      await small.shutdown();
    }
    const logged = lines.join('');
    expect(logged).toContain('"url":"/api/v1/runs"');
    expect(logged).not.toContain('hunter2');
    expect(logged).not.toContain(TOKEN);
  });

  it("keeps a failing source's password out of the runs it reports and the metrics", async () => {
    const password = 'Leak Me@99';
    const leaky = {
      ...demo.config,
      sources: {
        ...demo.config.sources,
        bayit: {
          ...demo.config.sources.bayit,
          uri: server.uri.replace('mongodb://', `mongodb://alice:${encodeURIComponent(password)}@`),
        },
      },
    };
    const leakyPool = new SourcePool(leaky.sources);
    const handle = buildServer({
      config: leaky,
      pool: leakyPool,
      access: { readOnly: true },
      token: TOKEN,
      openHealth: false,
      batchSize: 100,
      logLevel: 'silent',
    });
    const url = await handle.app.listen({ host: '127.0.0.1', port: 0 });
    const get = (path: string, init: RequestInit = {}) =>
      fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });
    try {
      const { id } = await (
        await get('/api/v1/scan', {
          method: 'POST',
          body: '{}',
          headers: { 'content-type': 'application/json' },
        })
      ).json();
      let job: Record<string, unknown> = {};
      for (let i = 0; i < 200 && job.status !== 'failed' && job.status !== 'succeeded'; i++) {
        job = await (await get(`/api/v1/runs/${id}`)).json();
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(job.status).toBe('failed');
      expect(String(job.error)).toContain('mongodb://****@');
      const everything = `${await (await get('/api/v1/runs')).text()}${await (await get('/metrics')).text()}`;
      for (const part of ['Leak', 'Me@99', encodeURIComponent(password)])
        expect(everything).not.toContain(part);
    } finally {
      await handle.shutdown();
      await leakyPool.close();
    }
  });
});
