import { randomUUID } from 'node:crypto';
import { type Document, Long, ObjectId } from 'bson';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { ID_INDEX } from '../storage.ts';
import { type CommandContext, insertDocument } from './context.ts';
import { moveCollection } from './rename.ts';

/** Databases `$out` may not write to, as on mongod. */
const INTERNAL_DATABASES = new Set(['admin', 'local', 'config']);

/** `$out` and `$merge` write outside transactions and never under a snapshot or linearizable read, as on mongod. */
export function assertWriteStageAllowed(ctx: CommandContext, stage: string): void {
  if (ctx.transaction)
    throw new CommandError(
      ErrorCodes.OperationNotSupportedInTransaction,
      `${stage} cannot be used in a transaction`,
    );
  const level = (ctx.body.readConcern as Document | undefined)?.level;
  if (level === 'snapshot' || level === 'linearizable')
    throw new CommandError(
      ErrorCodes.InvalidOptions,
      `${stage} cannot be used with readConcern level ${level}`,
    );
}

/** `$out` and `$merge` never write into admin, local, config or a system collection, as on mongod. */
export function assertWritableTarget(stage: string, target: { db: string; coll: string }): void {
  if (INTERNAL_DATABASES.has(target.db) || target.coll.startsWith('system.') || target.coll === '')
    throw new CommandError(
      ErrorCodes.InvalidNamespace,
      `Invalid ${stage} target namespace, ${target.db}.${target.coll}`,
    );
}

/** What `$out` and `$merge` answer: an empty, finished cursor. */
export function emptyCursorReply(ctx: CommandContext): Document {
  const ns = `${ctx.db}.${String(ctx.body.aggregate)}`;
  return { cursor: { firstBatch: [], id: Long.fromNumber(0), ns }, ok: 1 };
}

function outTarget(spec: unknown, db: string): { db: string; coll: string } {
  if (typeof spec === 'string') return { db, coll: spec };
  if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
    const { db: targetDb = db, coll, ...rest } = spec as Document;
    if ('timeseries' in rest)
      throw new CommandError(
        ErrorCodes.NotImplemented,
        '$out to a time series collection is not supported by the sandbox',
      );
    for (const key of Object.keys(rest))
      throw new CommandError(40415, `BSON field '$out.${key}' is an unknown field.`);
    if (typeof targetDb === 'string' && typeof coll === 'string') return { db: targetDb, coll };
  }
  throw new CommandError(
    16990,
    "$out only supports a string or object argument, e.g. { db: 'db', coll: 'c' }",
  );
}

/**
 * The `$out` stage, as mongod runs it: the results go into a temporary collection (`tmp.agg_out.<uuid>`, with
 * the target's indexes), which then replaces the target in one rename — so the target keeps its indexes, and a
 * result that breaks one of them (a duplicate `_id` or unique key) fails the command with the target unchanged.
 * A result without `_id` gets an ObjectId. Answers mongod's empty cursor.
 */
export async function writeOut(ctx: CommandContext, spec: unknown, results: Document[]): Promise<Document> {
  assertWriteStageAllowed(ctx, '$out');
  const target = outTarget(spec, ctx.db);
  assertWritableTarget('$out', target);
  const { store } = ctx.server;
  const existing = store.collection(target.db, target.coll, false);
  const tempName = `tmp.agg_out.${randomUUID()}`;
  const temp = store.collection(target.db, tempName, true)!;
  for (const index of existing?.indexSpecs ?? []) if (index.name !== ID_INDEX.name) temp.addIndex(index);
  const inTarget: CommandContext = { ...ctx, db: target.db };
  try {
    for (const doc of results) {
      insertDocument(inTarget, temp, doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc);
      await ctx.budget.tick();
    }
  } catch (error) {
    store.database(target.db, false)?.collections.delete(tempName);
    store.touch(target.db, tempName);
    throw error;
  }
  moveCollection(ctx.server, temp, target.db, tempName, target.db, target.coll);
  return emptyCursorReply(ctx);
}
