import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
// Over 300 lines: find, getMore, aggregate, count and distinct share cursor and index handling.
import { randomInt } from 'node:crypto';
import { BSON, type Document, type Timestamp } from 'bson';
import { Aggregator } from 'mingo/aggregator';
import * as accumulatorOperators from 'mingo/operators/accumulator';
import * as expressionOperators from 'mingo/operators/expression';
import * as pipelineOperators from 'mingo/operators/pipeline';
import * as projectionOperators from 'mingo/operators/projection';
import * as queryOperators from 'mingo/operators/query';
import * as windowOperators from 'mingo/operators/window';
import { Context, evalExpr } from 'mingo/core';
import { indexKey, type StringCompare, valuesAtPath } from '../bson-values.ts';
import { aggregationTypeName } from '../match.ts';
import { clusterTimeOf } from '../history.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { ChangeStream, DEFAULT_AWAIT_MS, parseChangeStream } from '../change-stream.ts';
import { cursorIdOf } from '../cursors.ts';
import { currentOperations } from './diagnostics.ts';
import {
  compileFilter,
  compileProjection,
  documentsByIdIndex,
  MINGO_OPTIONS,
  matchDocuments,
  parseSort,
  sortDocuments,
  WorkBudget,
} from '../query.ts';
import { MAX_BSON_OBJECT_SIZE } from '../wire.ts';
import {
  type CommandContext,
  type CommandHandler,
  type CursorBatch,
  collationFor,
  collectionName,
  existingCollection,
  readView,
  optionalDocument,
  optionalNumber,
} from './context.ts';

const DEFAULT_FIRST_BATCH = 101;

function cursorReply(
  ctx: CommandContext,
  ns: string,
  docs: Document[],
  options: { projection?: unknown; batchSize?: number; single?: boolean; atClusterTime?: Timestamp },
): CursorBatch {
  const cursor = ctx.server.cursors.open(ns, docs, compileProjection(options.projection));
  if (options.atClusterTime) cursor.atClusterTime = options.atClusterTime;
  return {
    kind: 'cursorBatch',
    cursor,
    field: 'firstBatch',
    batchSize: options.batchSize ?? DEFAULT_FIRST_BATCH,
    single: options.single ?? false,
  };
}

function nonNegative(body: Document, field: string): number | undefined {
  const n = optionalNumber(body, field);
  if (n !== undefined && n < 0)
    throw new CommandError(51024, `BSON field '${field}' value must be >= 0, actual value '${n}'`);
  return n;
}

const READ_CONCERN_LEVELS = ['local', 'majority', 'available', 'linearizable', 'snapshot'];

/**
 * A command's `readConcern`, as a time to read at. `local`, `available` and `linearizable` read the last
 * applied write; `majority` reads at the majority commit point (the same unless the set lags: `--majority-lag-ms`);
 * `snapshot` (replica-set mode only) reads as of `atClusterTime` (from the history, within
 * `minSnapshotHistoryWindowInSeconds`; SnapshotTooOld before it) or the majority commit point, which the reply
 * names as `atClusterTime`. `afterClusterTime` waits until that point has reached it (bounded by maxTimeMS). A
 * read on the secondary port sees the data `--secondary-lag-ms` behind. A transaction reads at its own snapshot.
 */
async function readTime(ctx: CommandContext): Promise<{ at?: Timestamp; atClusterTime?: Timestamp }> {
  const readConcern = optionalDocument(ctx.body, 'readConcern') ?? {};
  const level = readConcern.level ?? 'local';
  if (typeof level !== 'string' || !READ_CONCERN_LEVELS.includes(level))
    throw new CommandError(ErrorCodes.FailedToParse, `unknown readConcern level: ${String(level)}`);
  if (readConcern.atClusterTime !== undefined && level !== 'snapshot')
    throw new CommandError(
      ErrorCodes.InvalidOptions,
      'readConcern.atClusterTime can only be used with readConcern level snapshot',
    );
  const oplog = ctx.server.oplog;
  if (level === 'snapshot' && !oplog)
    throw new CommandError(
      ErrorCodes.IllegalOperation,
      'readConcern level snapshot needs a replica set (start the sandbox with --replica-set)',
    );
  if (!oplog || ctx.transaction) return {};
  const majority = level === 'majority' || level === 'snapshot';
  const point = () =>
    ctx.secondary
      ? oplog.pointBehind(ctx.server.parameters.sandboxSecondaryLagMillis)
      : majority
        ? oplog.majorityPoint()
        : oplog.latest();
  const after = readConcern.afterClusterTime as Timestamp | undefined;
  while (after && point().compare(after) < 0) {
    ctx.budget.check();
    await sleep(READ_POINT_POLL_MS);
  }
  if (level === 'snapshot') {
    const at = readConcern.atClusterTime as Timestamp | undefined;
    const latest = oplog.latest();
    if (at && at.compare(latest) > 0)
      throw new CommandError(
        ErrorCodes.InvalidOptions,
        `atClusterTime ${at.toString()} is in the future (the newest write is ${latest.toString()})`,
      );
    if (at && at.compare(oplog.began) < 0)
      throw new CommandError(
        ErrorCodes.SnapshotTooOld,
        `atClusterTime ${at.toString()} is before this server's history began (it restarted)`,
      );
    const time = at ?? point();
    return { at: time, atClusterTime: time };
  }
  // Reading the store as it is (no view) unless the reader's point trails the last write.
  const time = point();
  return time.compare(oplog.latest()) < 0 ? { at: time } : {};
}

