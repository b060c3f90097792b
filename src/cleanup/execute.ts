import { setTimeout as sleep } from 'node:timers/promises';
import type { Collection, Db, Document, MongoClient } from 'mongodb';
import type { Relation, ResolvedConfig } from '../config/load.ts';
import { RuntimeError } from '../errors.ts';
import { ParentProbe } from '../engine/probe.ts';
import { decodeValue, RawFieldReader } from '../engine/raw-bson.ts';
import { type Candidate, describeId } from '../engine/scan.ts';
import { probeCapabilities, secondaryLagSeconds } from '../mongo/capabilities.ts';
import { canonicalKey } from '../mongo/keys.ts';
import { log } from '../logging.ts';
import { redact } from '../mongo/redact.ts';
import type { SourcePool } from '../mongo/sources.ts';
import { assertWritable, type WriteAccess } from '../store/access.ts';
import { documentKey, ExceptionsStore } from '../store/exceptions.ts';
import { currentHost, currentOperator, newRunId, RunsStore } from '../store/runs.ts';
import { appendAudit } from './audit.ts';
import { assertBackupRootUsable, BackupWriter, type ManifestRelation, type RunStatus } from './backup.ts';
import { RelationLock } from './lock.ts';
import type { CleanupPlan, RelationPlan } from './plan.ts';

const DAY_MS = 86_400_000;

/** Why a candidate was not deleted after all (the re-check right before its batch). */
export type SkipReason = 'gone' | 'referenceChanged' | 'excepted' | 'parentBack' | 'inGrace';

export interface CleanupProgress {
  relation: string;
  batch: number;
  batches: number;
  backedUp: number;
  deleted: number;
  skipped: number;
  docsPerSecond: number;
  etaSeconds: number | undefined;
}

export interface CleanupOptions {
  plan: CleanupPlan;
  config: ResolvedConfig;
  pool: SourcePool;
  access: WriteAccess;
  /** Proceed with relations whose scan looked suspicious. */
  allowUnsafe?: boolean;
  sleepMs?: number;
  maxRate?: number;
  maxLagSeconds?: number;
  operator?: string;
  now?: Date;
  signal?: AbortSignal;
  onProgress?: (progress: CleanupProgress) => void;
  /** Something the operator should know while it lasts: a pause for replication lag, a flag that cannot apply. */
  onNotice?: (message: string) => void;
  /** Called before each batch's re-check; the console shows it, tests change data there. */
  beforeBatch?: (relation: string, batch: number) => Promise<void>;
}

export interface RelationOutcome {
  name: string;
  planned: number;
  backedUp: number;
  deleted: number;
  skipped: Record<SkipReason, number>;
  /** Backed up but not deleted by the delete itself (changed or removed meanwhile): reported, never hidden. */
  mismatch: number;
  backupBytes: number;
  /** Bytes of the documents deleted (each deleted document is in the backup at its stored size). */
  reclaimedBytes: number;
  /** The child collection's data size (collStats) before and after, where the server reports it. */
  collectionBytesBefore?: number;
  collectionBytesAfter?: number;
  /** Time spent writing and fsyncing backups and manifests. */
  backupMs: number;
  durationMs: number;
}

export interface CleanupResult {
  runId: string;
  runDir: string;
  status: RunStatus;
  error?: string;
  relations: RelationOutcome[];
}

/** Relations the plan may not touch, and why; empty when the cleanup may start. */
export function refusalsOf(plan: CleanupPlan, allowUnsafe: boolean): string[] {
  const refusals = [...plan.refusals];
  if (!allowUnsafe) {
    for (const relation of plan.relations) {
      if (!relation.safe && relation.toDelete > 0)
        refusals.push(
          `${relation.name} is unsafe: ${relation.unsafeReasons.join('; ')} (override with --allow-unsafe)`,
        );
    }
  }
  return refusals;
}

interface BatchContext {
  options: CleanupOptions;
  relation: Relation;
  children: Collection;
  probe: ParentProbe;
  exceptions: ExceptionsStore;
  backup: BackupWriter;
  entry: ManifestRelation;
  outcome: RelationOutcome;
  transactions: boolean;
  client: MongoClient;
  now: Date;
}

/**
 * One batch: re-read the candidates and re-check their parents on the primary (majority), back up exactly
 * the survivors (fsynced), then delete them by `_id` and unchanged reference.
 */
