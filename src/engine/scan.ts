// Over 300 lines: the streaming join, its partitions and its checkpoints share one classification state.
import { EJSON } from 'bson';
import type { Collection, Db, Document } from 'mongodb';
import type { Relation } from '../config/load.ts';
import { RuntimeError } from '../errors.ts';
import { DAY_MS } from '../limits.ts';
import { log } from '../logging.ts';
import { documentKey, type ExceptionIndex } from '../store/exceptions.ts';
import { escapeForTerminal } from '../terminal-text.ts';
import { type Partition, partitionBatches } from './child-stream.ts';
import { OldestFirst } from './oldest-first.ts';
import { type AmbiguousSoftDelete, ParentProbe, type ParentState } from './probe.ts';
import { ProbeScheduler } from './probe-scheduler.ts';
import { decodeValue, RawFieldReader } from './raw-bson.ts';
import { ReferenceCache } from './reference-cache.ts';

export const CATEGORIES = ['ok', 'orphans', 'parentInactive', 'invalidReference', 'excepted'] as const;
export type Category = (typeof CATEGORIES)[number];
export type CategoryCounts = Record<Category, number>;

const CHILD_BATCH_SIZE = 5000;
const PROBES_IN_FLIGHT = 4;
/**
 * Keys the cache remembers, over its two generations (a generation turns over at half): enough for the parents
 * of a typical relation without re-probing them, and the bound that keeps a scan's memory from following the
 * orphan backlog (an orphan's key mostly appears once).
 */
const KEY_CACHE_LIMIT = 400_000;
const PROGRESS_INTERVAL_MS = 200;
/** Ids per query when measuring the stored size of the unresolved children. */
const SIZE_BATCH = 5000;

export interface Sample {
  id: unknown;
  reference: unknown;
  /** When the reference became an orphan or inactive, as far as the tool knows. */
  since?: Date;
  /** The whole child document, fetched after the scan (or when the console's viewer opens a listed child). */
  doc?: Document;
  /** Set while the viewer reads `doc`, or to why it could not. */
  docState?: string;
}

/** A child that may be deleted: an orphan or inactive reference past its grace period. */
export interface Candidate {
  id: unknown;
  reference: unknown;
  key: string;
  category: 'orphans' | 'parentInactive';
  since: Date;
}

/** First sightings, read and written per probe batch (the store in the child database, or nothing in a bench). */
export interface FirstSeenSource {
  /**
   * Notes the keys a probe batch found unresolved (`inactive`: those whose parent is there but deleted or
   * inactive; the others are missing) and returns the first sightings confirmed by earlier complete scans.
   */
  sight(keys: string[], inactive: Set<string>): Promise<Map<string, Date>>;
}

export interface ScanProgress {
  relation: string;
  scanned: number;
  estimatedTotal: number;
  counts: CategoryCounts;
  docsPerSecond: number;
  etaSeconds: number | undefined;
}

export interface RelationScanInput {
  relation: Relation;
  children: Collection;
  parentDb: Db;
  exceptions: ExceptionIndex;
  /** When earlier complete scans first saw keys unresolved; told, a probe batch at a time, what this scan sees. */
  firstSeen: FirstSeenSource;
  now: Date;
  sampleSize: number;
  maxTimeMS: number;
  /** Keep the oldest this many deletable children (a plan's candidates); none when 0 or absent. */
  candidateLimit?: number;
  signal?: AbortSignal;
  onProgress?: (progress: ScanProgress) => void;
  /** Called with the duration of every parent probe (cross-database latency). */
  onProbe?: (ms: number) => void;
  /** `_id` ranges read concurrently (one reader each); the whole collection when absent. */
  partitions?: Partition[];
  /** Continue from this checkpoint (its partitions and tallies) instead of from the start. */
  resume?: ScanCheckpoint;
  /** Records the scan's position and tallies every `checkpointIntervalMs` and when it stops early. */
  onCheckpoint?: (checkpoint: ScanCheckpoint) => Promise<void>;
  checkpointIntervalMs?: number;
}