/** How often a read waiting for `afterClusterTime` looks again. */
const READ_POINT_POLL_MS = 5;

/** The collection as the command reads it (see `readView`), with the snapshot time the reply names. */
async function readable(
  ctx: CommandContext,
  name: string,
): Promise<{ coll: ReturnType<typeof existingCollection>; atClusterTime: Timestamp | undefined }> {
  const { at, atClusterTime } = await readTime(ctx);
  const stored = existingCollection(ctx, name);
  const coll = stored && readView(ctx, stored, at ? clusterTimeOf(at) : undefined);
  return { coll, atClusterTime };
}

const find: CommandHandler = async (ctx) => {
  const name = collectionName(ctx);
  const { body } = ctx;
  const filter = optionalDocument(body, 'filter');
  const sort = parseSort(body.sort);
  const skip = nonNegative(body, 'skip') ?? 0;
  const rawLimit = optionalNumber(body, 'limit') ?? 0;
  const limit = Math.abs(rawLimit);
  const batchSize = nonNegative(body, 'batchSize');
  const { coll, atClusterTime } = await readable(ctx, name);
  const byId = idIndexScan(body, sort, coll);
  let docs: Document[] = [];
  if (coll && byId) {
    const strings = collationFor(coll, body.collation);
    docs = await documentsByIdIndex(coll, filter, ctx.budget, {
      ...byId,
      limit: limit > 0 ? skip + limit : undefined,
      strings,
    });
    if (skip || limit) docs = docs.slice(skip, limit ? skip + limit : undefined);
  } else if (coll) {
    const strings = collationFor(coll, body.collation);
    const earlyStop = !sort && limit > 0 ? skip + limit : undefined;
    docs = await matchDocuments(coll, filter, ctx.budget, earlyStop, strings);
    if (sort) docs = await sortDocuments(docs, sort, ctx.budget, strings);
    if (skip || limit) docs = docs.slice(skip, limit ? skip + limit : undefined);
  }
  return cursorReply(ctx, `${ctx.db}.${name}`, docs, {
    projection: body.projection,
    batchSize: rawLimit < 0 ? limit : batchSize,
    single: Boolean(body.singleBatch) || rawLimit < 0,
    atClusterTime,
  });
};

function isIdIndex(hint: unknown): boolean {
  if (hint === '_id_') return true;
  if (!hint || typeof hint !== 'object') return false;
  const entries = Object.entries(hint);
  return entries.length === 1 && entries[0][0] === '_id' && Number(entries[0][1]) === 1;
}

/**
 * A find answered along the `_id` index: `min`/`max` (which mongod requires a hint for) or a sort on `_id`
 * alone. Other hints are checked to name an index; bounds on any other index are refused, not ignored.
 */
