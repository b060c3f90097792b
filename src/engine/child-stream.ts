import type { Collection, Document } from 'mongodb';
import { MongoNetworkError, MongoServerError } from 'mongodb';
import { log } from '../logging.ts';
import { documentKey } from '../store/exceptions.ts';
import { prefetchedBatches, type RawBatch } from './raw-batches.ts';
import { RawFieldReader } from './raw-bson.ts';

/**
 * A range of the child collection along its `_id` index, and how far a scan got in it. Ranges are index
 * bounds (`min` inclusive, `max` exclusive, absent = open), so every `_id` type is in exactly one range —
 * unlike `$gt`/`$lt`, which compare within one BSON type. Resuming from `after` therefore works on every
 * server version, and the same mechanism splits a collection for parallel readers; a natural-order resume
 * token (`$_resumeAfter`, 4.4+) can do neither. (Untested through mongos: no sharded cluster was available.)
 */
export interface Partition {
  min?: unknown;
  max?: unknown;
  /** The last `_id` whose document was scanned and counted, when any. */
  after?: unknown;
  done: boolean;
}

/**
 * Times in a row one partition's cursor is reopened after it was lost without reading a batch in between,
 * before the scan fails (a reopen that reads on starts the count again: a long scan may live through many
 * failovers, but not through a server that never answers).
 */
export const CURSOR_REOPEN_LIMIT = 5;
/** `$sample` size per requested partition when choosing split points. */
const SPLIT_SAMPLE_PER_PARTITION = 200;

/**
 * Server errors after which the same read, reopened from the last scanned `_id`, can succeed: the cursor was
 * killed or lost (CursorNotFound, CursorKilled, QueryPlanKilled) or its server stepped down or shut down.
 */
const CURSOR_LOST_CODES = new Set([6, 7, 43, 89, 91, 175, 189, 237, 9001, 10107, 11600, 11602, 13435, 13436]);

export function isCursorLost(error: unknown): boolean {
  if (error instanceof MongoNetworkError) return true;
  return error instanceof MongoServerError && CURSOR_LOST_CODES.has(Number(error.code));
}

export interface PartitionBatch extends RawBatch {
  /** The `_id` of the batch's last document: where a reopened cursor or a resumed scan continues. */
  lastId: unknown;
}

/**
 * The documents of one partition in `_id` order, as raw batches, from where it got to (`after`). A cursor
 * lost to a failover or a kill is reopened from the last batch handed out, up to CURSOR_REOPEN_LIMIT times.
 * The caller sets `partition.after` once it has counted a batch. No maxTimeMS on the stream: the server
 * counts it over the cursor's whole life, so it would cap a long scan however healthy.
 */
export async function* partitionBatches(
  children: Collection,
  partition: Partition,
  projection: Document,
  batchSize: number,
  relation: string,
): AsyncGenerator<PartitionBatch> {
  const idReader = new RawFieldReader('_id');
  let reopened = 0;
  for (;;) {
    const after = partition.after;
    const start = after !== undefined ? after : partition.min;
    const cursor = children.find(
      {},
      {
        projection,
        batchSize,
        raw: true,
        sort: { _id: 1 },
        hint: { _id: 1 },
        ...(start !== undefined ? { min: { _id: start } } : {}),
        ...(partition.max !== undefined ? { max: { _id: partition.max } } : {}),
      },
    );
    const afterKey = after !== undefined ? documentKey(after) : undefined;
    try {
      let first = true;
      for await (const batch of prefetchedBatches(cursor)) {
        let offsets = batch.offsets;
        // `min` is inclusive: the document a resumed range starts at was counted already.
        if (
          first &&
          afterKey !== undefined &&
          offsets.length &&
          documentKey(idReader.read(batch.bytes, offsets[0])) === afterKey
        )
          offsets = offsets.slice(1);
        first = false;
        if (offsets.length === 0) continue;
        reopened = 0;
        yield { ...batch, offsets, lastId: idReader.read(batch.bytes, offsets[offsets.length - 1]) };
      }
      return;
    } catch (error) {
      if (!isCursorLost(error) || reopened >= CURSOR_REOPEN_LIMIT) throw error;
      reopened++;
      log.warn(
        { relation, reopened, error: (error as Error).message },
        'child cursor lost; reopening it from the last scanned _id',
      );
    } finally {
      await cursor.close().catch(() => undefined);
    }
  }
}

/**
 * Splits the child collection into about `count` `_id` ranges of similar size, from split points the server
 * picks (`$sample`, sorted by the server in BSON order): fewer when the collection is small or ids repeat.
 */
export async function splitPartitions(
  children: Collection,
  count: number,
  maxTimeMS: number,
): Promise<Partition[]> {
  if (count <= 1) return [{ done: false }];
  const sampled = await children
    .aggregate<{ _id: unknown }>(
      [
        { $sample: { size: count * SPLIT_SAMPLE_PER_PARTITION } },
        { $project: { _id: 1 } },
        { $sort: { _id: 1 } },
      ],
      { maxTimeMS, allowDiskUse: true },
    )
    .toArray();
  if (sampled.length < count) return [{ done: false }];
  const points: unknown[] = [];
  for (let i = 1; i < count; i++) {
    const point = sampled[Math.floor((i * sampled.length) / count)]?._id;
    if (point === undefined) continue;
    if (points.length && documentKey(points[points.length - 1]) === documentKey(point)) continue;
    points.push(point);
  }
  const bounds = [undefined, ...points, undefined];
  return points
    .map((_, i) => i)
    .concat(points.length)
    .map((i) => ({
      ...(bounds[i] !== undefined ? { min: bounds[i] } : {}),
      ...(bounds[i + 1] !== undefined ? { max: bounds[i + 1] } : {}),
      done: false,
    }));
}