export interface RelationScanResult {
  counts: CategoryCounts;
  scanned: number;
  /** Documents this process read: all of them, or the rest of a resumed scan. */
  readHere: number;
  inGrace: number;
  deletable: number;
  estimatedTotal: number;
  /** False when the scan was aborted before the end of the child collection. */
  complete: boolean;
  samples: Record<Category, Sample[]>;
  /** The oldest deletable children, at most `candidateLimit`, oldest first. */
  candidates: Candidate[];
  /**
   * BSON bytes of the orphaned and inactive children (their stored size, from `$bsonSize`): measured one
   * query at a time, and extrapolated from the batches measured when the scan outran the measurement.
   */
  unresolvedBytes: number;
  roundTrips: { childBatches: number; parentProbes: number; sizeQueries: number };
  durationMs: number;
  /** A parent whose soft-delete field is neither a deletion mark nor a live value, if one was seen. */
  ambiguousSoftDelete?: AmbiguousSoftDelete;
  /** Children read whose reference is a mixed-case 24-hex string (objectid-or-hex): the relation is unsafe. */
  mixedCaseHexChildren: number;
}

function emptyCounts(): CategoryCounts {
  return { ok: 0, orphans: 0, parentInactive: 0, invalidReference: 0, excepted: 0 };
}

interface PendingChild {
  id: unknown;
  reference: unknown;
}

/**
 * What a scan has counted so far, consistent with its partitions' `after`: every child up to there counted
 * once, nothing beyond. Written every CHECKPOINT_INTERVAL_MS and when a scan stops, so `--resume` continues.
 */
export interface ScanCheckpoint
  extends Pick<
    RelationScanResult,
    'counts' | 'scanned' | 'inGrace' | 'deletable' | 'samples' | 'roundTrips' | 'durationMs'
  > {
  /** Mixed-case hex references read before the checkpoint (absent in checkpoints of older versions). */
  mixedCaseHexChildren?: number;
  /** The relation definition it was taken for (`checkpoint.ts`), stamped when it is saved. */
  fingerprint?: string;
  partitions: Partition[];
  /** The oldest candidates so far, at most `candidateLimit` of them (none kept when that is above the cap). */
  candidates: Candidate[];
  /**
   * Those of `candidates` kept since the previous checkpoint: what a save appends (`RunsStore.saveCheckpoint`);
   * the kept candidates are always the oldest of everything appended. Not part of the saved head.
   */
  newCandidates?: Candidate[];
  /** The saved parts holding the candidates (`from`..`through`); a resume reads them back into `candidates`. */
  candidateParts?: { from: number; through: number };
  candidateLimit: number;
  /** `bytes` and `measured` weighted by the batches each sampled one stands for; `batches` formed so far. */
  storage: { bytes: number; measured: number; unmeasured: number; batches?: number };
}

/** A checkpoint keeps candidates only up to this many (a bounded document, rewritten every few seconds). */
export const CHECKPOINT_CANDIDATES = 10_000;
/** How often a scan that can be resumed records where it is. */
export const CHECKPOINT_INTERVAL_MS = 5000;

/**
 * The client-side join: streams the child collection as raw BSON along its `_id` index (decoding only `_id`
 * and the reference), one reader per partition, probes parents in `$in` batches with a few in flight, and
 * sorts every child into exactly one category. With `onCheckpoint`, every few seconds the readers stop at a
 * batch boundary, the probes in flight finish, and the tallies and positions are handed over together.
 */