function idIndexScan(
  body: Document,
  sort: ReturnType<typeof parseSort>,
  coll: ReturnType<typeof existingCollection>,
): { direction: 1 | -1; min?: unknown; max?: unknown } | undefined {
  const { hint } = body;
  if (
    hint !== undefined &&
    !isIdIndex(hint) &&
    !(typeof hint === 'object' && '$natural' in (hint as object))
  ) {
    const known = coll?.findIndex(hint as string | Document);
    if (!known)
      throw new CommandError(
        ErrorCodes.BadValue,
        'error processing query: planner returned error :: caused by :: hint provided does not correspond to an existing index',
      );
  }
  const bounds = body.min !== undefined || body.max !== undefined;
  if (bounds) {
    if (hint === undefined)
      throw new CommandError(51173, 'When using min()/max() a hint of which index to use must be provided');
    if (!isIdIndex(hint))
      throw new CommandError(ErrorCodes.BadValue, 'sandbox: min()/max() are supported on the _id index only');
    for (const field of ['min', 'max'] as const) {
      const bound = body[field];
      if (bound === undefined) continue;
      if (!bound || typeof bound !== 'object' || Object.keys(bound).join() !== '_id')
        throw new CommandError(
          51174,
          `The '${field}' bound must have the fields of the hinted index {_id: 1}`,
        );
    }
    if (sort && !(sort.length === 1 && sort[0][0] === '_id'))
      throw new CommandError(
        ErrorCodes.BadValue,
        'sandbox: min()/max() with a sort other than {_id} is not supported',
      );
    return { direction: sort?.[0][1] ?? 1, min: body.min?._id, max: body.max?._id };
  }
  // Under a collation strings sort differently from the index's binary order: the general sort answers.
  if (sort?.length === 1 && sort[0][0] === '_id' && !body.collation && !coll?.options.collation)
    return { direction: sort[0][1] };
  return undefined;
}

/** mongod's largest internal BSON object (16 MB + 16 KB): a change event past it fails (BSONObjectTooLarge). */
const MAX_EVENT_BYTES = 16 * 1024 * 1024 + 16 * 1024;

const getMore: CommandHandler = async (ctx) => {
  const id = cursorIdOf(ctx.body.getMore);
  const name = ctx.body.collection;
  if (typeof name !== 'string')
    throw new CommandError(ErrorCodes.TypeMismatch, "getMore needs a 'collection' string");
  const cursor = ctx.server.cursors.get(id, `${ctx.db}.${name}`);
  if (cursor.changeStream) {
    // awaitData: wait up to maxTimeMS (the driver's maxAwaitTimeMS) for the next events.
    const events = await cursor.changeStream.poll(optionalNumber(ctx.body, 'maxTimeMS') ?? DEFAULT_AWAIT_MS);
    cursor.docs = cursor.pipeline ? await cursor.pipeline(events) : events;
    cursor.pos = 0;
    // mongod fails the getMore when an event, after the stream's pipeline, is over its BSON limit.
    for (const event of cursor.docs) {
      const size = BSON.calculateObjectSize(event);
      if (size > MAX_EVENT_BYTES)
        throw new CommandError(
          10334,
          `BSONObj size: ${size} (0x${size.toString(16).toUpperCase()}) is invalid. Size must be between 0 and ${MAX_EVENT_BYTES}(16MB) First element: _id: ${JSON.stringify(event._id)}`,
        );
    }
  }
  return {
    kind: 'cursorBatch',
    cursor,
    field: 'nextBatch',
    batchSize: nonNegative(ctx.body, 'batchSize') || undefined,
    single: false,
  };
};

const killCursors: CommandHandler = (ctx) => {
  const ids = ctx.body.cursors;
  if (!Array.isArray(ids))
    throw new CommandError(ErrorCodes.TypeMismatch, "killCursors needs a 'cursors' array");
  const killed: unknown[] = [];
  const notFound: unknown[] = [];
  for (const raw of ids) (ctx.server.cursors.kill(cursorIdOf(raw)) ? killed : notFound).push(raw);
  return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
};

const count: CommandHandler = async (ctx) => {
  if (ctx.transaction)
    throw new CommandError(
      ErrorCodes.OperationNotSupportedInTransaction,
      "Cannot run 'count' in a multi-document transaction. Please see http://dochub.mongodb.org/core/transaction-count for a recommended alternative.",
    );
  const { coll } = await readable(ctx, collectionName(ctx));
  if (!coll) return { n: 0, ok: 1 };
  const query = optionalDocument(ctx.body, 'query');
  const skip = nonNegative(ctx.body, 'skip') ?? 0;
  const limit = Math.abs(optionalNumber(ctx.body, 'limit') ?? 0);
  let n =
    !query || Object.keys(query).length === 0
      ? coll.docs.size
      : (await matchDocuments(coll, query, ctx.budget, undefined, collationFor(coll, ctx.body.collation)))
          .length;
  n = Math.max(0, n - skip);
  if (limit) n = Math.min(n, limit);
  return { n, ok: 1 };
};

