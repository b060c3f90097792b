import { EJSON } from 'bson';
import type { Collection, Document } from 'mongodb';
import type { Relation } from '../config/load.ts';
import { log } from '../logging.ts';
import { type AmbiguousSoftDelete, ParentProbe, type ParentState } from './probe.ts';
import { prefetchedBatches } from './raw-batches.ts';
import { OldestFirst } from './oldest-first.ts';
import { ReferenceCache } from './reference-cache.ts';
import { documentKey, type ExceptionIndex } from '../store/exceptions.ts';
import { decodeValue, RawFieldReader } from './raw-bson.ts';

export const CATEGORIES = ['ok', 'orphans', 'parentInactive', 'invalidReference', 'excepted'] as const;
export type Category = (typeof CATEGORIES)[number];
export type CategoryCounts = Record<Category, number>;

const DAY_MS = 86_400_000;
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
  /** The whole child document, fetched after the scan. */
  doc?: Document;
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
  lookup(keys: string[]): Promise<Map<string, Date>>;
  stage(keys: string[], known: Map<string, Date>): Promise<void>;
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
  parents: Collection;
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
}

export interface RelationScanResult {
  counts: CategoryCounts;
  scanned: number;
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
}

function emptyCounts(): CategoryCounts {
  return { ok: 0, orphans: 0, parentInactive: 0, invalidReference: 0, excepted: 0 };
}

interface PendingChild {
  id: unknown;
  reference: unknown;
}

/**
 * The client-side join: streams the child collection as raw BSON (decoding only `_id` and the reference),
 * probes parents in `$in` batches with a few in flight, and sorts every child into exactly one category.
 */
