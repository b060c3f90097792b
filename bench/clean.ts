// npm run bench:clean — 50,000 deletable orphans deleted in batches of 1,000, each batch backed up (fsynced) first:
// against a standalone sandbox, then against one acting as a replica set (each batch's delete in a transaction).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient, ObjectId } from 'mongodb';
import { runCleanupPipeline } from '../src/cleanup/pipeline.ts';
import { loadConfig } from '../src/config/load.ts';
import { SourcePool } from '../src/mongo/sources.ts';
import { startSandboxProcess } from '../src/sandbox/process.ts';
import { rate, report, seconds } from './support.ts';

const ORPHANS = Number(process.env.BENCH_ORPHANS ?? 50_000);
const HEALTHY = ORPHANS * 2;
const PARENTS = 10_000;

async function seed(client: MongoClient): Promise<void> {
  const parentIds = Array.from({ length: PARENTS }, () => new ObjectId());
  await client
    .db('bench_bayit')
    .collection('content')
    .insertMany(parentIds.map((_id) => ({ _id, deleted_at: null })));
  const children = client.db('bench_olorin').collection('content_embeddings');
  await children.createIndex({ content_id: 1 });
  for (let done = 0; done < ORPHANS + HEALTHY; done += 10_000) {
    const docs = Array.from({ length: Math.min(10_000, ORPHANS + HEALTHY - done) }, (_, i) => {
      const orphan = done + i < ORPHANS;
      const parent = orphan ? new ObjectId() : parentIds[(done + i) % PARENTS];
      return {
        content_id: parent.toHexString(),
        embedding_type: 'title',
        embedding: Array.from({ length: 16 }, () => Math.random()),
      };
    });
    await children.insertMany(docs, { ordered: false });
  }
}

/** Seeds a fresh sandbox of the given topology, then plans and executes the cleanup; one report block. */
async function benchmark(topology: 'standalone' | 'replica set'): Promise<void> {
  const sandbox = await startSandboxProcess(topology === 'replica set' ? { replicaSet: 'rs0' } : {});
  const client = await new MongoClient(sandbox.uri).connect();
  const work = await mkdtemp(join(tmpdir(), 'oc-bench-clean-'));
  try {
    await seed(client);
    const configPath = join(work, 'config.json');
    await writeFile(
      configPath,
      JSON.stringify({
        sources: {
          olorin: { uri: sandbox.uri, database: 'bench_olorin' },
          bayit: { uri: sandbox.uri, database: 'bench_bayit' },
        },
        relations: [
          {
            name: 'content_embeddings',
            child: { source: 'olorin', collection: 'content_embeddings', field: 'content_id' },
            parent: { source: 'bayit', collection: 'content', softDeleteField: 'deleted_at' },
            keyMatch: 'objectid-or-hex',
            graceDays: 0,
          },
        ],
      }),
    );
    const config = await loadConfig({ configPath, env: { OLORIN_USE_SEPARATE_DATABASE: 'true' } });
    const pool = new SourcePool(config.sources);
    // The product's cleanup pipeline; the plan callback splits the scan's time from the execution's.
    const scanStarted = performance.now();
    let started = 0;
    const cleaned = await runCleanupPipeline({
      config,
      pool,
      access: { readOnly: false },
      execute: true,
      deleteBatchSize: 1000,
      backupRoot: join(work, 'backups'),
      onPlan: () => {
        started = performance.now();
      },
    });
    if (cleaned.kind !== 'executed') throw new Error(`the cleanup did not run: ${cleaned.kind}`);
    const { result, report: scan } = cleaned;
    const ms = performance.now() - started;
    const scanMs = started - scanStarted;
    await pool.close();
    const [outcome] = result.relations;
    process.stdout.write(`\n${topology}${topology === 'replica set' ? ' (a transaction per batch)' : ''}\n`);
    report([
      ['scan (plan)', `${seconds(scanMs)}  deletable ${scan.relations[0].deletable.toLocaleString('en-US')}`],
      [
        'clean --execute',
        `${seconds(ms)}  ${rate(outcome.deleted, ms)}  (deleted ${outcome.deleted.toLocaleString('en-US')}, backed up ${outcome.backedUp.toLocaleString('en-US')}, status ${result.status})`,
      ],
      [
        'backup share',
        `${((outcome.backupMs / ms) * 100).toFixed(1)}%  (${seconds(outcome.backupMs)} writing + fsyncing ${(outcome.backupBytes / 1024 / 1024).toFixed(1)} MiB and manifests)`,
      ],
    ]);
  } finally {
    await client.close();
    await sandbox.stop();
    await rm(work, { recursive: true, force: true });
  }
}

process.stdout.write(
  `clean benchmark: ${ORPHANS.toLocaleString('en-US')} deletable orphans among ${(ORPHANS + HEALTHY).toLocaleString('en-US')} children, batches of 1,000\n`,
);
await benchmark('standalone');
await benchmark('replica set');