const distinct: CommandHandler = async (ctx) => {
  const key = ctx.body.key;
  if (typeof key !== 'string')
    throw new CommandError(ErrorCodes.TypeMismatch, "distinct needs a 'key' string");
  const { coll } = await readable(ctx, collectionName(ctx));
  if (!coll) return { values: [], ok: 1 };
  if (collationFor(coll, ctx.body.collation))
    throw new CommandError(
      ErrorCodes.NotImplemented,
      'distinct with a collation is not supported by the sandbox',
    );
  const docs = await matchDocuments(coll, optionalDocument(ctx.body, 'query'), ctx.budget);
  const seen = new Set<string>();
  const values: unknown[] = [];
  let bytes = 0;
  for (const doc of docs) {
    for (const value of valuesAtPath(doc, key)) {
      if (value === undefined) continue;
      const k = indexKey(value);
      if (seen.has(k)) continue;
      seen.add(k);
      values.push(value);
      bytes += BSON.calculateObjectSize({ v: value }) - 4;
      if (bytes > MAX_BSON_OBJECT_SIZE) {
        throw new CommandError(ErrorCodes.DistinctTooBig, 'distinct too big, 16mb cap');
      }
    }
    await ctx.budget.tick();
  }
  return { values, ok: 1 };
};

/** Stages mingo applies document by document, so they can run over slices of the input. */
const STREAMING_STAGES = new Set([
  '$match',
  '$project',
  '$addFields',
  '$set',
  '$unset',
  '$unwind',
  '$replaceRoot',
  '$replaceWith',
]);
const REFUSED_STAGES = new Set([
  '$out',
  '$merge',
  '$currentOp',
  '$collStats',
  '$listSessions',
  '$changeStream',
]);
const SLICE = 2000;

/**
 * mingo's operators, with mongod's answer where mingo's differs: `$type` names (`objectId`, `binData`...).
 * Built whole, because mingo's default context would otherwise win over an override.
 */
const AGGREGATION_OPERATORS = Context.init({
  accumulator: accumulatorOperators,
  expression: {
    ...expressionOperators,
    $type: (obj: unknown, expr: unknown, options: Parameters<typeof evalExpr>[2]) =>
      aggregationTypeName(evalExpr(obj, Array.isArray(expr) ? expr[0] : expr, options)),
  },
  pipeline: pipelineOperators,
  projection: projectionOperators,
  query: queryOperators,
  window: windowOperators,
});

async function runMingo(
  ctx: CommandContext,
  docs: Document[],
  stages: Document[],
  streaming: boolean,
): Promise<Document[]> {
  const aggregator = new Aggregator(stages, {
    ...MINGO_OPTIONS,
    context: AGGREGATION_OPERATORS,
    collectionResolver: (name: string) => [
      ...(ctx.server.store.collection(ctx.db, name, false)?.docs.values() ?? []),
    ],
  });
  try {
    if (!streaming) return aggregator.run(docs) as Document[];
    const out: Document[] = [];
    for (let start = 0; start < docs.length; start += SLICE) {
      for (const doc of aggregator.run(docs.slice(start, start + SLICE))) out.push(doc as Document);
      ctx.budget.check();
      await ctx.budget.tick();
    }
    return out;
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw new CommandError(ErrorCodes.BadValue, (error as Error).message);
  }
}

