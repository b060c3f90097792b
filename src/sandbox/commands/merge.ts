import { type Document, ObjectId } from 'bson';
import { indexKey } from '../bson-values.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { valuesAtPath } from '../../mongo/paths.ts';
import type { Collection, SecondaryIndex } from '../storage.ts';
import { type CommandContext, insertDocument, replaceDocument } from './context.ts';
import { assertWritableTarget, assertWriteStageAllowed, emptyCursorReply } from './out.ts';

const WHEN_MATCHED = new Set(['replace', 'keepExisting', 'merge', 'fail']);
const WHEN_NOT_MATCHED = new Set(['insert', 'discard', 'fail']);

interface MergeSpec {
  db: string;
  coll: string;
  on: string[];
  whenMatched: string;
  whenNotMatched: string;
}

function parseMerge(spec: unknown, db: string): MergeSpec {
  if (typeof spec === 'string')
    return { db, coll: spec, on: ['_id'], whenMatched: 'merge', whenNotMatched: 'insert' };
  if (!spec || typeof spec !== 'object' || Array.isArray(spec))
    throw new CommandError(ErrorCodes.TypeMismatch, '$merge takes a collection name or a document');
  const { into, on = '_id', whenMatched = 'merge', whenNotMatched = 'insert', ...rest } = spec as Document;
  for (const key of Object.keys(rest))
    if (key === 'let')
      throw new CommandError(ErrorCodes.NotImplemented, "$merge's let is not supported by the sandbox");
    else throw new CommandError(40415, `BSON field '$merge.${key}' is an unknown field.`);
  const target =
    typeof into === 'string'
      ? { db, coll: into }
      : into && typeof into === 'object' && typeof into.coll === 'string'
        ? { db: typeof into.db === 'string' ? into.db : db, coll: into.coll as string }
        : undefined;
  if (!target)
    throw new CommandError(
      ErrorCodes.FailedToParse,
      "$merge needs 'into': a collection name or { db, coll }",
    );
  const fields =
    typeof on === 'string'
      ? [on]
      : Array.isArray(on) && on.every((f) => typeof f === 'string')
        ? on
        : undefined;
  if (!fields || fields.length === 0 || new Set(fields).size !== fields.length)
    throw new CommandError(51186, "$merge 'on' field must be a string or an array of distinct strings");
  if (Array.isArray(whenMatched))
    throw new CommandError(
      ErrorCodes.NotImplemented,
      '$merge with a whenMatched pipeline is not supported by the sandbox',
    );
  if (!WHEN_MATCHED.has(whenMatched))
    throw new CommandError(
      ErrorCodes.BadValue,
      `Enumeration value '${String(whenMatched)}' for field 'whenMatched' is not a valid value.`,
    );
  if (!WHEN_NOT_MATCHED.has(whenNotMatched))
    throw new CommandError(
      ErrorCodes.BadValue,
      `Enumeration value '${String(whenNotMatched)}' for field 'whenNotMatched' is not a valid value.`,
    );
  return { ...target, on: fields, whenMatched, whenNotMatched };
}

/** The unique index `$merge` matches on when `on` is not `_id`: unique, not partial, on exactly those fields. */
function uniqueIndexOn(target: Collection | undefined, on: string[]): SecondaryIndex | undefined {
  return target?.indexes.find(
    (index) =>
      index.spec.unique &&
      !index.spec.partialFilterExpression &&
      index.fields.length === on.length &&
      on.every((field) => index.fields.includes(field)),
  );
}

/** The target's document matching a result on the `on` fields (through `_id`, or `index`). */
function matching(
  target: Collection | undefined,
  index: SecondaryIndex | undefined,
  result: Document,
): Document | undefined {
  if (!target) return undefined;
  if (!index) return target.docs.get(indexKey(result._id));
  const [key] = index.keysFor(result);
  const [idKey] = key === undefined ? [] : index.lookup(key);
  return idKey === undefined ? undefined : target.docs.get(idKey);
}

/**
 * The `$merge` stage, a result at a time as mongod does (not atomic: a failure leaves the results before it
 * written): a result matching a target document on the `on` fields (`_id` by default, else fields a unique
 * index covers) is merged into it (its fields set), replaces it, is dropped, or fails the command; one matching
 * none is inserted, dropped, or fails. `let` and a `whenMatched` pipeline are refused.
 */
export async function writeMerge(ctx: CommandContext, spec: unknown, results: Document[]): Promise<Document> {
  assertWriteStageAllowed(ctx, '$merge');
  const merge = parseMerge(spec, ctx.db);
  assertWritableTarget('$merge', merge);
  const { store } = ctx.server;
  const byId = merge.on.length === 1 && merge.on[0] === '_id';
  const noIndex = () =>
    new CommandError(51183, 'Cannot find index to verify that join fields will be unique');
  if (!byId && !uniqueIndexOn(store.collection(merge.db, merge.coll, false), merge.on)) throw noIndex();
  const inTarget: CommandContext = { ...ctx, db: merge.db };
  for (const result of results) {
    for (const field of merge.on) {
      const values = valuesAtPath(result, field);
      if (values.length !== 1 || values[0] === null || Array.isArray(values[0]))
        throw new CommandError(
          51132,
          `$merge write error: 'on' field '${field}' cannot be missing, null, undefined or an array`,
        );
    }
    // Looked up for each result: another command may drop the collection or its index between two of them.
    const target = store.collection(merge.db, merge.coll, false);
    const index = byId ? undefined : uniqueIndexOn(target, merge.on);
    if (!byId && !index) throw noIndex();
    const found = matching(target, index, result);
    if (found) {
      if (merge.whenMatched === 'fail')
        throw new CommandError(
          ErrorCodes.DuplicateKey,
          `$merge failed: a document matching the 'on' fields exists in ${merge.db}.${merge.coll}`,
        );
      if (merge.whenMatched === 'keepExisting') continue;
      if (result._id !== undefined && indexKey(result._id) !== indexKey(found._id))
        throw new CommandError(
          66,
          '$merge failed to update the matching document, did you attempt to modify the _id or the shard key?',
        );
      const next =
        merge.whenMatched === 'replace'
          ? { ...result, _id: found._id }
          : { ...found, ...result, _id: found._id };
      replaceDocument(inTarget, target!, found, next, merge.whenMatched === 'replace');
    } else if (merge.whenNotMatched === 'fail')
      throw new CommandError(
        13113,
        `$merge could not find a matching document in the target collection for at least one document in the source collection`,
      );
    else if (merge.whenNotMatched === 'insert') {
      const coll = store.collection(merge.db, merge.coll, true)!;
      insertDocument(inTarget, coll, result._id === undefined ? { _id: new ObjectId(), ...result } : result);
    }
    await ctx.budget.tick();
  }
  return emptyCursorReply(ctx);
}
