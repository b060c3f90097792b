import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourcePool } from '../../src/mongo/sources.ts';
import { buildServer, type ServeHandle } from '../../src/serve/server.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';
import { mutate, scanCounts, type WatchWorld, watchWorld } from '../support/watch-fixture.ts';

let server: TestServer;
let world: WatchWorld;
let pool: SourcePool;
let serve: ServeHandle;
let base: string;
const logs: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0' });
  // A low growth threshold, so one deleted parent crosses it.
  world = await watchWorld(server, 'serve', 7, { growthAlertPerDay: 3 });
  const { config } = world;
  pool = new SourcePool(config.sources);
  serve = buildServer({
    config,
    pool,
    access: { readOnly: false },
    openHealth: true,
    backupRoot: await mkdtemp(join(tmpdir(), 'oc-serve-watch-')),
    batchSize: 100,
    watch: true,
    logLevel: 'info',
    logStream: new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
        done();
      },
    }),
  });
  base = await serve.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await serve?.shutdown();
  await pool?.close();
  await server?.stop();
});

async function metrics(): Promise<Record<string, Record<string, number>>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, Record<string, number>> = {};
  for (const family of parsePrometheus(text))
    for (const metric of family.metrics as { labels?: Record<string, string>; value: string }[]) {
      const key = Object.values(metric.labels ?? {}).join('/');
      out[family.name] ??= {};
      out[family.name][key] = Number(metric.value);
    }
  return out;
}

async function startScan(): Promise<{ id: string }> {
  const response = await fetch(`${base}/api/v1/scan`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  expect(response.status).toBe(202);
  return response.json();
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`never ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('serve --watch', () => {
  it('keeps /metrics current between scans, alerts on growth when it crosses the threshold, and drift-checks each scan', async () => {
    let m = await until(
      metrics,
      (x) => x.orphan_cleanup_live?.embeddings === 1 && x.orphan_cleanup_live?.dubbing === 1,
      'live',
    );
    // A scan: the documents gauge is the scan's (equal to the live counts when nothing moves).
    const scan = await startScan();
    await until(
      async () => (await (await fetch(`${base}/api/v1/runs/${scan.id}`)).json()).status,
      (status) => status === 'succeeded',
      'scanned',
    );
    m = await metrics();
    const scanned = await scanCounts(world.config);
    expect(m.orphan_cleanup_documents['embeddings/orphans']).toBe(scanned.embeddings.orphans);
    expect(logs.some((l) => /drifted/.test(String(l.msg)))).toBe(false);

    // A parent with children is deleted: the gauge follows without a scan, and the growth alert fires once.
    const content = world.parentDb.collection('content');
    const embeddings = world.childDb.collection('embeddings');
    let victim: unknown;
    let children = 0;
    for (const id of world.contentIds.slice(4)) {
      const parent = await content.findOne({ _id: id, deleted_at: { $exists: false } });
      children = await embeddings.countDocuments({ content_id: { $in: [id, id.toHexString()] } });
      if (parent && children > 3) {
        victim = id;
        break;
      }
    }
    expect(victim).toBeDefined();
    await content.deleteOne({ _id: victim as never });
    m = await until(
      metrics,
      (x) => x.orphan_cleanup_documents['embeddings/orphans'] === scanned.embeddings.orphans + children,
      'counted the new orphans',
    );
    expect(m.orphan_cleanup_orphan_growth_per_day.embeddings).toBeGreaterThanOrEqual(children);
    const alerts = logs.filter((l) => /orphan growth alert: embeddings/.test(String(l.msg)));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ relation: 'embeddings', threshold: 3 });

    // More changes, then a scan: live and scanned agree, so no drift is logged.
    for (let i = 0; i < 60; i++) await mutate(world, i % 2 ? 'parent' : 'child');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const again = await startScan();
    await until(
      async () => (await (await fetch(`${base}/api/v1/runs/${again.id}`)).json()).status,
      (status) => status === 'succeeded',
      'scanned again',
    );
    expect(logs.filter((l) => /drifted/.test(String(l.msg)))).toEqual([]);
  });
});