/** `$sample` without replacement (mingo's picks with replacement): a partial Fisher-Yates shuffle. */
function sampleWithoutReplacement(docs: Document[], size: number): Document[] {
  const pool = [...docs];
  const n = Math.min(size, pool.length);
  for (let i = 0; i < n; i++) {
    const j = i + randomInt(pool.length - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, n);
}

/** Stages that compare no strings of their own, or (`$sort`) that the sandbox sorts by the collation. */
const COLLATION_SAFE_STAGES = new Set([
  '$sort',
  '$limit',
  '$skip',
  '$project',
  '$sample',
  '$count',
  '$set',
  '$addFields',
  '$unset',
]);

/** A `$group` into one bucket (countDocuments' shape): it compares no strings, so a collation changes nothing. */
function isSingleGroup(stage: Document): boolean {
  const id = stage.$group?._id;
  return (
    stage.$group !== undefined && (id === null || (typeof id !== 'object' && !String(id).startsWith('$')))
  );
}

/**
 * `aggregate` with `$changeStream` (replica-set mode): a cursor that never runs dry, whose `getMore`s bring the
 * oplog's events as they come; its first batch is empty, its position in `postBatchResumeToken`.
 */
function openChangeStream(
  ctx: CommandContext,
  stage: Document,
  rest: Document[],
  cursorOptions: Document | undefined,
): CursorBatch {
  const oplog = ctx.server.oplog;
  if (!oplog) throw new CommandError(40573, 'The $changeStream stage is only supported on replica sets');
  for (const later of rest) {
    const op = Object.keys(later)[0];
    if (
      ![
        '$match',
        '$project',
        '$addFields',
        '$set',
        '$unset',
        '$replaceRoot',
        '$replaceWith',
        '$redact',
      ].includes(op)
    )
      throw new CommandError(
        ErrorCodes.IllegalOperation,
        `${op} is not permitted in a $changeStream pipeline`,
      );
  }
  const coll = typeof ctx.body.aggregate === 'string' ? ctx.body.aggregate : undefined;
  const spec = parseChangeStream(stage, { db: ctx.db, coll }, oplog);
  const ns = coll ? `${ctx.db}.${coll}` : `${ctx.db}.$cmd.aggregate`;
  const cursor = ctx.server.cursors.open(ns, []);
  cursor.changeStream = new ChangeStream(spec, oplog, ctx.server.store);
  if (rest.length) cursor.pipeline = (events) => runPipeline(ctx, events, rest, new WorkBudget(undefined));
  return {
    kind: 'cursorBatch',
    cursor,
    field: 'firstBatch',
    batchSize: optionalNumber(cursorOptions ?? {}, 'batchSize'),
    single: false,
  };
}

/** The `$collStats` stage's one document: `count` and `storageStats` as asked (what `db.coll.stats()` reads). */
async function collectionStats(ctx: CommandContext, name: string, spec: Document): Promise<Document> {
  const coll = existingCollection(ctx, name);
  const ns = `${ctx.db}.${name}`;
  if (!coll)
    throw new CommandError(
      ErrorCodes.NamespaceNotFound,
      `Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [${ns}] not found.`,
    );
  for (const key of Object.keys(spec))
    if (!['count', 'storageStats', 'latencyStats', 'queryExecStats'].includes(key))
      throw new CommandError(40415, `BSON field '$collStats.${key}' is an unknown field.`);
  const count = coll.docs.size;
  const doc: Document = { ns, host: hostname(), localTime: new Date() };
  if (spec.storageStats) {
    let size = 0;
    for (const stored of coll.docs.values()) {
      size += BSON.calculateObjectSize(stored);
      await ctx.budget.tick();
    }
    const indexSizes = Object.fromEntries(coll.indexSpecs.map((index) => [index.name, count * 16]));
    doc.storageStats = {
      size,
      count,
      avgObjSize: count ? Math.round(size / count) : 0,
      numOrphanDocs: 0,
      storageSize: size,
      freeStorageSize: 0,
      capped: false,
      nindexes: coll.indexSpecs.length,
      indexBuilds: [],
      totalIndexSize: count * 16 * coll.indexSpecs.length,
      totalSize: size + count * 16 * coll.indexSpecs.length,
      indexSizes,
      scaleFactor: 1,
    };
  }
  if (spec.count) doc.count = count;
  if (spec.latencyStats)
    doc.latencyStats = {
      reads: { latency: 0, ops: 0 },
      writes: { latency: 0, ops: 0 },
      commands: { latency: 0, ops: 0 },
    };
  if (spec.queryExecStats) doc.queryExecStats = { collectionScans: { total: 0, nonTailable: 0 } };
  return doc;
}

/**
 * `$project` output in mongod's field order: `_id` first, then the fields kept from the input in the input's
 * order, then new (computed) fields in the projection's order. mingo keeps the projection's order, `_id` last.
 */
function inMongodFieldOrder(input: Document[], output: Document[]): Document[] {
  return output.map((doc, i) => {
    const source = input[i] ?? {};
    const ordered: Document = {};
    if ('_id' in doc) ordered._id = doc._id;
    for (const key of Object.keys(source)) if (key in doc && !(key in ordered)) ordered[key] = doc[key];
    for (const key of Object.keys(doc)) if (!(key in ordered)) ordered[key] = doc[key];
    return ordered;
  });
}

async function runPipeline(
  ctx: CommandContext,
  input: Document[],
  pipeline: Document[],
  budget: WorkBudget,
  strings?: StringCompare,
): Promise<Document[]> {
  let docs = input;
  let pending: Document[] = [];
  let pendingStreaming = true;
  const flush = async () => {
    if (pending.length) docs = await runMingo(ctx, docs, pending, pendingStreaming);
    pending = [];
    pendingStreaming = true;
  };
  for (const stage of pipeline) {
    const op = Object.keys(stage)[0];
    if (REFUSED_STAGES.has(op))
      throw new CommandError(ErrorCodes.NotImplemented, `${op} is not supported by the sandbox`);
    if (strings && !COLLATION_SAFE_STAGES.has(op) && !isSingleGroup(stage))
      throw new CommandError(
        ErrorCodes.NotImplemented,
        `the sandbox applies a collation to a leading $match and to $sort only, not to ${op}`,
      );
    if (op === '$sample' || op === '$sort' || op === '$limit' || op === '$skip') {
      await flush();
      if (op === '$sample') docs = sampleWithoutReplacement(docs, Number(stage.$sample?.size ?? 0));
      else if (op === '$sort')
        docs = await sortDocuments(docs, parseSort(stage.$sort) ?? [], budget, strings);
      else if (op === '$limit') docs = docs.slice(0, Number(stage.$limit));
      else docs = docs.slice(Number(stage.$skip));
      continue;
    }
    if (op === '$project') {
      await flush();
      const before = docs;
      docs = inMongodFieldOrder(before, await runMingo(ctx, before, [stage], true));
      continue;
    }
    pending.push(stage);
    if (!STREAMING_STAGES.has(op)) pendingStreaming = false;
  }
  await flush();
  return docs;
}

const aggregate: CommandHandler = async (ctx) => {
  const { body } = ctx;
  const pipeline = body.pipeline;
  if (!Array.isArray(pipeline))
    throw new CommandError(ErrorCodes.TypeMismatch, "'pipeline' must be an array");
  const cursorOptions = optionalDocument(body, 'cursor');
  if (!cursorOptions && !body.explain) {
    throw new CommandError(
      ErrorCodes.FailedToParse,
      "The 'cursor' option is required, except for aggregate with the explain argument",
    );
  }
  const first = (pipeline[0] ?? {}) as Document;
  if ('$changeStream' in first)
    return openChangeStream(ctx, first.$changeStream as Document, pipeline.slice(1), cursorOptions);
  if (typeof body.aggregate !== 'string') {
    // `db.aggregate([{$currentOp: {}}, …])` on admin (what `db.currentOp()` sends): the only collection-less one.
    if (body.aggregate === 1 && '$currentOp' in first) {
      if (ctx.db !== 'admin')
        throw new CommandError(73, "$currentOp must be run against the 'admin' database with {aggregate: 1}");
      const docs = await runPipeline(ctx, currentOperations(ctx), pipeline.slice(1), ctx.budget);
      return cursorReply(ctx, 'admin.$cmd.aggregate', docs, {
        batchSize: optionalNumber(cursorOptions ?? {}, 'batchSize'),
      });
    }
    throw new CommandError(
      ErrorCodes.InvalidNamespace,
      'collection-less aggregate is not supported by the sandbox (except $currentOp)',
    );
  }
  const name = body.aggregate;
  if ('$collStats' in first) {
    const stats = await collectionStats(ctx, name, first.$collStats as Document);
    const docs = await runPipeline(ctx, [stats], pipeline.slice(1), ctx.budget);
    return cursorReply(ctx, `${ctx.db}.${name}`, docs, {
      batchSize: optionalNumber(cursorOptions ?? {}, 'batchSize'),
    });
  }
  const { coll, atClusterTime } = await readable(ctx, name);
  // A hint only chooses a plan, never the answer; one naming no index is refused, as mongod refuses it.
  if (body.hint !== undefined && !isIdIndex(body.hint) && !coll?.findIndex(body.hint as string | Document))
    throw new CommandError(
      ErrorCodes.BadValue,
      'error processing query: planner returned error :: caused by :: hint provided does not correspond to an existing index',
    );
  let input: Document[] = [];
  let stages = pipeline as Document[];
  const strings = collationFor(coll, body.collation);
  if (coll) {
    const first = stages[0];
    if (first && Object.keys(first)[0] === '$match') {
      compileFilter(first.$match, strings);
      input = await matchDocuments(coll, first.$match, ctx.budget, undefined, strings);
      stages = stages.slice(1);
    } else input = [...coll.docs.values()];
  }
  const docs = await runPipeline(ctx, input, stages, ctx.budget, strings);
  return cursorReply(ctx, `${ctx.db}.${name}`, docs, {
    batchSize: optionalNumber(cursorOptions ?? {}, 'batchSize'),
    atClusterTime,
  });
};

export const readCommands: Record<string, CommandHandler> = {
  find,
  getMore,
  killCursors,
  count,
  distinct,
  aggregate,
};
