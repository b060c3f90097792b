import { hostname } from 'node:os';
import { BSON, type Document } from 'bson';
import { ChangeStream, parseChangeStream } from '../change-stream.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { compileFilter, matchDocuments, WorkBudget } from '../query.ts';
import {
  type CommandContext,
  type CommandHandler,
  type CursorBatch,
  collationFor,
  existingCollection,
  optionalDocument,
  optionalNumber,
} from './context.ts';
import { currentOperations } from './current-op.ts';
import { isIdIndex } from './find.ts';
import { writeMerge } from './merge.ts';
import { writeOut } from './out.ts';
import { letVariables, runPipeline } from './pipeline.ts';
import { cursorReply, readable } from './read-time.ts';

/** The aggregate command: a collection's pipeline (ending in `$out` or `$merge` or not), change streams, `$collStats` and `$currentOp`. */

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

export const aggregate: CommandHandler = async (ctx) => {
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
  const writeStage = (op: string) => {
    const at = pipeline.findIndex((stage) => stage && typeof stage === 'object' && op in stage);
    if (at >= 0 && at !== pipeline.length - 1)
      throw new CommandError(40601, `${op} can only be the final stage in the pipeline`);
    return at;
  };
  const outAt = writeStage('$out');
  const mergeAt = writeStage('$merge');
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
    // `db.aggregate([{$documents: [...]}, …])`: the pipeline runs over the given documents.
    if (body.aggregate === 1 && '$documents' in first) {
      const given = first.$documents;
      if (
        !Array.isArray(given) ||
        !given.every((doc) => doc && typeof doc === 'object' && !Array.isArray(doc))
      )
        throw new CommandError(
          ErrorCodes.NotImplemented,
          '$documents takes an array of documents in the sandbox (not an expression)',
        );
      const docs = await runPipeline(ctx, given as Document[], pipeline.slice(1), ctx.budget);
      return cursorReply(ctx, `${ctx.db}.$cmd.aggregate`, docs, {
        batchSize: optionalNumber(cursorOptions ?? {}, 'batchSize'),
      });
    }
    throw new CommandError(
      ErrorCodes.InvalidNamespace,
      'collection-less aggregate is not supported by the sandbox (except $currentOp and $documents)',
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
      const variables = letVariables(ctx);
      compileFilter(first.$match, strings, variables);
      input = await matchDocuments(coll, first.$match, ctx.budget, undefined, strings, variables);
      stages = stages.slice(1);
    } else input = [...coll.docs.values()];
  }
  if (outAt >= 0 || mergeAt >= 0) {
    const last = stages[stages.length - 1];
    const results = await runPipeline(ctx, input, stages.slice(0, -1), ctx.budget, strings);
    return outAt >= 0 ? writeOut(ctx, last.$out, results) : writeMerge(ctx, last.$merge, results);
  }
  const docs = await runPipeline(ctx, input, stages, ctx.budget, strings);
  return cursorReply(ctx, `${ctx.db}.${name}`, docs, {
    batchSize: optionalNumber(cursorOptions ?? {}, 'batchSize'),
    atClusterTime,
  });
};