export async function scanRelation(input: RelationScanInput): Promise<RelationScanResult> {
  const { relation, now } = input;
  const started = performance.now();
  const resume = input.resume;
  const counts = resume ? { ...resume.counts } : emptyCounts();
  const samples = resume
    ? (Object.fromEntries(CATEGORIES.map((c) => [c, [...(resume.samples[c] ?? [])]])) as Record<
        Category,
        Sample[]
      >)
    : (Object.fromEntries(CATEGORIES.map((c) => [c, [] as Sample[]])) as Record<Category, Sample[]>);
  const candidateLimit = input.candidateLimit ?? 0;
  // With checkpoints, what entered the kept candidates since the last one is appended to it (not all of them).
  const keptInCheckpoints = Boolean(input.onCheckpoint) && candidateLimit <= CHECKPOINT_CANDIDATES;
  const candidates = new OldestFirst<Candidate>(candidateLimit, (c) => c.since.getTime(), keptInCheckpoints);
  for (const candidate of resume?.candidates ?? []) candidates.offer(candidate);
  // The resumed checkpoint holds those already.
  candidates.takeAdded();
  const partitions: Partition[] = (resume?.partitions ?? input.partitions ?? [{ done: false }]).map((p) => ({
    ...p,
  }));
  const graceMs = relation.graceDays * DAY_MS;
  const roundTrips = resume ? { ...resume.roundTrips } : { childBatches: 0, parentProbes: 0, sizeQueries: 0 };
  let inGrace = resume?.inGrace ?? 0;
  let deletable = resume?.deletable ?? 0;
  let scanned = resume?.scanned ?? 0;
  /** Documents this process read (a resumed scan reads only the rest). */
  let readHere = 0;
  let unresolvedIds: unknown[] = [];
  /**
   * Storage is measured in the background, one query in flight, on a sample of the unresolved children that
   * thins as they grow (storageSampled): every batch of the first 40,000, then one batch in 2, in 4, … each
   * counting for the batches it stands for, so a backlog of ten million costs ~40 queries, not 2,000 random
   * document reads on the child's server. A sampled batch that fills while one is measured is counted, not
   * measured, and the total extrapolated from the rest.
   */
  const storage = {
    bytes: resume?.storage.bytes ?? 0,
    measured: resume?.storage.measured ?? 0,
    unmeasured: resume?.storage.unmeasured ?? 0,
    batches: resume?.storage.batches ?? 0,
    inFlight: undefined as Promise<void> | undefined,
    failed: undefined as Error | undefined,
  };
  const measureStorage = () => {
    if (unresolvedIds.length === 0) return;
    const ids = unresolvedIds;
    unresolvedIds = [];
    const weight = storageSampled(storage.batches++);
    if (weight === 0) return;
    if (storage.inFlight) {
      storage.unmeasured += weight * ids.length;
      return;
    }
    storage.inFlight = storedBytes(input.children, ids, roundTrips, input.maxTimeMS).then(
      (bytes) => {
        storage.bytes += weight * bytes;
        storage.measured += weight * ids.length;
        storage.inFlight = undefined;
      },
      (error: Error) => {
        storage.failed = error;
        storage.inFlight = undefined;
      },
    );
  };

  const estimatedTotal = await input.children.estimatedDocumentCount({ maxTimeMS: input.maxTimeMS });
  const cache = new ReferenceCache(
    relation.keyMatch,
    input.exceptions.referenceKeys,
    KEY_CACHE_LIMIT,
    estimatedTotal,
  );

  const sample = (category: Category, entry: Sample) => {
    if (samples[category].length < input.sampleSize) samples[category].push(entry);
  };

  const classify = (child: PendingChild, key: string, state: ParentState) => {
    if (state.kind === 'active') {
      counts.ok++;
      sample('ok', child);
      return;
    }
    const category = state.kind === 'missing' ? 'orphans' : 'parentInactive';
    counts[category]++;
    unresolvedIds.push(child.id);
    if (unresolvedIds.length >= SIZE_BATCH) measureStorage();
    // A soft-delete time, else the first sighting by a complete scan, else now (seen for the first time).
    const since = state.since ?? now;
    if (samples[category].length < input.sampleSize)
      samples[category].push({ id: child.id, reference: child.reference, since });
    if (now.getTime() - since.getTime() < graceMs) inGrace++;
    else {
      deletable++;
      candidates.offer({ id: child.id, reference: child.reference, key, category, since });
    }
  };

  const parentProbe = new ParentProbe(relation, input.parentDb, {
    maxTimeMS: input.maxTimeMS,
    onProbe: input.onProbe,
  });
  /** Tallies no longer match the partitions' positions (a reader stopped mid-batch; a failed probe says so itself). */
  let torn = false;
  const probe = async (batch: Map<string, { original: unknown; children: PendingChild[] }>) => {
    // Loops, not spreads: a probe of 1,000 keys allocated some 4,000 short-lived arrays here.
    const originals = new Map<string, unknown>();
    for (const [key, { original }] of batch) originals.set(key, original);
    const found = await parentProbe.probe(originals);
    roundTrips.parentProbes++;
    // The batch's unresolved keys: when they were first seen, and that this scan saw them.
    const unresolved: string[] = [];
    const inactive = new Set<string>();
    for (const [key, state] of found) {
      if (state.kind === 'active') continue;
      unresolved.push(key);
      if (state.kind === 'inactive') inactive.add(key);
    }
    if (unresolved.length) {
      const known = await input.firstSeen.sight(unresolved, inactive);
      for (const key of unresolved) {
        const state = found.get(key)!;
        const firstSeen = known.get(key);
        if (firstSeen && state.kind === 'missing') found.set(key, { kind: 'missing', since: firstSeen });
        if (firstSeen && state.kind === 'inactive' && !state.since)
          found.set(key, { kind: 'inactive', since: firstSeen });
      }
    }
    // Synchronously: from here on the cache answers for these keys, so no child can be left waiting.
    for (const [key, { children }] of batch) {
      const state = found.get(key)!;
      cache.set(key, state);
      waiting.delete(key);
      for (const child of children) classify(child, key, state);
    }
  };

  let pending = new Map<string, { original: unknown; children: PendingChild[] }>();
  /** Keys already sent in a probe that has not answered yet: their later children wait for it. */
  const waiting = new Map<string, { original: unknown; children: PendingChild[] }>();
  const probes = new ProbeScheduler(Math.max(PROBES_IN_FLIGHT, 2 * partitions.length));
  /** Sends the pending keys in one probe; throws when any probe so far has failed. */
  const flush = async () => {
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    for (const [key, entry] of batch) waiting.set(key, entry);
    await probes.start(() =>
      probe(batch).finally(() => {
        for (const key of batch.keys()) waiting.delete(key);
      }),
    );
  };
  /** Every child read so far counted: pending keys probed and every probe answered (or the first failure thrown). */
  const settle = async () => {
    await flush();
    await probes.settle();
  };

  const idReader = new RawFieldReader('_id');
  const refReader = new RawFieldReader(relation.child.field);
  const checkDocuments = input.exceptions.documentKeys.size > 0;
  const decodeChild = (buf: Uint8Array, at: number): PendingChild => {
    const reference = refReader.locate(buf, at)
      ? decodeValue(buf, refReader.type, refReader.valueAt)
      : undefined;
    return { id: idReader.read(buf, at), reference };
  };
  let lastProgress = 0;
  const report = () => {
    const elapsed = (performance.now() - started) / 1000;
    const rate = elapsed > 0 ? readHere / elapsed : 0;
    input.onProgress?.({
      relation: relation.name,
      scanned,
      estimatedTotal,
      counts: { ...counts },
      docsPerSecond: rate,
      etaSeconds: rate > 0 ? Math.max(0, (estimatedTotal - scanned) / rate) : undefined,
    });
  };
  const elapsedMs = () => (resume?.durationMs ?? 0) + performance.now() - started;
  const checkpoint = async (): Promise<void> => {
    if (!input.onCheckpoint || torn || probes.failed) return;
    try {
      await settle();
    } catch {
      // The failed probe stays with the scheduler: the readers and the scan's end throw it.
      return;
    }
    measureStorage();
    await storage.inFlight;
    const kept = candidateLimit <= CHECKPOINT_CANDIDATES;
    const snapshot: ScanCheckpoint = {
      // Absent bounds stay absent (BSON would store undefined as null, a real bound).
      partitions: partitions.map((p) =>
        Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)),
      ) as Partition[],
      counts: { ...counts },
      scanned,
      inGrace,
      deletable,
      samples: Object.fromEntries(
        // Without the documents, and without an absent reference (BSON would store undefined as null).
        CATEGORIES.map((c) => [
          c,
          samples[c].map(({ id, reference, since }) => ({
            id,
            ...(reference !== undefined ? { reference } : {}),
            ...(since ? { since } : {}),
          })),
        ]),
      ) as Record<Category, Sample[]>,
      candidates: kept ? candidates.sorted() : [],
      newCandidates: kept ? candidates.takeAdded() : [],
      candidateLimit: kept ? candidateLimit : 0,
      storage: {
        bytes: storage.bytes,
        measured: storage.measured,
        unmeasured: storage.unmeasured,
        batches: storage.batches,
      },
      roundTrips: { ...roundTrips },
      durationMs: Math.round(elapsedMs()),
      mixedCaseHexChildren: (resume?.mixedCaseHexChildren ?? 0) + cache.mixedCaseHex,
    };
    try {
      await input.onCheckpoint(snapshot);
    } catch (error) {
      log.warn(
        { relation: relation.name, error: (error as Error).message },
        'could not record a scan checkpoint',
      );
    }
  };

  /**
   * Readers meet here at a batch boundary when a checkpoint is due; the last to arrive takes it. A reader
   * that finishes its partition no longer counts, so the others never wait for it.
   */
  let nextCheckpoint = performance.now() + (input.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS);
  let arrived: (() => void)[] = [];
  let active = partitions.filter((p) => !p.done).length;
  let stop = false;
  const checkpointDue = () => Boolean(input.onCheckpoint) && performance.now() >= nextCheckpoint;
  const release = () => {
    const readers = arrived;
    arrived = [];
    for (const resolveArrival of readers) resolveArrival();
  };
  const maybeCheckpoint = () => {
    if (arrived.length === 0 || arrived.length < active) return;
    void checkpoint().finally(() => {
      nextCheckpoint = performance.now() + (input.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS);
      release();
    });
  };
  const arrive = () =>
    new Promise<void>((resolveArrival) => {
      arrived.push(resolveArrival);
      maybeCheckpoint();
    });
  const leave = () => {
    active--;
    maybeCheckpoint();
  };

  const projection = { _id: 1, [relation.child.field]: 1 };
  const readPartition = async (partition: Partition) => {
    let midBatch = false;
    try {
      // One await per batch, not per document: the rest of each batch is taken synchronously.
      for await (const batch of partitionBatches(
        input.children,
        partition,
        projection,
        CHILD_BATCH_SIZE,
        relation.name,
      )) {
        roundTrips.childBatches++;
        midBatch = true;
        const bytes = batch.bytes;
        for (const at of batch.offsets) {
          scanned++;
          readHere++;
          const located = refReader.locate(bytes, at);
          if (checkDocuments && input.exceptions.documentKeys.has(documentKey(idReader.read(bytes, at)))) {
            counts.excepted++;
            if (samples.excepted.length < input.sampleSize) samples.excepted.push(decodeChild(bytes, at));
          } else {
            // A reference whose parent is known is counted from its raw bytes, without becoming a string.
            const found = located ? cache.lookup(bytes, refReader.type, refReader.valueAt) : 'invalid';
            if (found === 'invalid') {
              counts.invalidReference++;
              if (samples.invalidReference.length < input.sampleSize)
                samples.invalidReference.push(decodeChild(bytes, at));
            } else if (found === 'excepted') {
              counts.excepted++;
              if (samples.excepted.length < input.sampleSize) samples.excepted.push(decodeChild(bytes, at));
            } else if (found === 'unknown') {
              const key = cache.key();
              const entry = pending.get(key) ?? waiting.get(key);
              if (entry) entry.children.push(decodeChild(bytes, at));
              else {
                const child = decodeChild(bytes, at);
                pending.set(key, { original: child.reference, children: [child] });
                // The batch is this reader's own: another reader may run while this one waits.
                if (pending.size >= relation.batchSize) await flush();
              }
            } else if (found.kind === 'active') {
              counts.ok++;
              if (samples.ok.length < input.sampleSize) samples.ok.push(decodeChild(bytes, at));
            } else classify(decodeChild(bytes, at), cache.key(), found);
          }
          if (scanned % 1024 === 0) {
            const nowMs = performance.now();
            if (nowMs - lastProgress >= PROGRESS_INTERVAL_MS) {
              lastProgress = nowMs;
              report();
            }
          }
        }
        // Counted up to here (once its probes answer): where a resumed scan continues.
        partition.after = batch.lastId;
        midBatch = false;
        if (input.signal?.aborted) stop = true;
        if (stop) return;
        if (checkpointDue()) await arrive();
      }
      partition.done = true;
    } catch (error) {
      stop = true;
      if (midBatch) torn = true;
      throw error;
    } finally {
      leave();
    }
  };

  let failure: unknown;
  const readers = partitions.filter((p) => !p.done).map((p) => readPartition(p));
  const outcomes = await Promise.allSettled(readers);
  const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (rejected) failure = rejected.reason;
  try {
    await settle();
  } catch (error) {
    failure ??= error;
  }
  // A probe's failure is the scan's, even when a reader's failure came first: nothing is left in flight.
  await probes.settle().catch(() => undefined);
  const complete = partitions.every((p) => p.done) && failure === undefined;
  if (complete) assertEveryChildCounted(relation.name, counts, scanned);
  // Stopped or a reader failed (not a probe): the tallies match the positions, so the next run can resume.
  if (!complete) await checkpoint();
  if (failure !== undefined) throw failure;
  report();
  await storage.inFlight;
  if (complete) measureStorage();
  await storage.inFlight;
  // Servers before 4.4 have no $bsonSize: the scan stands, storage is reported as 0 and logged.
  if (storage.failed)
    log.warn({ relation: relation.name, error: storage.failed.message }, 'could not measure orphan storage');
  const unresolvedBytes =
    !complete || storage.failed || storage.measured === 0
      ? 0
      : Math.round(storage.bytes * (1 + storage.unmeasured / storage.measured));
  return {
    counts,
    scanned,
    readHere,
    inGrace,
    deletable,
    estimatedTotal,
    complete,
    samples,
    candidates: candidates.sorted(),
    unresolvedBytes,
    roundTrips,
    durationMs: elapsedMs(),
    mixedCaseHexChildren: (resume?.mixedCaseHexChildren ?? 0) + cache.mixedCaseHex,
    ...(parentProbe.ambiguous ? { ambiguousSoftDelete: parentProbe.ambiguous } : {}),
  };
}

