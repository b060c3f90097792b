import type { Document } from 'bson';
import { indexKey, isPlainDocument } from '../bson-values.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { mongodText } from '../key-errors.ts';
import { promoted } from '../typed-values.ts';
import { adminCommands } from './admin.ts';
import {
  type CommandContext,
  type CommandHandler,
  insertDocument,
  removeDocument,
  replaceDocument,
} from './context.ts';
import { assertSize, withIdFirst } from './update-document.ts';

/**
 * `applyOps` as mongod 7.0 runs it in the command's mode (what `mongorestore --oplogReplay` sends), from mongod's
 * `apply_ops.cpp` and `applyOperation_inlock` (oplog.cpp), and its jstests `apply_ops2.js`/`apply_ops_dups.js`:
 * - one op at a time, not atomically: an op that throws stops the command with its error (`applied`, `results`
 *   so far), earlier ops stay applied; an op that fails without throwing (an update finding no document when it may
 *   not upsert) is `false` in `results`, the rest are applied, and the command then fails with UnknownError;
 * - `i`: an insert, retried as an upsert by `_id` (a replacement) when the `_id` exists;
 * - `u`: by `o2._id`, a `$v: 2` diff or a replacement, upserting when `alwaysUpsert` (default true) or the entry's
 *   `upsert` says so;
 * - `d`: by `_id` (none there is not an error); `n`: nothing;
 * - `c`: create, drop, createIndexes, dropIndexes and a nested applyOps (a transaction's entry); any other command
 *   is refused (NotImplemented), as are `preCondition` and classic `$set`-style updates.
 */

const UNKNOWN_ERROR = 8;
const NO_SUCH_KEY = 4;

/** A `$v: 2` diff applied to a copy of `doc`: `d` removes, `u` sets, `i` appends, `s<field>` descends. */
function applyDiff(doc: Document, diff: Document): Document {
  const out: Document = { ...doc };
  for (const [key, value] of Object.entries(diff)) {
    if (key === 'd') for (const field of Object.keys(value as Document)) delete out[field];
    else if (key === 'u' || key === 'i') Object.assign(out, value as Document);
    else if (key.startsWith('s')) {
      const field = key.slice(1);
      const sub = value as Document;
      out[field] = sub.a === true ? applyArrayDiff(out[field], sub) : applyDiff(asDocument(out[field]), sub);
    } else throw new CommandError(ErrorCodes.FailedToParse, `unknown field in an update diff: '${key}'`);
  }
  return out;
}

function asDocument(value: unknown): Document {
  if (isPlainDocument(value)) return value;
  throw new CommandError(
    ErrorCodes.FailedToParse,
    'an update diff descends into a field that is not a document',
  );
}

/** An array diff: `l` the new length, `u<i>` an element set, `s<i>` an element's own diff. */
function applyArrayDiff(value: unknown, diff: Document): unknown[] {
  if (!Array.isArray(value))
    throw new CommandError(ErrorCodes.FailedToParse, 'an array diff applies to a field that is not an array');
  const out = [...value];
  if (typeof diff.l === 'number') {
    out.length = Math.min(out.length, diff.l);
    while (out.length < diff.l) out.push(null);
  }
  for (const [key, element] of Object.entries(diff)) {
    if (key === 'a' || key === 'l') continue;
    const index = Number(key.slice(1));
    if (!Number.isInteger(index) || index < 0)
      throw new CommandError(ErrorCodes.FailedToParse, `unknown field in an array diff: '${key}'`);
    while (out.length <= index) out.push(null);
    if (key.startsWith('u')) out[index] = element;
    else if (key.startsWith('s'))
      out[index] =
        (element as Document).a === true
          ? applyArrayDiff(out[index], element as Document)
          : applyDiff(asDocument(out[index]), element as Document);
  }
  return out;
}

function namespaceOf(op: Document): { db: string; coll: string } {
  const ns = op.ns;
  const dot = typeof ns === 'string' ? ns.indexOf('.') : -1;
  if (dot <= 0 || dot === ns.length - 1)
    throw new CommandError(ErrorCodes.InvalidNamespace, `invalid ns in an applyOps entry: ${String(ns)}`);
  return { db: ns.slice(0, dot), coll: ns.slice(dot + 1) };
}

function objectOf(op: Document, field: 'o' | 'o2'): Document {
  const value = op[field];
  if (!isPlainDocument(value))
    throw new CommandError(ErrorCodes.FailedToParse, `applyOps entry field '${field}' must be a document`);
  return value;
}

/** What `c` entries may hold, and the command each becomes. */
function commandOf(o: Document): [string, Document] {
  const name = Object.keys(o)[0];
  if (name === 'createIndexes') {
    const { createIndexes, ...spec } = o;
    return [name, { createIndexes, indexes: [spec] }];
  }
  if (name === 'create' || name === 'drop' || name === 'dropIndexes') return [name, o];
  throw new CommandError(
    ErrorCodes.NotImplemented,
    `applyOps command entry '${name}' is not supported by the sandbox (create, drop, createIndexes, dropIndexes and applyOps are)`,
  );
}

