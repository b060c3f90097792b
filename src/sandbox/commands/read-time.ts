import { setTimeout as sleep } from 'node:timers/promises';
import type { Document, Timestamp } from 'bson';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { clusterTimeOf } from '../history.ts';
import { compileProjection } from '../query.ts';
import {
  type CommandContext,
  type CursorBatch,
  existingCollection,
  optionalDocument,
  optionalNumber,
  readView,
} from './context.ts';

/** What every read command shares: the time it reads at, the collection as of then, its first cursor batch. */

const DEFAULT_FIRST_BATCH = 101;

export function cursorReply(
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

export function nonNegative(body: Document, field: string): number | undefined {
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
export async function readable(
  ctx: CommandContext,
  name: string,
): Promise<{ coll: ReturnType<typeof existingCollection>; atClusterTime: Timestamp | undefined }> {
  const { at, atClusterTime } = await readTime(ctx);
  const stored = existingCollection(ctx, name);
  const coll = stored && readView(ctx, stored, at ? clusterTimeOf(at) : undefined);
  return { coll, atClusterTime };
}
