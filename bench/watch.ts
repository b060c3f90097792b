// npm run bench:watch — live counts: how many change events per second the watcher applies on the sandbox, how
// long its start snapshot takes, and the lag from a parent delete (or its restore) to the updated orphan count.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient, ObjectId, type Timestamp } from 'mongodb';
import { loadConfig } from '../src/config/load.ts';
import { type LiveCounts, watchRelations } from '../src/engine/watch.ts';
import { SourcePool } from '../src/mongo/sources.ts';
import { startSandboxProcess } from '../src/sandbox/process.ts';
import { lastOplogTime, oplogWrites } from '../test/support/oplog.ts';
import { peakRssMb, rate, report, seconds } from './support.ts';

const CHILDREN = Number(process.env.BENCH_CHILDREN ?? 200_000);
const PARENTS = Number(process.env.BENCH_PARENTS ?? 20_000);
const BURST = Number(process.env.BENCH_BURST ?? 20_000);
const LAG_SAMPLES = Number(process.env.BENCH_LAG_SAMPLES ?? 40);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 30);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const sandbox = await startSandboxProcess({ replicaSet: 'bench' });
const client = new MongoClient(sandbox.uri);

/** The watcher's writes to its state collection after `since` (oplog entries and bytes). */
async function stateWrites(since: Timestamp): Promise<{ entries: number; bytes: number }> {
  const { entries, bytes } = await oplogWrites(client, 'bench_child.orphan_cleanup_watch', since);
  return { entries: entries.length, bytes };
}
const oplogNow = () => lastOplogTime(client);

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
try {
  const child = client.db('bench_child');
  const parent = client.db('bench_parent');
  const images = { changeStreamPreAndPostImages: { enabled: true } };
  await child.createCollection('embeddings', images);
  await parent.createCollection('content', images);
  await child.collection('embeddings').createIndex({ content_id: 1 });
  const parentIds = Array.from({ length: PARENTS }, () => new ObjectId());
  for (let i = 0; i < PARENTS; i += 10_000)
    await parent
      .collection('content')
      .insertMany(parentIds.slice(i, i + 10_000).map((_id) => ({ _id, title: 't' })));
  for (let done = 0; done < CHILDREN; done += 10_000)
    await child.collection('embeddings').insertMany(
      Array.from({ length: Math.min(10_000, CHILDREN - done) }, (_, i) => ({
        content_id: (done + i) % 20 === 0 ? new ObjectId() : parentIds[(done + i) % PARENTS],
        n: done + i,
      })),
      { ordered: false },
    );
  const dir = await mkdtemp(join(tmpdir(), 'oc-bench-watch-'));
  const configPath = join(dir, 'config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      sources: {
        child: { uri: sandbox.uri, database: 'bench_child' },
        parent: { uri: sandbox.uri, database: 'bench_parent' },
      },
      relations: [
        {
          name: 'bench',
          child: { source: 'child', collection: 'embeddings', field: 'content_id' },
          parent: { source: 'parent', collection: 'content' },
          keyMatch: 'objectid-or-hex',
        },
      ],
      maxOrphanRatio: 1,
    }),
  );
  const config = await loadConfig({ configPath });
  const pool = new SourcePool(config.sources);
  const controller = new AbortController();
  let latest: LiveCounts | undefined;
  const waiters = new Set<() => void>();
  const started = performance.now();
  const running = watchRelations({
    config,
    pool,
    // Writable, as `watch` and `serve --watch` run: the state it saves is measured.
    access: { readOnly: false },
    signal: controller.signal,
    onCounts: (live) => {
      latest = live;
      for (const wake of waiters) wake();
    },
    onNotice: (message) => process.stderr.write(`${message}\n`),
  });
  const until = (done: (live: LiveCounts) => boolean) =>
    new Promise<number>((resolve) => {
      const check = () => {
        if (latest && done(latest)) {
          waiters.delete(check);
          resolve(performance.now());
        }
      };
      waiters.add(check);
      check();
    });
  const startFrom = await oplogNow();
  await until(() => true);
  const startMs = performance.now() - started;
  // The first save after the start writes every unresolved reference once (in pages: seconds on a large
  // backlog); idle is measured once it has ended (no state written for 3 s).
  let startWrites = await stateWrites(startFrom);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const now = await stateWrites(startFrom);
    if (now.entries === startWrites.entries) break;
    startWrites = now;
  }
  const idleFrom = await oplogNow();
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  const idleWrites = await stateWrites(idleFrom);
  const burstFrom = await oplogNow();

  // Throughput: a burst of child inserts (half of them orphans), as fast as the driver can write them.
  const eventsBefore = latest!.events;
  const burstStarted = performance.now();
  for (let i = 0; i < BURST; i += 1000)
    await child.collection('embeddings').insertMany(
      Array.from({ length: Math.min(1000, BURST - i) }, (_, j) => ({
        content_id: j % 2 ? new ObjectId() : parentIds[(i + j) % PARENTS],
        n: -1,
      })),
      { ordered: false },
    );
  const written = performance.now();
  const caughtUp = await until((live) => live.events - eventsBefore >= BURST);
  const burstMs = caughtUp - burstStarted;
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const burstWrites = await stateWrites(burstFrom);

  // Lag: a parent with children deleted, then restored; from the write's acknowledgement to the new count.
  const lags: number[] = [];
  for (let i = 0; i < LAG_SAMPLES; i++) {
    const id = parentIds[i * 7];
    const children = await child.collection('embeddings').countDocuments({ content_id: id });
    const doc = await parent.collection('content').findOne({ _id: id });
    const orphans = latest!.counts.orphans;
    await parent.collection('content').deleteOne({ _id: id });
    const deleted = performance.now();
    lags.push((await until((live) => live.counts.orphans === orphans + children)) - deleted);
    await parent.collection('content').insertOne(doc!);
    const restored = performance.now();
    lags.push((await until((live) => live.counts.orphans === orphans)) - restored);
  }
  controller.abort();
  await running;
  await pool.close();
  report([
    ['children / parents', `${CHILDREN.toLocaleString('en-US')} / ${PARENTS.toLocaleString('en-US')}`],
    ['start (snapshot $group + probes)', seconds(startMs)],
    [
      // The start must finish within the snapshot window (mongod's default 300 s): the size limit at this rate.
      'start rate → largest child collection in a 300 s window',
      `${rate(CHILDREN, startMs)} → ~${Math.floor((CHILDREN / startMs) * 300_000).toLocaleString('en-US')} children`,
    ],
    [`burst of ${BURST.toLocaleString('en-US')} child inserts written`, seconds(written - burstStarted)],
    ['applied (all events)', `${seconds(burstMs)} (${rate(BURST, burstMs)})`],
    [
      'state written at the start (child oplog)',
      `${startWrites.entries.toLocaleString('en-US')} entries, ${kb(startWrites.bytes)}`,
    ],
    [
      `state written while idle (${IDLE_SECONDS} s)`,
      `${idleWrites.entries} entries, ${kb(idleWrites.bytes)} (${kb((idleWrites.bytes * 60) / IDLE_SECONDS)}/min)`,
    ],
    [
      `state written for the burst (${BURST.toLocaleString('en-US')} events)`,
      `${burstWrites.entries.toLocaleString('en-US')} entries, ${kb(burstWrites.bytes)} (${kb((burstWrites.bytes * 60000) / (burstMs + 1500))}/min)`,
    ],
    [
      `lag parent delete/restore → count (${lags.length})`,
      `p50 ${percentile(lags, 50).toFixed(0)} ms, p95 ${percentile(lags, 95).toFixed(0)} ms, max ${Math.max(...lags).toFixed(0)} ms`,
    ],
    ['bench process peak RSS', `${peakRssMb().toFixed(0)} MB`],
  ]);
} finally {
  await client.close();
  await sandbox.stop();
}
