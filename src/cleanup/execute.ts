// Over 300 lines: the delete's safety sequence per batch, kept in one place on purpose.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientSession, Collection, Db, Document, MongoClient, MongoError } from 'mongodb';
import type { Relation, ResolvedConfig } from '../config/load.ts';
import { ParentProbe } from '../engine/probe.ts';
import { decodeValue, RawFieldReader } from '../engine/raw-bson.ts';
import { type Candidate, describeId } from '../engine/scan.ts';
import { RuntimeError } from '../errors.ts';
import { DAY_MS } from '../limits.ts';
import { log } from '../logging.ts';
import {
  isWritablePrimary,
  probeCapabilities,
  secondaryLagSeconds,
  serverClock,
} from '../mongo/capabilities.ts';
import { canonicalKey } from '../mongo/keys.ts';
import { SilentSourceError } from '../mongo/liveness.ts';
import { redact } from '../mongo/redact.ts';
import type { SourcePool } from '../mongo/sources.ts';
import { LAG_WAIT_LIMIT_MS, majorityWrite } from '../mongo/timeouts.ts';
import { assertWritable, type WriteAccess } from '../store/access.ts';
import { documentKey, ExceptionsStore } from '../store/exceptions.ts';
import { FirstSeenStore } from '../store/first-seen.ts';
import { currentHost, currentOperator, newRunId, type RunRecord, RunsStore } from '../store/runs.ts';
import { AUDIT_FILE, appendAudit } from './audit.ts';
import {
  assertBackupRootUsable,
  BackupWriter,
  MANIFEST_FILE,
  type ManifestRelation,
  type RunStatus,
} from './backup.ts';
import { RelationLock } from './lock.ts';
import type { CleanupPlan, RelationPlan } from './plan.ts';
import { writeMissingRunRecords } from './unrecorded-runs.ts';

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
  /** How long to wait for lagging secondaries before failing the run (default `LAG_WAIT_LIMIT_MS`). */
  maxLagWaitMs?: number;
  operator?: string;
  now?: Date;
  signal?: AbortSignal;
  onProgress?: (progress: CleanupProgress) => void;
  /** Something the operator should know while it lasts: a pause for replication lag, a flag that cannot apply. */
  onNotice?: (message: string) => void;
  /** Called before each batch's re-check; the console shows it, tests change data there. */
  beforeBatch?: (relation: string, batch: number) => Promise<void>;
  /** Called after a batch is backed up and its parents re-checked, right before its delete (a test seam). */
  beforeDelete?: (relation: string, backupBatch: number) => Promise<void>;
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
  /** The run's backup directory; none when the run ended before its first backup (nothing to restore). */
  runDir?: string;
  status: RunStatus;
  error?: string;
  relations: RelationOutcome[];
}

/** Relations the plan may not touch, and why; empty when the cleanup may start. */
export function refusalsOf(plan: CleanupPlan, allowUnsafe: boolean): string[] {
  // What refuses everything is said alone: the per-relation overrides could not help.
  if (plan.refusals.length) return [...plan.refusals];
  const refusals: string[] = [];
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
  /** Where grace is judged from: first sightings confirmed by complete scans (never a plan's or checkpoint's word). */
  firstSeen: FirstSeenStore;
  backup: BackupWriter;
  entry: ManifestRelation;
  outcome: RelationOutcome;
  transactions: boolean;
  client: MongoClient;
  lock: RelationLock;
  now: Date;
  /** What the run is doing now, in words, for the line that ends a failed run. */
  activity: Activity;
  /** The batch's number (1-based) and how many the relation has. */
  batchLabel: string;
}

/** What a cleanup is doing at this moment ("deleting batch 5 of 12 of content_embeddings"). */
export interface Activity {
  doing: string;
  /** Documents whose delete (or its commit) was sent and not answered: deleted or not, nobody can tell yet. */
  unanswered: number;
}

/** A batch is backed up and re-checked at most this often (write conflicts, children changed meanwhile). */
const BATCH_ATTEMPTS = 3;
/** A commit of unknown outcome is sent at most this often (commitTransaction is idempotent). */
const COMMIT_ATTEMPTS = 3;
/** Child reads and deletes compare strings byte for byte, whatever the child collection's default collation. */
const SIMPLE_COLLATION = { locale: 'simple' } as const;

