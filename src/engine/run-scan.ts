// Over 300 lines: a relation's scan around the join: stores, guards, trend, checkpoint records, report.

import type { Db } from 'mongodb';
import type { Relation, ResolvedConfig } from '../config/load.ts';
import { DAY_MS, HOUR_MS } from '../limits.ts';
import { log } from '../logging.ts';
import { serverClock } from '../mongo/capabilities.ts';
import { failureHint } from '../mongo/connection.ts';
import { valuesForKey } from '../mongo/keys.ts';
import { redact } from '../mongo/redact.ts';
import type { SourcePool } from '../mongo/sources.ts';
import { CLOCK_SKEW_WARN_MS } from '../mongo/timeouts.ts';
import { OWNED_COLLECTIONS, type WriteAccess } from '../store/access.ts';
import { ExceptionsStore } from '../store/exceptions.ts';
import { FirstSeenStore } from '../store/first-seen.ts';
import { currentHost, currentOperator, newRunId, type RunRecord, RunsStore } from '../store/runs.ts';
import {
  MAX_CANDIDATE_PARTS,
  relationFingerprint,
  validCheckpoint,
  withCandidateParts,
} from './checkpoint.ts';
import { splitPartitions } from './child-stream.ts';
import { unsafeReasons } from './guards.ts';
import { checkParentCollection } from './parent-checks.ts';
import { ParentProbe } from './probe.ts';
import { promoteSafeLongs } from './raw-bson.ts';
import {
  type Candidate,
  type Category,
  type CategoryCounts,
  CHECKPOINT_CANDIDATES,
  fillSampleDocuments,
  type RelationScanResult,
  type Sample,
  type ScanCheckpoint,
  type ScanProgress,
  scanRelation,
} from './scan.ts';

/** Growth is measured against a scan at least this old when there is one, so minutes-apart scans don't extrapolate noise. */
const GROWTH_WINDOW_MS = 12 * HOUR_MS;
/** Candidate parts are rewritten as one when they hold this many times the kept candidates. */
const CANDIDATE_PARTS_COMPACT_AFTER = 4;

export interface Endpoint {
  source: string;
  database: string;
  collection: string;
  field: string;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
}

export interface RelationReport {
  name: string;
  child: Endpoint;
  parent: Endpoint;
  scanned: number;
  /** Child documents this run read: all of them, or the rest of a resumed scan. */
  documentsRead: number;
  /** The relation's grace period: an unresolved child becomes deletable this many days after `since`. */
  graceDays: number;
  ok: number;
  orphans: number;
  parentInactive: number;
  invalidReference: number;
  excepted: number;
  inGrace: number;
  deletable: number;
  safe: boolean;
  unsafeReasons: string[];
  durationMs: number;
  /** Orphans now minus orphans at the previous complete scan; null on the first scan. */
  changeSincePrevious: number | null;
  /** New orphans per day since the reference scan (deletes in between added back); null when unknown. */
  growthPerDay: number | null;
  complete: boolean;
  /** When this relation's scan began reading (the first start of a resumed one). */
  startedAt?: Date;
  error?: string;
  estimatedTotal: number;
  samples: Record<Category, Sample[]>;
  candidates: Candidate[];
  roundTrips: { childBatches: number; parentProbes: number; sizeQueries: number };
  probeLatencyMs: LatencySummary;
  /** Every parent probe's duration (cross-database latency), for the histogram. */
  probeDurationsMs: number[];
  /** BSON bytes of the orphaned and inactive children found. */
  orphanBytes: number;
  runId: string;
}

export interface ScanReport {
  startedAt: Date;
  finishedAt: Date;
  relations: RelationReport[];
}