async function runBatch(ctx: BatchContext, batch: Candidate[]): Promise<void> {
  const { relation, outcome, now } = ctx;
  const idReader = new RawFieldReader('_id');
  const refReader = new RawFieldReader(relation.child.field);
  const wanted = new Map(batch.map((candidate) => [documentKey(candidate.id), candidate]));
  const raws = (await ctx.children
    .find({ _id: { $in: batch.map((c) => c.id) } } as Document, {
      raw: true,
      readConcern: { level: 'majority' },
    })
    .toArray()) as unknown as Uint8Array[];
  const exceptions = await ctx.exceptions.index(relation.name, now);
  const current: { raw: Uint8Array; id: unknown; reference: unknown; key: string; candidate: Candidate }[] =
    [];
  const seen = new Set<string>();
  for (const raw of raws) {
    const id = idReader.read(raw);
    const idKey = documentKey(id);
    const candidate = wanted.get(idKey);
    if (!candidate) continue;
    seen.add(idKey);
    const reference = refReader.locate(raw) ? decodeValue(raw, refReader.type, refReader.valueAt) : undefined;
    const key = canonicalKey(reference, relation.keyMatch);
    if (key !== candidate.key) outcome.skipped.referenceChanged++;
    else if (exceptions.documentKeys.has(idKey) || exceptions.referenceKeys.has(key))
      outcome.skipped.excepted++;
    else current.push({ raw, id, reference, key, candidate });
  }
  outcome.skipped.gone += batch.length - seen.size;
  for (const candidate of batch)
    if (!seen.has(documentKey(candidate.id)))
      log.info({ relation: relation.name, id: describeId(candidate.id), reason: 'gone' }, 'kept by re-check');
  const states = await ctx.probe.probe(new Map(current.map((c) => [c.key, c.reference])));
  const graceMs = relation.graceDays * DAY_MS;
  const survivors = current.filter((c) => {
    const state = states.get(c.key)!;
    if (state.kind === 'active') {
      outcome.skipped.parentBack++;
      log.info({ relation: relation.name, id: describeId(c.id), reason: 'parentBack' }, 'kept by re-check');
      return false;
    }
    const since = (state.kind === 'inactive' ? state.since : undefined) ?? c.candidate.since;
    if (now.getTime() - since.getTime() < graceMs) {
      outcome.skipped.inGrace++;
      log.info({ relation: relation.name, id: describeId(c.id), reason: 'inGrace' }, 'kept by re-check');
      return false;
    }
    return true;
  });
  if (survivors.length === 0) return;
  const backupStarted = performance.now();
  const written = await ctx.backup.appendBatch(
    ctx.entry,
    survivors.map((s) => s.raw),
  );
  outcome.backupMs += performance.now() - backupStarted;
  outcome.backedUp += survivors.length;
  outcome.backupBytes += written.bytes;
  const filter = {
    _id: { $in: survivors.map((s) => s.id) },
    [relation.child.field]: { $in: survivors.map((s) => s.reference) },
  } as Document;
  let deleted: number;
  if (ctx.transactions) {
    const session = ctx.client.startSession();
    try {
      deleted = await session.withTransaction(
        async () => (await ctx.children.deleteMany(filter, { session })).deletedCount,
        {
          writeConcern: { w: 'majority' },
          readConcern: { level: 'majority' },
        },
      );
    } finally {
      await session.endSession();
    }
  } else {
    deleted = (await ctx.children.deleteMany(filter, { writeConcern: { w: 'majority' } })).deletedCount;
  }
  written.deleted = deleted;
  ctx.entry.deleted += deleted;
  outcome.deleted += deleted;
  outcome.mismatch += survivors.length - deleted;
  // When every survivor was deleted the backup's bytes are exactly what was removed; otherwise a share.
  outcome.reclaimedBytes += Math.round((written.bytes * deleted) / survivors.length);
  ctx.entry.skipped = { ...outcome.skipped };
  log.info(
    {
      relation: relation.name,
      batch: written.index,
      backedUp: survivors.length,
      deleted,
      bytes: written.bytes,
    },
    'batch backed up and deleted',
  );
  if (deleted !== survivors.length)
    log.warn(
      { relation: relation.name, batch: written.index, backedUp: survivors.length, deleted },
      'backed up but not all deleted',
    );
  const manifestStarted = performance.now();
  await ctx.backup.saveManifest();
  outcome.backupMs += performance.now() - manifestStarted;
}