/** What one attempt at a batch did; merged into the relation's outcome only once its delete is done. */
interface BatchTally {
  skipped: Record<SkipReason, number>;
  deleted: number;
  survivors: number;
}

/** A child cleared for deletion: its bytes exactly as written to the fsynced backup. */
interface Survivor {
  raw: Uint8Array;
  id: unknown;
  reference: unknown;
}

/** The children of a batch that may be deleted, once backed up and re-checked (outside any transaction). */
interface PreparedBatch {
  tally: BatchTally;
  survivors: Survivor[];
}

function newTally(): BatchTally {
  return {
    skipped: { gone: 0, referenceChanged: 0, excepted: 0, parentBack: 0, inGrace: 0 },
    deleted: 0,
    survivors: 0,
  };
}

/**
 * The slow part of a batch, outside any transaction: re-read the candidates (reference unchanged, not
 * excepted), append exactly those to the backup and fsync it, then re-check their parents on the primary.
 * What survives may be deleted if, at the delete, it is still byte for byte what the backup holds.
 */
async function prepareBatch(ctx: BatchContext, batch: Candidate[], attempt: number): Promise<PreparedBatch> {
  const { relation, now } = ctx;
  const tally = newTally();
  ctx.activity.doing = `re-reading ${ctx.batchLabel}`;
  const kept = (id: unknown, reason: SkipReason) => {
    tally.skipped[reason]++;
    log.info({ relation: relation.name, id: describeId(id), reason }, 'kept by re-check');
  };
  const idReader = new RawFieldReader('_id');
  const refReader = new RawFieldReader(relation.child.field);
  const wanted = new Map(batch.map((candidate) => [documentKey(candidate.id), candidate]));
  const raws = (await ctx.children
    .find({ _id: { $in: batch.map((c) => c.id) } } as Document, {
      raw: true,
      maxTimeMS: ctx.options.config.maxTimeMS,
      readConcern: { level: 'majority' },
      collation: SIMPLE_COLLATION,
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
    if (key === undefined || key !== candidate.key) kept(id, 'referenceChanged');
    else if (exceptions.documentKeys.has(idKey) || exceptions.referenceKeys.has(key)) kept(id, 'excepted');
    else current.push({ raw, id, reference, key, candidate });
  }
  for (const candidate of batch) if (!seen.has(documentKey(candidate.id))) kept(candidate.id, 'gone');
  if (current.length === 0) return { tally, survivors: [] };

  ctx.activity.doing = `backing up ${ctx.batchLabel}`;
  const backupStarted = performance.now();
  const written = await ctx.backup.appendBatch(
    ctx.entry,
    current.map((c) => c.raw),
    attempt,
  );
  ctx.outcome.backupMs += performance.now() - backupStarted;
  ctx.outcome.backedUp += current.length;
  ctx.outcome.backupBytes += written.bytes;

  // The parents, re-checked after the backup is on disk and right before the delete. Keys carry everything
  // the server compares (BinData subtype included), so one reference per key probes for all its children.
  ctx.activity.doing = `re-checking the parents of ${ctx.batchLabel} on ${relation.parent.source}`;
  const states = await ctx.probe.probe(new Map(current.map((c) => [c.key, c.reference])));
  // Grace counts from the parent's deletion date, else from the first sighting a complete scan confirmed: a
  // candidate's own `since` came through a plan or a checkpoint, which a scan-role user can write.
  const sightings = await ctx.firstSeen.lookup(
    [...new Set(current.map((c) => c.key))],
    ctx.options.config.maxTimeMS,
  );
  const graceMs = relation.graceDays * DAY_MS;
  const survivors = current.filter((c) => {
    const state = states.get(c.key)!;
    if (state.kind === 'active') {
      kept(c.id, 'parentBack');
      return false;
    }
    const since = (state.kind === 'inactive' ? state.since : undefined) ?? sightings.get(c.key);
    if (!since || now.getTime() - since.getTime() < graceMs) {
      kept(c.id, 'inGrace');
      return false;
    }
    return true;
  });
  tally.survivors = survivors.length;
  return { tally, survivors };
}

/**
 * The delete's filter: exactly these `_id`s, still with the reference they were backed up with, and no array
 * along the reference's path (the server's equality also matches an array holding the value, which the scan
 * calls invalid).
 */
function deleteFilter(field: string, survivors: Survivor[]): Document {
  const parts = field.split('.');
  return {
    _id: { $in: survivors.map((s) => s.id) },
    [field]: { $in: survivors.map((s) => s.reference) },
    $nor: parts.map((_, i) => ({ [parts.slice(0, i + 1).join('.')]: { $type: 'array' } })),
  };
}

/** The survivors whose stored bytes are still exactly those in the backup, read in `session` when given. */
async function unchangedSince(
  ctx: BatchContext,
  survivors: Survivor[],
  session?: ClientSession,
): Promise<Survivor[]> {
  const raws = (await ctx.children
    .find({ _id: { $in: survivors.map((s) => s.id) } } as Document, {
      raw: true,
      maxTimeMS: ctx.options.config.maxTimeMS,
      collation: SIMPLE_COLLATION,
      ...(session ? { session } : { readConcern: { level: 'majority' } }),
    })
    .toArray()) as unknown as Uint8Array[];
  const idReader = new RawFieldReader('_id');
  const stored = new Map(raws.map((raw) => [documentKey(idReader.read(raw)), raw]));
  return survivors.filter((s) => {
    const now = stored.get(documentKey(s.id));
    return now !== undefined && Buffer.from(now).equals(Buffer.from(s.raw));
  });
}

function hasLabel(error: unknown, label: string): boolean {
  return (
    typeof (error as MongoError).hasErrorLabel === 'function' && (error as MongoError).hasErrorLabel(label)
  );
}

/**
 * A batch to try again from its re-read: a transaction aborted by the server (write conflict, lifetime limit),
 * or children changed since they were backed up.
 */
class TransientBatchError extends Error {}

/**
 * The short part of a batch, in one transaction where the deployment has them (replica sets and, through
 * mongos, sharded clusters): re-read the survivors, keep those still byte for byte as backed up, check the
 * lock, delete them. Nothing slow happens inside (no fsync, no other cluster), so the transaction stays far
 * inside `transactionLifetimeLimitSeconds`. Returns the children deleted and how many had changed.
 */
async function deleteSurvivors(
  ctx: BatchContext,
  survivors: Survivor[],
  lastAttempt: boolean,
): Promise<{ deleted: number; changed: number }> {
  ctx.activity.doing = `deleting ${ctx.batchLabel}`;
  // Left set when the delete fails: its outcome is unknown until the server answers again.
  ctx.activity.unanswered = survivors.length;
  const done = await deleteSurvivorsOnce(ctx, survivors, lastAttempt);
  ctx.activity.unanswered = 0;
  return done;
}

async function deleteSurvivorsOnce(
  ctx: BatchContext,
  survivors: Survivor[],
  lastAttempt: boolean,
): Promise<{ deleted: number; changed: number }> {
  const { maxTimeMS } = ctx.options.config;
  const field = ctx.relation.child.field;
  /** Before the last attempt a changed child sends the whole batch back to its re-read and backup. */
  const unchangedOrRetry = async (session?: ClientSession) => {
    const unchanged = await unchangedSince(ctx, survivors, session);
    const changed = survivors.length - unchanged.length;
    if (changed > 0 && !lastAttempt)
      throw new TransientBatchError(`${changed} children changed after they were backed up`);
    return unchanged;
  };
  if (!ctx.transactions) {
    const unchanged = await unchangedOrRetry();
    if (unchanged.length === 0) return { deleted: 0, changed: survivors.length };
    await ctx.lock.assertHeld();
    const { deletedCount } = await ctx.children.deleteMany(deleteFilter(field, unchanged), {
      writeConcern: majorityWrite(maxTimeMS),
      collation: SIMPLE_COLLATION,
    });
    return { deleted: deletedCount, changed: survivors.length - unchanged.length };
  }
  const session = ctx.client.startSession();
  try {
    session.startTransaction({
      readConcern: { level: 'snapshot' },
      writeConcern: majorityWrite(maxTimeMS),
      maxCommitTimeMS: maxTimeMS,
    });
    let result: { deleted: number; changed: number };
    try {
      const unchanged = await unchangedOrRetry(session);
      await ctx.lock.assertHeld(session);
      const deleted = unchanged.length
        ? (
            await ctx.children.deleteMany(deleteFilter(field, unchanged), {
              session,
              collation: SIMPLE_COLLATION,
            })
          ).deletedCount
        : 0;
      result = { deleted, changed: survivors.length - unchanged.length };
    } catch (error) {
      await session.abortTransaction().catch(() => undefined);
      if (error instanceof TransientBatchError) throw error;
      if (hasLabel(error, 'TransientTransactionError'))
        throw new TransientBatchError(
          `the server aborted its transaction (${redact((error as Error).message)})`,
        );
      throw error;
    }
    for (let commit = 1; ; commit++) {
      try {
        await session.commitTransaction();
        return result;
      } catch (error) {
        if (hasLabel(error, 'UnknownTransactionCommitResult') && commit < COMMIT_ATTEMPTS) {
          log.warn({ relation: ctx.relation.name, commit }, 'commit of unknown outcome: sending it again');
          continue;
        }
        if (hasLabel(error, 'TransientTransactionError')) {
          // A commit refused before it ran leaves the transaction open on the server, holding its writes
          // until its lifetime ends: ending the server session aborts it now, so the retry meets no conflict.
          await ctx.client
            .db('admin')
            .command({ endSessions: [session.id] })
            .catch(() => undefined);
          throw new TransientBatchError(`its commit failed (${redact((error as Error).message)})`);
        }
        if (hasLabel(error, 'UnknownTransactionCommitResult'))
          throw new RuntimeError(
            `the delete of a batch of ${ctx.relation.name} was committed with an unknown outcome ${commit} times (${redact((error as Error).message)}); whatever it deleted is in the backup`,
          );
        throw error;
      }
    }
  } finally {
    await session.endSession().catch(() => undefined);
  }
}

/**
 * One batch: prepared (backed up, re-checked) and deleted. A transaction aborted by the server (write
 * conflict, lifetime limit) or a child changed since its backup starts the batch again from the re-read,
 * appending the batch to the backup once more (the manifest numbers the attempts; restore puts back the last
 * copy, the one deleted), at most BATCH_ATTEMPTS times; on the last attempt changed children are kept.
 */
async function runBatch(ctx: BatchContext, batch: Candidate[]): Promise<void> {
  const { relation, outcome } = ctx;
  let tally: BatchTally | undefined;
  for (let attempt = 1; !tally; attempt++) {
    const prepared = await prepareBatch(ctx, batch, attempt);
    if (prepared.survivors.length === 0) {
      tally = prepared.tally;
      break;
    }
    await ctx.options.beforeDelete?.(relation.name, ctx.entry.batches.length - 1);
    let done: { deleted: number; changed: number };
    try {
      done = await deleteSurvivors(ctx, prepared.survivors, attempt >= BATCH_ATTEMPTS);
    } catch (error) {
      if (!(error instanceof TransientBatchError)) throw error;
      if (attempt >= BATCH_ATTEMPTS)
        throw new RuntimeError(
          `a batch of ${relation.name} was tried ${attempt} times without being deleted, the last time because ${error.message}; that batch was not deleted, all of it is in the backup`,
        );
      ctx.backup.markRetried(ctx.entry);
      log.warn(
        { relation: relation.name, attempt, reason: error.message },
        'retrying the batch from its re-read and backup',
      );
      continue;
    }
    if (done.changed > 0)
      log.warn(
        { relation: relation.name, changed: done.changed },
        'children that kept changing after their backup were kept (their new version is not backed up)',
      );
    tally = { ...prepared.tally, deleted: done.deleted };
  }
  for (const reason of Object.keys(tally.skipped) as SkipReason[])
    outcome.skipped[reason] += tally.skipped[reason];
  ctx.entry.deleted += tally.deleted;
  outcome.deleted += tally.deleted;
  outcome.mismatch += tally.survivors - tally.deleted;
  ctx.entry.skipped = { ...outcome.skipped };
  const written = ctx.entry.batches.at(-1);
  // Deleted documents are in the backup at their stored size: a whole batch's bytes, or its share.
  if (written && tally.survivors > 0) {
    written.deleted = tally.deleted;
    outcome.reclaimedBytes += Math.round((written.bytes * tally.deleted) / written.backedUp);
  }
  log.info(
    { relation: relation.name, survivors: tally.survivors, deleted: tally.deleted, skipped: tally.skipped },
    'batch backed up, re-checked and deleted',
  );
  if (tally.deleted !== tally.survivors)
    log.warn(
      { relation: relation.name, survivors: tally.survivors, deleted: tally.deleted },
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
    const waitLimit = options.maxLagWaitMs ?? LAG_WAIT_LIMIT_MS;
    const waitStarted = performance.now();
    for (;;) {
      if (options.signal?.aborted) return;
      const lag = await secondaryLagSeconds(client);
      if (lag <= options.maxLagSeconds) break;
      if (performance.now() - waitStarted > waitLimit)
        throw new RuntimeError(
          `--max-lag-seconds: a secondary still lags ${Math.round(lag)} s after waiting ${Math.round(waitLimit / 1000)} s; stopped before the next batch`,
        );
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
  activity: Activity,
): Promise<void> {
  const { pool, config } = options;
  const relation = config.relations.find((r) => r.name === plan.name)!;
  const started = performance.now();
  const client = await pool.client(relation.child.source);
  // Grace is judged by the server's clock, as the scan judged it.
  const now = options.now ?? (await serverClock(client)).now;
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
    { wtimeoutMS: config.maxTimeMS },
  );
  outcome.collectionBytesBefore = await collectionBytes(childDb, relation.child.collection);
  try {
    const indexes = await children.listIndexes().toArray();
    // As mongodump records them, so mongorestore into a fresh cluster recreates the collection as it was.
    const [info] = (await childDb
      .listCollections({ name: relation.child.collection })
      .toArray()) as Document[];
    const uuid = info?.info?.uuid as { buffer?: Uint8Array } | undefined;
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
      {
        indexes,
        options: (info?.options as Document | undefined) ?? {},
        ...(uuid?.buffer ? { uuid: Buffer.from(uuid.buffer).toString('hex') } : {}),
      },
    );
    const ctx: BatchContext = {
      options,
      relation,
      children,
      probe: new ParentProbe(relation, parentDb, {
        maxTimeMS: config.maxTimeMS,
        // The primary's own view: a parent seen there and later rolled back only keeps a child, which is safe.
        readConcern: { level: 'local' },
      }),
      exceptions: new ExceptionsStore(childDb, options.access),
      firstSeen: new FirstSeenStore(childDb, relation.name, options.access),
      backup,
      entry,
      outcome,
      // Replica sets, and sharded clusters through mongos (cross-shard transactions since 4.2): the delete
      // happens only if its re-read in the same snapshot still matches the backup byte for byte.
      transactions: capabilities.transactions,
      client,
      lock,
      now,
      activity,
      batchLabel: '',
    };
    const batchSize = options.plan.deleteBatchSize;
    for (let index = 0; index * batchSize < plan.candidates.length; index++) {
      if (options.signal?.aborted || lock.lost) break;
      if (index > 0)
        await throttle(options, client, capabilities.topology === 'replicaSet', started, outcome.deleted);
      if (options.signal?.aborted) break;
      await options.beforeBatch?.(relation.name, index);
      ctx.batchLabel = `batch ${index + 1} of ${plan.batches} of ${relation.name}`;
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
 * The line that ends a failed run. A source given up on for silence is said in plain words — which source,
 * its hosts, what the run was doing, how long it waited, what was done so far and what to do next — instead
 * of the driver's error for the ended operation.
 */
function failureLine(
  caught: unknown,
  pool: SourcePool,
  activity: Activity,
  outcomes: RelationOutcome[],
  backupDir: string,
): string {
  const silent = caught instanceof SilentSourceError ? caught : pool.silentSources()[0];
  if (!silent) return redact((caught as Error).message);
  const deleted = outcomes.reduce((sum, outcome) => sum + outcome.deleted, 0);
  const unanswered = activity.unanswered
    ? ` (and the ${activity.unanswered} of the batch whose delete was sent and not answered may be deleted when it answers)`
    : '';
  return `${silent.message} while ${activity.doing}; ${deleted} deleted so far${unanswered}, every one of them in the backup ${backupDir}; restore is not needed: re-run clean when ${silent.source} answers`;
}

/** Refuses a cleanup whose child or parent source is connected to a member that is not the primary. */
async function assertSourcesArePrimaries(options: CleanupOptions, work: RelationPlan[]): Promise<void> {
  const names = new Set(
    work.flatMap((plan) => {
      const relation = options.config.relations.find((r) => r.name === plan.name)!;
      return [relation.child.source, relation.parent.source];
    }),
  );
  for (const name of names) {
    if (await isWritablePrimary(await options.pool.client(name))) continue;
    throw new RuntimeError(
      `cleanup refused: source ${name} is connected to a member that is not the primary (a direct connection to a secondary?): deletes and the parents' re-check must run on the primary; connect to the replica set (replicaSet=… or mongodb+srv) or to the primary; nothing was deleted`,
    );
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
  const sampled = work.find((relation) => relation.sampled);
  if (sampled)
    throw new Error(
      `the plan of ${sampled.name} holds a sample of its candidates (a dry run's): scan with candidates to execute it`,
    );
  await assertSourcesArePrimaries(options, work);
  await assertBackupRootUsable(
    plan.backupRoot,
    work.reduce((sum, r) => sum + r.estimatedBackupBytes, 0),
  );
  // Run records an earlier run could not write (its child cluster was silent) go in first, from the audit log.
  await writeMissingRunRecords(plan.backupRoot, options.config, options.pool, access);
  const runId = newRunId(options.now);
  const operator = currentOperator(options.operator);
  const backup = await BackupWriter.create(plan.backupRoot, runId, { operator, host: currentHost() });
  const outcomes: RelationOutcome[] = [];
  let status: RunStatus = 'completed';
  let error: string | undefined;
  const startedAt = new Date();
  const activity: Activity = { doing: 'starting', unanswered: 0 };
  try {
    for (const relation of work) {
      if (options.signal?.aborted) break;
      const outcome = newOutcome(relation);
      outcomes.push(outcome);
      await cleanRelation(options, relation, backup, runId, outcome, activity);
    }
    if (options.signal?.aborted) status = 'aborted';
  } catch (caught) {
    status = 'failed';
    error = failureLine(caught, options.pool, activity, outcomes, backup.dir);
    log.error({ error }, 'cleanup failed');
  }
  // The trail is written whatever happened; what cannot be written is said in the run's error, not dropped.
  const unwritten: string[] = [];
  const note = (what: string) => (caught: unknown) => {
    unwritten.push(`${what}: ${redact((caught as Error).message)}`);
  };
  // A run that failed before its first backup (locked out, refused) leaves no empty run directory behind.
  const discarded = status !== 'completed' && (await backup.discardIfEmpty().catch(() => false));
  if (!discarded)
    await backup.finish(status, error).catch(note('the manifest could not record the end of the run'));
  const runDir = discarded ? undefined : backup.dir;
  const finishedAt = new Date();
  const unrecordedRuns: RunRecord[] = [];
  for (const outcome of outcomes) {
    const relation = options.config.relations.find((r) => r.name === outcome.name)!;
    const run: RunRecord = {
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
      ...(runDir ? { backupPath: runDir } : {}),
      ...(error ? { error } : {}),
    };
    try {
      await new RunsStore(await options.pool.primaryDb(relation.child.source), access).record(run);
    } catch {
      // Kept in the audit line below; the next run that reaches the cluster writes it (unrecorded-runs.ts).
      unrecordedRuns.push(run);
    }
  }
  await appendAudit(plan.backupRoot, {
    kind: 'clean',
    runId,
    operator,
    host: currentHost(),
    status,
    error,
    ...(runDir ? { backup: runDir } : {}),
    relations: outcomes,
    ...(unrecordedRuns.length ? { unrecordedRuns } : {}),
  }).catch(note('the audit line could not be written'));
  if (unrecordedRuns.length)
    unwritten.push(
      `the run's record (${unrecordedRuns.map((r) => r.relation).join(', ')}) could not be written to orphan_cleanup_runs; it is in ${runDir ? `${join(runDir, MANIFEST_FILE)} and ` : ''}${join(plan.backupRoot, AUDIT_FILE)}, and the next clean that reaches the cluster writes it`,
    );
  if (unwritten.length) {
    error = [error, ...unwritten].filter(Boolean).join('; ');
    if (status === 'completed') status = 'failed';
  }
  return { runId, ...(runDir ? { runDir } : {}), status, ...(error ? { error } : {}), relations: outcomes };
}