export interface RunScanOptions {
  config: ResolvedConfig;
  pool: SourcePool;
  access: WriteAccess;
  now?: Date;
  signal?: AbortSignal;
  onProgress?: (progress: ScanProgress) => void;
  /**
   * Keep the oldest this many deletable children per relation, for a cleanup plan (`--max-deletes` when
   * executing, Infinity without it; a dry run keeps a sample only): memory follows this, not the backlog.
   */
  candidateLimit?: number;
  /** Fetch whole documents for the samples (the console's review screen). */
  sampleDocuments?: boolean;
  operator?: string;
  /** Record the scan in the runs history (a cleanup's dry run writes nothing but first-seen state). */
  record?: boolean;
  /** Continue each relation's latest unfinished scan from its checkpoint (from the start when it has none). */
  resume?: boolean;
  /** Read the child collection as this many `_id` ranges at once (default 1). */
  parallel?: number;
  /** How often an unfinished scan records its checkpoint (default CHECKPOINT_INTERVAL_MS). */
  checkpointIntervalMs?: number;
  /** Something the operator should see at once (a skewed clock), besides the log. */
  onNotice?: (message: string) => void;
}

export function latencySummary(durations: number[]): LatencySummary {
  if (durations.length === 0) return { count: 0, p50: 0, p95: 0, p99: 0 };
  const sorted = [...durations].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { count: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/** Children still pointing at a missing or inactive parent: what cleanup removes and growth measures. */
function unresolved(counts: Record<string, number>): number {
  return (counts.orphans ?? 0) + (counts.parentInactive ?? 0);
}

/**
 * Change in orphans since the previous complete scan, and growth: new unresolved children per day since a
 * reference scan, with the cleanups (deleted) and restores (inserted) in between taken out.
 */
async function trendOf(
  runs: RunsStore,
  relation: string,
  counts: Record<string, number>,
  now: Date,
): Promise<{ change: number | null; growth: number | null }> {
  const previous = await runs.previousScan(relation);
  if (!previous) return { change: null, growth: null };
  const history = await runs.recent({ relation, limit: 200 });
  const scans = history.filter((run) => run.kind === 'scan' && run.complete && run.outcome === 'succeeded');
  const reference =
    scans.find((run) => now.getTime() - run.startedAt.getTime() >= GROWTH_WINDOW_MS) ?? previous;
  const since = history.filter((run) => run.startedAt >= reference.startedAt);
  const deleted = since
    .filter((run) => run.kind === 'clean')
    .reduce((sum, run) => sum + (run.counts.deleted ?? 0), 0);
  const restored = since
    .filter((run) => run.kind === 'restore')
    .reduce((sum, run) => sum + (run.counts.inserted ?? 0), 0);
  const days = Math.max(now.getTime() - reference.startedAt.getTime(), HOUR_MS) / DAY_MS;
  const fresh = unresolved(counts) - unresolved(reference.counts) + deleted - restored;
  return {
    change: (counts.orphans ?? 0) - (previous.counts.orphans ?? 0),
    growth: Math.round((fresh / days) * 10) / 10,
  };
}

/** The keys whose parent is still missing or inactive now (probed in batches of 500). */
async function stillUnresolved(
  relation: Relation,
  parentDb: Db,
  keys: string[],
  maxTimeMS: number,
): Promise<Set<string>> {
  const probe = new ParentProbe(relation, parentDb, { maxTimeMS });
  const unresolved = new Set<string>();
  for (let i = 0; i < keys.length; i += 500) {
    // A stored key that is no key under the relation's rule (written by hand) names no parent: not kept.
    const batch = new Map<string, unknown>();
    for (const key of keys.slice(i, i + 500)) {
      let value: unknown;
      try {
        [value] = valuesForKey(key, relation.keyMatch);
      } catch {
        value = undefined;
      }
      if (value !== undefined) batch.set(key, value);
    }
    for (const [key, state] of await probe.probe(batch)) if (state.kind !== 'active') unresolved.add(key);
  }
  return unresolved;
}

async function scanOne(options: RunScanOptions, relation: Relation, now: Date): Promise<RelationReport> {
  const { config, pool, access } = options;
  const childSource = pool.source(relation.child.source);
  const parentSource = pool.source(relation.parent.source);
  const childDb = await pool.db(relation.child.source);
  const parentDb = await pool.db(relation.parent.source);
  const children = childDb.collection(relation.child.collection);
  const parents = parentDb.collection(relation.parent.collection);
  // The tool's own state is read where it is written, the primary: a secondary may not have the last run's
  // checkpoint or first sightings yet, whatever the read preference of the scan itself.
  const stateDb = await pool.primaryDb(relation.child.source);
  const runs = new RunsStore(stateDb, access);
  const resumed = options.resume ? await resumableScan(options, runs, relation) : undefined;
  const scanTime = resumed?.scanTime ?? now;
  const firstSeenStore = new FirstSeenStore(stateDb, relation.name, access);
  const runId = resumed?.runId ?? newRunId(now);
  const [exceptions, sightings] = await Promise.all([
    new ExceptionsStore(stateDb, access).index(relation.name, now),
    firstSeenStore.loadIndex(config.maxTimeMS, runId),
  ]);
  if (sightings.rejected)
    options.onNotice?.(
      `${relation.name}: ${sightings.rejected} first-seen document(s) in ${OWNED_COLLECTIONS.firstSeen} fail their checks (a key, a valid date, the _id the tool writes for that key); their references count as first seen now (in grace) and are written again`,
    );
  const parentCount = await parents.estimatedDocumentCount().catch(() => undefined);
  const durations: number[] = [];
  const startedAt = resumed?.startedAt ?? new Date();
  const operator = currentOperator(options.operator);
  let result: RelationScanResult | undefined;
  let error: string | undefined;
  let parentProblems: string[] = [];
  /** The last checkpoint written: an unfinished scan's record keeps it, and its first-seen state stays staged. */
  let checkpoint: ScanCheckpoint | undefined = resumed?.checkpoint;
  // Candidates are appended, a part per checkpoint holding those kept since the previous one (the record keeps
  // only the head: positions, tallies, samples); once the parts hold several times the kept candidates, one
  // part with all of them replaces them.
  let parts = resumed?.checkpoint.candidateParts ?? { from: 0, through: -1 };
  let appendedSinceFull = 0;
  const onCheckpoint = access.readOnly
    ? undefined
    : async (next: ScanCheckpoint) => {
        const { candidates, newCandidates = [], ...rest } = next;
        const seq = parts.through + 1;
        appendedSinceFull += newCandidates.length;
        const compact = appendedSinceFull > CANDIDATE_PARTS_COMPACT_AFTER * CHECKPOINT_CANDIDATES;
        const append = compact ? candidates : newCandidates;
        const nextParts = append.length ? { from: compact ? seq : parts.from, through: seq } : parts;
        // The fingerprint ties it to this definition of the relation: a resume checks it (checkpoint.ts).
        const head = {
          ...rest,
          candidates: [],
          candidateParts: nextParts,
          fingerprint: relationFingerprint(relation),
        };
        // The first sightings of the part the checkpoint covers are written before it: a resume never
        // reads that part again.
        await firstSeenStore.flush();
        await runs.saveCheckpoint(
          { runId, relation: relation.name, startedAt, operator, host: currentHost(), scanTime },
          head as unknown as Record<string, unknown>,
          next.scanned,
          append.length ? { seq, candidates: append } : undefined,
          compact ? seq : undefined,
        );
        if (compact) appendedSinceFull = 0;
        parts = nextParts;
        checkpoint = head;
      };
  try {
    const preflight = await checkParentCollection(
      relation,
      parentDb,
      config.allowCollectionScan,
      config.maxTimeMS,
    );
    parentProblems = preflight.unsafe;
    if (preflight.refusal) throw new Error(preflight.refusal);
    const partitions = resumed
      ? undefined
      : await splitPartitions(children, options.parallel ?? 1, config.maxTimeMS);
    if (partitions && partitions.length < (options.parallel ?? 1))
      options.onNotice?.(
        `${relation.name}: ${partitions.length} partition(s) instead of ${options.parallel} (too few distinct _ids)`,
      );
    result = await scanRelation({
      relation,
      children,
      parentDb,
      exceptions,
      firstSeen: {
        // Answered from memory (no query per probe batch); only what changed is written, in bulk.
        sight: (keys, inactive) => firstSeenStore.note(sightings, keys, inactive, runId, scanTime),
      },
      now: scanTime,
      partitions,
      resume: resumed?.checkpoint,
      onCheckpoint,
      checkpointIntervalMs: options.checkpointIntervalMs,
      sampleSize: config.sampleSize,
      maxTimeMS: config.maxTimeMS,
      candidateLimit: keptCandidates(options),
      signal: options.signal,
      onProgress: options.onProgress,
      onProbe: (ms) => durations.push(ms),
    });
    // Kept for the checkpoint (see keptCandidates); the run itself asked for fewer.
    if (result.candidates.length > (options.candidateLimit ?? 0))
      result.candidates = result.candidates.slice(0, options.candidateLimit ?? 0);
    if (options.sampleDocuments) await fillSampleDocuments(children, result.samples);
  } catch (caught) {
    // A source given up on for silence is said in plain words, not as the driver's error for the ended read.
    const silent = pool.silentSources()[0];
    const hint = failureHint(caught);
    error = silent
      ? `${silent.message} while scanning ${relation.name} (${relation.child.collection} against ${relation.parent.collection}); nothing was deleted: re-run the scan when ${silent.source} answers`
      : redact(`${(caught as Error).message}${hint ? ` (${hint})` : ''}`);
  }
  const counts: CategoryCounts = result?.counts ?? {
    ok: 0,
    orphans: 0,
    parentInactive: 0,
    invalidReference: 0,
    excepted: 0,
  };
  const complete = Boolean(result?.complete) && !error;
  const reasons = unsafeReasons({
    config,
    relation,
    childSource,
    parentSource,
    parentCount,
    scanned: result?.scanned ?? 0,
    ok: counts.ok,
    orphans: counts.orphans,
    parentInactive: counts.parentInactive,
    parentProblems,
    ambiguousSoftDelete: result?.ambiguousSoftDelete,
    mixedCaseHexChildren: result?.mixedCaseHexChildren ?? 0,
    incompleteReason: error
      ? `scan failed: ${error}`
      : complete
        ? undefined
        : 'scan was stopped before the end',
  });
  if (error) log.error({ relation: relation.name, error }, 'scan failed');
  if (reasons.length)
    log.warn(
      { relation: relation.name, reasons },
      'guard: relation is unsafe; destructive commands refuse it',
    );
  // After a failed scan the child cluster may be what failed: its history is not needed, and not waited for.
  const trend = error
    ? { change: null, growth: null }
    : await trendOf(runs, relation.name, { ...counts }, now);
  if (!access.readOnly) {
    if (complete)
      await firstSeenStore.confirmScan(
        runId,
        sightings,
        config.maxTimeMS,
        // A resumed scan did not see the first part itself: unseen keys are re-checked, forgotten only when
        // their parent is back.
        resumed
          ? async (keys) =>
              stillUnresolved(relation, await pool.primaryDb(relation.parent.source), keys, config.maxTimeMS)
          : undefined,
      );
    // A resumable scan's staged keys wait for its end; pending, they count for nobody meanwhile.
    else if (!checkpoint) await firstSeenStore.discard(runId, config.maxTimeMS).catch(() => undefined);
  }
  const finishedAt = new Date();
  const report: RelationReport = {
    name: relation.name,
    child: {
      source: childSource.name,
      database: childSource.database,
      collection: relation.child.collection,
      field: relation.child.field,
    },
    parent: {
      source: parentSource.name,
      database: parentSource.database,
      collection: relation.parent.collection,
      field: relation.parent.field,
    },
    scanned: result?.scanned ?? 0,
    documentsRead: result?.readHere ?? 0,
    graceDays: relation.graceDays,
    ...counts,
    inGrace: result?.inGrace ?? 0,
    deletable: result?.deletable ?? 0,
    safe: reasons.length === 0,
    unsafeReasons: reasons,
    durationMs: Math.round(result?.durationMs ?? finishedAt.getTime() - startedAt.getTime()),
    changeSincePrevious: complete ? trend.change : null,
    growthPerDay: complete ? trend.growth : null,
    complete,
    startedAt,
    ...(error ? { error } : {}),
    estimatedTotal: result?.estimatedTotal ?? 0,
    samples: result?.samples ?? {
      ok: [],
      orphans: [],
      parentInactive: [],
      invalidReference: [],
      excepted: [],
    },
    candidates: result?.candidates ?? [],
    roundTrips: result?.roundTrips ?? { childBatches: 0, parentProbes: 0, sizeQueries: 0 },
    probeLatencyMs: latencySummary(durations),
    probeDurationsMs: durations,
    orphanBytes: result?.unresolvedBytes ?? 0,
    runId,
  };
  log.info(
    {
      relation: relation.name,
      scanned: report.scanned,
      ...counts,
      inGrace: report.inGrace,
      deletable: report.deletable,
      durationMs: report.durationMs,
      probeP95Ms: Math.round(report.probeLatencyMs.p95),
    },
    'scan finished',
  );
  if (!access.readOnly && options.record === false && complete) await runs.forget(runId, relation.name);
  // An unfinished scan is recorded whenever it left a checkpoint: that is what `--resume` continues.
  if (!access.readOnly && (options.record !== false || (!complete && checkpoint))) {
    const run: RunRecord = {
      runId,
      kind: 'scan',
      relation: relation.name,
      startedAt,
      finishedAt,
      durationMs: report.durationMs,
      operator,
      host: currentHost(),
      outcome: error ? 'failed' : complete ? 'succeeded' : 'aborted',
      complete,
      counts: {
        scanned: report.scanned,
        ...counts,
        inGrace: report.inGrace,
        deletable: report.deletable,
        orphanBytes: report.orphanBytes,
        probeP95Ms: Math.round(report.probeLatencyMs.p95),
      },
      ...(error ? { error } : {}),
      ...(!complete && checkpoint
        ? { checkpoint: checkpoint as unknown as Record<string, unknown>, scanTime }
        : {}),
    };
    if (error)
      await runs
        .record(run)
        .catch((caught: Error) =>
          log.warn(
            { relation: relation.name, error: redact(caught.message) },
            'the failed scan was not recorded',
          ),
        );
    else await runs.record(run);
  }
  // A complete scan needs its checkpoint's candidate parts no more.
  if (!access.readOnly && complete && options.record !== false && checkpoint)
    await runs.forgetCandidateParts(runId, relation.name).catch(() => undefined);
  return report;
}

/**
 * Candidates a scan keeps: what the run asked for, and, when it records checkpoints, at least the oldest
 * CHECKPOINT_CANDIDATES, so that any run may resume it (a plain scan by a dry run, a console's cleanup or a
 * `clean --execute --max-deletes`): a bounded cost, about 1 MB.
 */
function keptCandidates(options: RunScanOptions): number {
  const requested = options.candidateLimit ?? 0;
  return options.access.readOnly || requested > CHECKPOINT_CANDIDATES ? requested : CHECKPOINT_CANDIDATES;
}

/**
 * The unfinished scan `--resume` continues, when there is one it can: same relation, no complete scan since,
 * and (for a cleanup) candidates kept for at least this run's limit. Otherwise one line says why it starts over.
 */
async function resumableScan(
  options: RunScanOptions,
  runs: RunsStore,
  relation: Relation,
): Promise<{ runId: string; startedAt: Date; scanTime: Date; checkpoint: ScanCheckpoint } | undefined> {
  const found = await runs.resumable(relation.name);
  if (!found?.checkpoint) {
    options.onNotice?.(`${relation.name}: no unfinished scan to resume; scanning from the start`);
    return undefined;
  }
  // Read back from a collection any scan-role user can write: checked like input, refused whole if anything is off.
  // The candidates are in parts beside the record: the kept ones are the oldest of them all.
  const refuse = (reason: string) => {
    options.onNotice?.(
      `${relation.name}: the checkpoint of unfinished scan ${found.runId} is not resumed: ${reason}; scanning from the start`,
    );
    log.warn({ relation: relation.name, runId: found.runId, reason }, 'checkpoint refused');
    return undefined;
  };
  let raw: unknown;
  try {
    raw = await withCandidateParts(promoteSafeLongs(found.checkpoint), (range) =>
      runs.candidateParts(found.runId, relation.name, range, MAX_CANDIDATE_PARTS),
    );
  } catch (error) {
    return refuse((error as Error).message);
  }
  const valid = validCheckpoint(raw, relation);
  if ('refused' in valid) return refuse(valid.refused);
  const { checkpoint } = valid;
  const needed = options.candidateLimit ?? 0;
  if (needed > checkpoint.candidateLimit) {
    options.onNotice?.(
      `${relation.name}: the unfinished scan ${found.runId} kept ${checkpoint.candidateLimit} candidates, this run needs ${needed}; scanning from the start`,
    );
    return undefined;
  }
  const done = checkpoint.partitions.filter((p) => p.done).length;
  options.onNotice?.(
    `${relation.name}: resuming scan ${found.runId} after ${checkpoint.scanned.toLocaleString('en-US')} documents (${done}/${checkpoint.partitions.length} ranges done)`,
  );
  return {
    runId: found.runId,
    startedAt: found.startedAt,
    scanTime: found.scanTime ?? found.startedAt,
    checkpoint,
  };
}

/** Scans every configured relation in turn; the same function behind the console, `scan`, `clean` and `serve`. */
export async function runScan(options: RunScanOptions): Promise<ScanReport> {
  const startedAt = new Date();
  const now = options.now ?? (await serverNow(options));
  const relations: RelationReport[] = [];
  for (const relation of options.config.relations) {
    if (options.signal?.aborted) break;
    relations.push(await scanOne(options, relation, now));
  }
  return { startedAt, finishedAt: new Date(), relations };
}

/**
 * The time grace and first-seen state are judged by: the first child source's clock, so hosts with skewed
 * clocks agree on when an orphan became deletable. A skew past the limit is logged once.
 */
async function serverNow(options: RunScanOptions): Promise<Date> {
  const first = options.config.relations[0];
  if (!first) return new Date();
  const { now, offsetMs } = await serverClock(await options.pool.client(first.child.source));
  if (Math.abs(offsetMs) > CLOCK_SKEW_WARN_MS) {
    const message = `warning: this machine's clock is ${Math.round(offsetMs / -1000)} s off ${first.child.source}'s; the server's clock is used for grace, first-seen times and leases`;
    log.warn({ source: first.child.source, offsetSeconds: Math.round(offsetMs / 1000) }, message);
    options.onNotice?.(message);
  }
  return now;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** A relation's counts, in the documented order: what reports, runs and the HTTP API show. */
export function relationCounts(r: RelationReport) {
  return {
    scanned: r.scanned,
    ok: r.ok,
    orphans: r.orphans,
    parentInactive: r.parentInactive,
    invalidReference: r.invalidReference,
    excepted: r.excepted,
    inGrace: r.inGrace,
    deletable: r.deletable,
  };
}

/** The `scan --json` shape: the documented fields, plus the trend. */
export function scanReportJson(report: ScanReport): object {
  return {
    startedAt: report.startedAt.toISOString(),
    finishedAt: report.finishedAt.toISOString(),
    relations: report.relations.map((r) => ({
      name: r.name,
      child: r.child,
      parent: r.parent,
      ...relationCounts(r),
      safe: r.safe,
      unsafeReasons: r.unsafeReasons,
      durationMs: r.durationMs,
      changeSincePrevious: r.changeSincePrevious,
      growthPerDay: r.growthPerDay,
      // Of `scanned`, the documents this run read (less when it resumed a scan).
      documentsRead: r.documentsRead,
      orphanBytes: r.orphanBytes,
      probeLatencyMs: {
        p50: round(r.probeLatencyMs.p50),
        p95: round(r.probeLatencyMs.p95),
        p99: round(r.probeLatencyMs.p99),
      },
      ...(r.error ? { error: r.error } : {}),
    })),
  };
}