/** Batches of unresolved children measured in full before the sample thins (8 × 5,000 = 40,000 children). */
const STORAGE_FULL_BATCHES = 8;

/**
 * Whether batch `n` (0-based) of unresolved children is measured, as the number of batches it stands for (0:
 * not measured): the first 8 all, then of batches 8–15 one in 2, of 16–31 one in 4, of 32–63 one in 8…
 * four per doubling, so the queries grow with the logarithm of the backlog.
 */
export function storageSampled(n: number): number {
  if (n < STORAGE_FULL_BATCHES) return 1;
  const stride = 2 ** (Math.floor(Math.log2(n / STORAGE_FULL_BATCHES)) + 1);
  return n % stride === 0 ? stride : 0;
}

/**
 * A complete scan put every child it read in exactly one category; if not, a probe's outcome was lost and
 * nothing from this scan may be trusted (not its counts, not its first sightings, not its candidates).
 */
export function assertEveryChildCounted(relation: string, counts: CategoryCounts, scanned: number): void {
  const counted = CATEGORIES.reduce((sum, category) => sum + counts[category], 0);
  if (counted !== scanned)
    throw new RuntimeError(
      `the scan of ${relation} read ${scanned} children but counted ${counted} in its categories: a parent probe's outcome was lost; the scan is not trusted`,
    );
}