/** One entry; true when applied, false when it failed without throwing (mongod's returned, not thrown, status). */
async function applyOne(ctx: CommandContext, op: Document, alwaysUpsert: boolean): Promise<boolean> {
  if (!isPlainDocument(op) || typeof op.op !== 'string')
    throw new CommandError(ErrorCodes.FailedToParse, 'each applyOps entry must be a document with an op');
  if (op.op === 'n') return true;
  const { db, coll: name } = namespaceOf(op);
  const inDb: CommandContext = { ...ctx, db };
  if (op.op === 'c') {
    const o = objectOf(op, 'o');
    if (Object.keys(o)[0] === 'applyOps')
      return (await applyAll(inDb, o.applyOps, alwaysUpsert)).every(Boolean);
    const [command, body] = commandOf(o);
    await adminCommands[command]({ ...inDb, body: promoted(body), typed: body });
    return true;
  }
  const coll = ctx.server.store.collection(db, name, op.op !== 'd');
  if (op.op === 'd') {
    const id = objectOf(op, 'o')._id;
    const existing = coll?.docs.get(indexKey(id));
    if (coll && existing) removeDocument(inDb, coll, existing);
    ctx.server.store.touch(db, name);
    return true;
  }
  if (!coll) throw new CommandError(ErrorCodes.InvalidNamespace, `invalid ns: ${db}.${name}`);
  if (op.op === 'i') {
    const doc = withIdFirst(objectOf(op, 'o'));
    if (doc._id === undefined)
      throw new CommandError(NO_SUCH_KEY, `Failed to apply insert due to missing _id: ${mongodText(op)}`);
    assertSize(doc);
    const existing = coll.docs.get(indexKey(doc._id));
    // An insert of an existing _id is retried as an upsert by _id (a replacement), for idempotency.
    if (existing) replaceDocument(inDb, coll, existing, doc, true);
    else insertDocument(inDb, coll, doc);
    ctx.server.store.touch(db, name);
    return true;
  }
  if (op.op === 'u') {
    const id = (op.o2 as Document | undefined)?._id;
    if (id === undefined)
      throw new CommandError(NO_SUCH_KEY, `Failed to apply update due to missing _id: ${mongodText(op)}`);
    const o = objectOf(op, 'o');
    const delta = o.$v === 2 && isPlainDocument(o.diff);
    if (!delta && Object.keys(o).some((key) => key.startsWith('$')))
      throw new CommandError(
        ErrorCodes.NotImplemented,
        'applyOps updates other than $v: 2 diffs and replacements are not supported by the sandbox',
      );
    const existing = coll.docs.get(indexKey(id));
    const upsert = alwaysUpsert || op.upsert === true;
    if (!existing && !upsert) return false;
    const base = existing ?? { _id: id };
    const next = withIdFirst(delta ? applyDiff(base, o.diff as Document) : { ...o, _id: id });
    assertSize(next);
    if (existing) replaceDocument(inDb, coll, existing, next, !delta);
    else insertDocument(inDb, coll, next);
    ctx.server.store.touch(db, name);
    return true;
  }
  throw new CommandError(ErrorCodes.FailedToParse, `unknown op type in an applyOps entry: '${op.op}'`);
}

async function applyAll(ctx: CommandContext, ops: unknown, alwaysUpsert: boolean): Promise<boolean[]> {
  if (!Array.isArray(ops)) throw new CommandError(ErrorCodes.TypeMismatch, 'applyOps must be an array');
  const results: boolean[] = [];
  for (const op of ops) {
    try {
      results.push(await applyOne(ctx, op as Document, alwaysUpsert));
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      results.push(false);
      throw new CommandError(error.code, error.message, {
        ...error.extra,
        applied: results.length,
        results,
      });
    }
  }
  return results;
}

export const applyOps: CommandHandler = async (ctx) => {
  if (ctx.transaction)
    throw new CommandError(
      ErrorCodes.OperationNotSupportedInTransaction,
      'Cannot run command applyOps in a multi-document transaction',
    );
  if (ctx.body.preCondition !== undefined)
    throw new CommandError(
      ErrorCodes.NotImplemented,
      'applyOps preCondition is not supported by the sandbox',
    );
  const results = await applyAll(ctx, ctx.typed.applyOps, ctx.body.alwaysUpsert !== false);
  if (results.includes(false))
    throw new CommandError(UNKNOWN_ERROR, 'applyOps had one or more errors applying ops', {
      applied: results.length,
      results,
    });
  return { applied: results.length, results, ok: 1 };
};
