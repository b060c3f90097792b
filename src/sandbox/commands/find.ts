import { BSON, type Document } from 'bson';
import { indexKey, valuesAtPath } from '../bson-values.ts';
import { DEFAULT_AWAIT_MS } from '../change-stream.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { cursorIdOf } from '../cursors.ts';
import { documentsByIdIndex, matchDocuments, parseSort, sortDocuments } from '../query.ts';
import { MAX_BSON_OBJECT_SIZE } from '../wire.ts';
import {
  type CommandHandler,
  collationFor,
  collectionName,
  type existingCollection,
  optionalDocument,
  optionalNumber,
} from './context.ts';
import { letVariables } from './pipeline.ts';
import { cursorReply, nonNegative, readable } from './read-time.ts';

/** find and its cursors (getMore, killCursors), count and distinct. */

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
      variables: letVariables(ctx),
    });
    if (skip || limit) docs = docs.slice(skip, limit ? skip + limit : undefined);
  } else if (coll) {
    const strings = collationFor(coll, body.collation);
    const earlyStop = !sort && limit > 0 ? skip + limit : undefined;
    docs = await matchDocuments(coll, filter, ctx.budget, earlyStop, strings, letVariables(ctx));
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

export function isIdIndex(hint: unknown): boolean {
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

export const findCommands: Record<string, CommandHandler> = { find, getMore, killCursors, count, distinct };