/**
 * The stored BSON size of the given children, summed by the server (`$bsonSize` in a `$group`, MongoDB 4.4+):
 * thousands of ids per query and one number back per query, never the documents themselves.
 */
async function storedBytes(
  children: Collection,
  ids: unknown[],
  roundTrips: { sizeQueries: number },
  maxTimeMS: number,
): Promise<number> {
  let total = 0;
  for (let i = 0; i < ids.length; i += SIZE_BATCH) {
    const batch = ids.slice(i, i + SIZE_BATCH);
    // Summed by the server: one small document back per batch, not one per child.
    const [sum] = await children
      .aggregate<{ bytes?: unknown }>(
        [
          { $match: { _id: { $in: batch } } },
          { $group: { _id: null, bytes: { $sum: { $bsonSize: '$$ROOT' } } } },
        ],
        { maxTimeMS },
      )
      .toArray();
    roundTrips.sizeQueries++;
    total += typeof sum?.bytes === 'number' ? sum.bytes : 0;
  }
  return total;
}

/** Fetches the whole documents of the samples (one `$in` per category). */
export async function fillSampleDocuments(
  children: Collection,
  samples: Record<Category, Sample[]>,
): Promise<void> {
  for (const category of CATEGORIES) {
    const list = samples[category];
    if (list.length === 0) continue;
    const docs = await children.find({ _id: { $in: list.map((s) => s.id) } } as Document).toArray();
    const byId = new Map(docs.map((doc) => [documentKey(doc._id), doc]));
    for (const entry of list) entry.doc = byId.get(documentKey(entry.id));
  }
}

/** An `_id` as Extended JSON for a line a person reads (what a terminal would act on escaped). */
export function describeId(id: unknown): string {
  return escapeForTerminal(EJSON.stringify({ id }, { relaxed: true }).slice(6, -1));
}