/** A collection's data size from collStats; undefined where the server does not answer it. */
async function collectionBytes(db: Db, collection: string): Promise<number | undefined> {
  try {
    const stats = await db.command({ collStats: collection });
    return typeof stats.size === 'number' ? stats.size : undefined;
  } catch {
    return undefined;
  }
}

async function throttle(
  options: CleanupOptions,
  client: MongoClient,
  replicaSet: boolean,
  started: number,
  deletedSoFar: number,
): Promise<void> {
  if (options.sleepMs) await sleep(options.sleepMs);
  if (options.maxRate && deletedSoFar > 0) {
    const earliest = started + (deletedSoFar / options.maxRate) * 1000;
    const wait = earliest - performance.now();
    if (wait > 0) await sleep(wait);
  }
  if (replicaSet && options.maxLagSeconds !== undefined) {
    let paused = false;
    for (;;) {
      if (options.signal?.aborted) return;
      const lag = await secondaryLagSeconds(client);
      if (lag <= options.maxLagSeconds) break;
      if (!paused)
        options.onNotice?.(
          `paused: a secondary lags ${Math.round(lag)} s (more than --max-lag-seconds ${options.maxLagSeconds}); waiting`,
        );
      paused = true;
      await sleep(1000);
    }
    if (paused) options.onNotice?.('replication caught up; resuming');
  }
}

function newOutcome(plan: RelationPlan): RelationOutcome {
  return {
    name: plan.name,
    planned: plan.toDelete,
    backedUp: 0,
    deleted: 0,
    skipped: { gone: 0, referenceChanged: 0, excepted: 0, parentBack: 0, inGrace: 0 },
    mismatch: 0,
    backupBytes: 0,
    reclaimedBytes: 0,
    backupMs: 0,
    durationMs: 0,
  };
}

/** Cleans one relation batch by batch, counting into `outcome` as it goes (so a failure still shows what was done). */
async function cleanRelation(
  options: CleanupOptions,
  plan: RelationPlan,
  backup: BackupWriter,
  runId: string,
  outcome: RelationOutcome,
): Promise<void> {
  const { pool, config } = options;
  const relation = config.relations.find((r) => r.name === plan.name)!;
  const now = options.now ?? new Date();
  const started = performance.now();
  const client = await pool.client(relation.child.source);
  const childDb = await pool.primaryDb(relation.child.source);
  const parentDb = await pool.primaryDb(relation.parent.source);
  const children = childDb.collection(relation.child.collection);
  const capabilities = await probeCapabilities(client);
  if (options.maxLagSeconds !== undefined) {
    if (capabilities.topology !== 'replicaSet')
      options.onNotice?.(
        `--max-lag-seconds: ${relation.child.source} is ${capabilities.topology === 'sharded' ? 'a sharded cluster' : 'not a replica set'}; there is no secondary lag to wait for`,
      );
    // The lag is read between batches; a user who may not read it (replSetGetStatus needs clusterMonitor) must
    // learn so before the first delete, not after it.
    else
      await secondaryLagSeconds(client).catch((error: Error) => {
        throw new RuntimeError(
          `--max-lag-seconds: cannot read replication lag on ${relation.child.source} (replSetGetStatus needs the clusterMonitor role): ${redact(error.message)}; nothing was deleted`,
        );
      });
  }
  const lock = await RelationLock.acquire(
    childDb,
    relation.name,
    { runId, operator: currentOperator(options.operator), host: currentHost(), pid: process.pid },
    options.access,
  );
  outcome.collectionBytesBefore = await collectionBytes(childDb, relation.child.collection);
  try {
    const indexes = await children.listIndexes().toArray();
    const entry = await backup.addRelation(
      {
        name: relation.name,
        source: relation.child.source,
        database: plan.child.database,
        collection: relation.child.collection,
        field: relation.child.field,
        keyMatch: relation.keyMatch,
        planned: plan.toDelete,
      },
      indexes,
    );
    const ctx: BatchContext = {
      options,
      relation,
      children,
      probe: new ParentProbe(relation, parentDb.collection(relation.parent.collection), {
        maxTimeMS: config.maxTimeMS,
        readConcern: { level: 'majority' },
      }),
      exceptions: new ExceptionsStore(childDb, options.access),
      backup,
      entry,
      outcome,
      transactions: capabilities.transactions,
      client,
      now,
    };
    const batchSize = options.plan.batchSize;
    for (let index = 0; index * batchSize < plan.candidates.length; index++) {
      if (options.signal?.aborted || lock.lost) break;
      if (index > 0)
        await throttle(options, client, capabilities.topology === 'replicaSet', started, outcome.deleted);
      if (options.signal?.aborted) break;
      await options.beforeBatch?.(relation.name, index);
      await runBatch(ctx, plan.candidates.slice(index * batchSize, (index + 1) * batchSize));
      const elapsed = (performance.now() - started) / 1000;
      const done = Math.min(plan.candidates.length, (index + 1) * batchSize);
      const rate = elapsed > 0 ? done / elapsed : 0;
      options.onProgress?.({
        relation: relation.name,
        batch: index + 1,
        batches: plan.batches,
        backedUp: outcome.backedUp,
        deleted: outcome.deleted,
        skipped: Object.values(outcome.skipped).reduce((a, b) => a + b, 0),
        docsPerSecond: rate,
        etaSeconds: rate > 0 ? (plan.candidates.length - done) / rate : undefined,
      });
    }
    if (lock.lost) throw new RuntimeError(`lost the lock on ${relation.name}: another run took it over`);
  } finally {
    outcome.durationMs = Math.round(performance.now() - started);
    await lock.release().catch(() => undefined);
    outcome.collectionBytesAfter = await collectionBytes(childDb, relation.child.collection);
  }
}