export async function scanRelation(input: RelationScanInput): Promise<RelationScanResult> {
  const { relation, now } = input;
  const started = performance.now();
  const counts = emptyCounts();
  const samples = Object.fromEntries(CATEGORIES.map((c) => [c, [] as Sample[]])) as Record<
    Category,
    Sample[]
  >;
  const candidates = new OldestFirst<Candidate>(input.candidateLimit ?? 0, (c) => c.since.getTime());
  const cache = new ReferenceCache(relation.keyMatch, input.exceptions.referenceKeys, KEY_CACHE_LIMIT);
  const graceMs = relation.graceDays * DAY_MS;
  const roundTrips = { childBatches: 0, parentProbes: 0, sizeQueries: 0 };
  let inGrace = 0;
  let deletable = 0;
  let scanned = 0;
  let unresolvedIds: unknown[] = [];
  /**
   * Storage is measured in the background, a batch of unresolved ids at a time, one query in flight: a batch
   * that fills while one is measured is counted, not measured, and the total extrapolated from the rest.
   */
  const storage = {
    bytes: 0,
    measured: 0,
    unmeasured: 0,
    inFlight: undefined as Promise<void> | undefined,
    failed: undefined as Error | undefined,
  };
  const measureStorage = () => {
    if (unresolvedIds.length === 0) return;
    const ids = unresolvedIds;
    unresolvedIds = [];
    if (storage.inFlight) {
      storage.unmeasured += ids.length;
      return;
    }
    storage.inFlight = storedBytes(input.children, ids, roundTrips, input.maxTimeMS).then(
      (bytes) => {
        storage.bytes += bytes;
        storage.measured += ids.length;
        storage.inFlight = undefined;
      },
      (error: Error) => {
        storage.failed = error;
        storage.inFlight = undefined;
      },
    );
  };

  const estimatedTotal = await input.children.estimatedDocumentCount({ maxTimeMS: input.maxTimeMS });

  const sample = (category: Category, entry: Sample) => {
    if (samples[category].length < input.sampleSize) samples[category].push(entry);
  };

  /**
   * A child is either decoded already (it waited for a probe) or the offset of a raw document in the batch
   * being read, decoded only when it is kept: samples and candidates.
   */
  let bytes: Uint8Array = new Uint8Array(0);
  const classify = (child: PendingChild | number, key: string, state: ParentState) => {
    if (state.kind === 'active') {
      counts.ok++;
      if (samples.ok.length < input.sampleSize)
        samples.ok.push(typeof child === 'number' ? decodeChild(bytes, child) : child);
      return;
    }
    const entry = typeof child === 'number' ? decodeChild(bytes, child) : child;
    const category = state.kind === 'missing' ? 'orphans' : 'parentInactive';
    counts[category]++;
    unresolvedIds.push(entry.id);
    if (unresolvedIds.length >= SIZE_BATCH) measureStorage();
    // A soft-delete time, else the first sighting by a complete scan, else now (seen for the first time).
    const since = state.since ?? now;
    sample(category, { id: entry.id, reference: entry.reference, since });
    if (now.getTime() - since.getTime() < graceMs) inGrace++;
    else {
      deletable++;
      candidates.offer({ id: entry.id, reference: entry.reference, key, category, since });
    }
  };

  const parentProbe = new ParentProbe(relation, input.parents, {
    maxTimeMS: input.maxTimeMS,
    onProbe: input.onProbe,
  });
  const probe = async (batch: Map<string, { original: unknown; children: PendingChild[] }>) => {
    const found = await parentProbe.probe(new Map([...batch].map(([key, { original }]) => [key, original])));
    roundTrips.parentProbes++;
    // The batch's unresolved keys: when they were first seen, and that this scan saw them.
    const unresolved = [...found].filter(([, state]) => state.kind !== 'active').map(([key]) => key);
    if (unresolved.length) {
      const known = await input.firstSeen.lookup(unresolved);
      await input.firstSeen.stage(unresolved, known);
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
  const inFlight = new Set<Promise<void>>();
  const flush = async () => {
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    for (const [key, entry] of batch) waiting.set(key, entry);
    const task = probe(batch).finally(() => {
      for (const key of batch.keys()) waiting.delete(key);
      inFlight.delete(task);
    });
    // A failed probe is reported by whoever awaits it (race or the final wait), never as unhandled.
    task.catch(() => undefined);
    inFlight.add(task);
    if (inFlight.size >= PROBES_IN_FLIGHT) await Promise.race(inFlight);
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
  // No maxTimeMS on the child stream: the server counts it over the cursor's whole life, so it would cap a long
  // scan however healthy. Every other read (probes, counts, storage) carries it; the stream stops on `signal`.
  const cursor = input.children.find(
    {},
    { projection: { _id: 1, [relation.child.field]: 1 }, batchSize: CHILD_BATCH_SIZE, raw: true },
  );
  let lastProgress = 0;
  const report = () => {
    const elapsed = (performance.now() - started) / 1000;
    const rate = elapsed > 0 ? scanned / elapsed : 0;
    input.onProgress?.({
      relation: relation.name,
      scanned,
      estimatedTotal,
      counts: { ...counts },
      docsPerSecond: rate,
      etaSeconds: rate > 0 ? Math.max(0, (estimatedTotal - scanned) / rate) : undefined,
    });
  };
  let complete = true;
  try {
    // One await per batch, not per document: the rest of each batch is taken synchronously.
    batches: for await (const batch of prefetchedBatches(cursor)) {
      roundTrips.childBatches++;
      bytes = batch.bytes;
      for (const at of batch.offsets) {
        scanned++;
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
              if (pending.size >= relation.batchSize) await flush();
            }
          } else if (found.kind === 'active') {
            counts.ok++;
            if (samples.ok.length < input.sampleSize) samples.ok.push(decodeChild(bytes, at));
          } else classify(at, cache.key(), found);
        }
        if (scanned % 1024 === 0) {
          if (input.signal?.aborted) {
            complete = false;
            break batches;
          }
          const nowMs = performance.now();
          if (nowMs - lastProgress >= PROGRESS_INTERVAL_MS) {
            lastProgress = nowMs;
            report();
          }
        }
      }
    }
    await flush();
    await Promise.all(inFlight);
  } finally {
    await cursor.close().catch(() => undefined);
    await Promise.allSettled(inFlight);
  }
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
    inGrace,
    deletable,
    estimatedTotal,
    complete,
    samples,
    candidates: candidates.sorted(),
    unresolvedBytes,
    roundTrips,
    durationMs: performance.now() - started,
    ...(parentProbe.ambiguous ? { ambiguousSoftDelete: parentProbe.ambiguous } : {}),
  };
}

/**
 * The stored BSON size of the given children, summed by the server (`$bsonSize`, MongoDB 4.4+): thousands of
 * ids per query and only a small number back per document, never the documents themselves.
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
    const sizes = await children
      .find({ _id: { $in: batch } } as Document, {
        projection: { _id: 0, size: { $bsonSize: '$$ROOT' } },
        batchSize: batch.length,
        maxTimeMS,
      })
      .toArray();
    roundTrips.sizeQueries++;
    for (const { size } of sizes) total += typeof size === 'number' ? size : 0;
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

export function describeId(id: unknown): string {
  return EJSON.stringify({ id }, { relaxed: true }).slice(6, -1);
}