/**
 * Executes a plan relation by relation. Refuses unsafe relations (unless allowed) and the separation
 * switch; stops after the current batch on abort; records the run and an audit line whatever happens.
 */
export async function executeCleanup(options: CleanupOptions): Promise<CleanupResult> {
  const { plan, access } = options;
  assertWritable(access, 'delete orphans');
  const refusals = refusalsOf(plan, Boolean(options.allowUnsafe));
  if (refusals.length) {
    log.warn({ refusals }, 'cleanup refused');
    throw new RuntimeError(`cleanup refused: ${refusals.join('; ')}`);
  }
  const work = plan.relations.filter((relation) => relation.toDelete > 0);
  await assertBackupRootUsable(
    plan.backupRoot,
    work.reduce((sum, r) => sum + r.estimatedBackupBytes, 0),
  );
  const runId = newRunId(options.now);
  const operator = currentOperator(options.operator);
  const backup = await BackupWriter.create(plan.backupRoot, runId, { operator, host: currentHost() });
  const outcomes: RelationOutcome[] = [];
  let status: RunStatus = 'completed';
  let error: string | undefined;
  const startedAt = new Date();
  try {
    for (const relation of work) {
      if (options.signal?.aborted) break;
      const outcome = newOutcome(relation);
      outcomes.push(outcome);
      await cleanRelation(options, relation, backup, runId, outcome);
    }
    if (options.signal?.aborted) status = 'aborted';
  } catch (caught) {
    status = 'failed';
    error = redact((caught as Error).message);
    log.error({ error }, 'cleanup failed');
  }
  await backup.finish(status, error);
  const finishedAt = new Date();
  for (const outcome of outcomes) {
    const relation = options.config.relations.find((r) => r.name === outcome.name)!;
    const runs = new RunsStore(await options.pool.primaryDb(relation.child.source), access);
    await runs
      .record({
        runId,
        kind: 'clean',
        relation: outcome.name,
        startedAt,
        finishedAt,
        durationMs: outcome.durationMs,
        operator,
        host: currentHost(),
        outcome: status === 'completed' ? 'succeeded' : status,
        complete: status === 'completed',
        counts: {
          planned: outcome.planned,
          backedUp: outcome.backedUp,
          deleted: outcome.deleted,
          mismatch: outcome.mismatch,
          reclaimedBytes: outcome.reclaimedBytes,
          ...(outcome.collectionBytesBefore !== undefined
            ? { collectionBytesBefore: outcome.collectionBytesBefore }
            : {}),
          ...(outcome.collectionBytesAfter !== undefined
            ? { collectionBytesAfter: outcome.collectionBytesAfter }
            : {}),
          ...outcome.skipped,
        },
        backupPath: backup.dir,
        ...(error ? { error } : {}),
      })
      .catch(() => undefined);
  }
  await appendAudit(plan.backupRoot, {
    kind: 'clean',
    runId,
    operator,
    host: currentHost(),
    status,
    error,
    backup: backup.dir,
    relations: outcomes,
  });
  return { runId, runDir: backup.dir, status, ...(error ? { error } : {}), relations: outcomes };
}
