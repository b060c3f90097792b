import { setTimeout as sleep } from 'node:timers/promises';
import type { Document } from 'bson';
import { indexKey } from '../bson-values.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { compileProjection, matchDocuments, parseSort, sortDocuments } from '../query.ts';
import type { Collection } from '../storage.ts';
import { MAX_WRITE_BATCH_SIZE } from '../wire.ts';
import {
  assertSize,
  isOperatorUpdate,
  updatedCopy,
  upsertedDocument,
  withIdFirst,
} from './update-document.ts';
import { letVariables } from './pipeline.ts';
import {
  type CommandContext,
  type CommandHandler,
  collationFor,
  collectionName,
  insertDocument,
  optionalDocument,
  readView,
  removeDocument,
  replaceDocument,
} from './context.ts';

/** How often a write waiting for a transaction's documents looks again. */
const HELD_POLL_MS = 10;

/** The statements of a write; from `ctx.typed` where their numbers are stored (see `IncomingCommand.typed`). */
function statements(ctx: CommandContext, field: string, from: Document = ctx.body): Document[] {
  const list = from[field];
  if (!Array.isArray(list)) throw new CommandError(ErrorCodes.TypeMismatch, `'${field}' must be an array`);
  if (list.length > MAX_WRITE_BATCH_SIZE) {
    throw new CommandError(
      ErrorCodes.InvalidOptions,
      `Write batch sizes must be between 1 and ${MAX_WRITE_BATCH_SIZE}. Got ${list.length} operations.`,
    );
  }
  return list as Document[];
}

function writableCollection(ctx: CommandContext): Collection {
  return ctx.server.store.collection(ctx.db, collectionName(ctx), true)!;
}

interface WriteError {
  index: number;
  code: number;
  codeName: string;
  errmsg: string;
  [extra: string]: unknown;
}

function writeErrorOf(index: number, error: unknown): WriteError {
  // A write conflict fails the whole command (and aborts its transaction), as on mongod.
  if (!(error instanceof CommandError) || error.code === ErrorCodes.WriteConflict) throw error;
  return { index, code: error.code, codeName: error.codeName, errmsg: error.message, ...error.extra };
}

function reply(fields: Document, writeErrors: WriteError[]): Document {
  return writeErrors.length ? { ...fields, writeErrors, ok: 1 } : { ...fields, ok: 1 };
}

const insert: CommandHandler = async (ctx) => {
  const docs = statements(ctx, 'documents', ctx.typed);
  const ordered = ctx.body.ordered !== false;
  const coll = writableCollection(ctx);
  const writeErrors: WriteError[] = [];
  let n = 0;
  for (let i = 0; i < docs.length; i++) {
    try {
      const doc = withIdFirst(docs[i]);
      assertSize(doc);
      insertDocument(ctx, coll, doc);
      n++;
    } catch (error) {
      writeErrors.push(writeErrorOf(i, error));
      if (ordered) break;
    }
    await ctx.budget.tick();
  }
  if (n) ctx.server.store.touch(ctx.db, collectionName(ctx));
  return reply({ n }, writeErrors);
};

function arrayFiltersOf(statement: Document): Document[] | undefined {
  return Array.isArray(statement.arrayFilters) ? statement.arrayFilters : undefined;
}

/** `let` reaches the filters; an update pipeline reading `$$name` is refused rather than given no value. */
function refuseLetInUpdatePipelines(ctx: CommandContext, updates: unknown[]): void {
  if (ctx.body.let !== undefined && updates.some(Array.isArray))
    throw new CommandError(
      ErrorCodes.NotImplemented,
      'let with an update pipeline is not supported by the sandbox (let applies to the query only)',
    );
}

const updateCommand: CommandHandler = async (ctx) => {
  const updates = statements(ctx, 'updates');
  // What an update stores (its replacement, operator values, an upsert's query fields) keeps its numbers' types.
  const typedUpdates = statements(ctx, 'updates', ctx.typed);
  refuseLetInUpdatePipelines(
    ctx,
    updates.map((statement) => statement.u),
  );
  const ordered = ctx.body.ordered !== false;
  const coll = writableCollection(ctx);
  const writeErrors: WriteError[] = [];
  const upserted: Document[] = [];
  let n = 0;
  let nModified = 0;
  for (let i = 0; i < updates.length; i++) {
    const statement = updates[i];
    const typed = typedUpdates[i];
    try {
      const targets = await writeTargets(
        ctx,
        coll,
        optionalDocument(statement, 'q'),
        statement.multi ? undefined : 1,
        collationFor(coll, statement.collation),
      );
      if (statement.multi && !Array.isArray(statement.u) && !isOperatorUpdate(statement.u ?? {})) {
        throw new CommandError(
          ErrorCodes.FailedToParse,
          'multi update is not supported for replacement-style update',
        );
      }
      for (const doc of targets) {
        const next = updatedCopy(doc, typed.u, arrayFiltersOf(statement), false, statement.q);
        if (next) {
          assertSize(next);
          replaceDocument(
            ctx,
            coll,
            doc,
            next,
            !Array.isArray(statement.u) && !isOperatorUpdate(statement.u ?? {}),
          );
          nModified++;
        }
        n++;
        // A multi-update yields like mongod's, so heartbeats and other clients are answered meanwhile.
        await ctx.budget.tick();
      }
      if (targets.length === 0 && statement.upsert) {
        const doc = upsertedDocument(typed.q, typed.u, arrayFiltersOf(statement));
        insertDocument(ctx, coll, doc);
        upserted.push({ index: i, _id: doc._id });
        n++;
      }
    } catch (error) {
      writeErrors.push(writeErrorOf(i, error));
      if (ordered) break;
    }
  }
  if (n) ctx.server.store.touch(ctx.db, collectionName(ctx));
  return reply(upserted.length ? { n, nModified, upserted } : { n, nModified }, writeErrors);
};

/**
 * The documents a write statement targets, as its writer sees them (in a transaction: its snapshot and its own
 * writes; outside: the last committed versions). Outside a transaction a target that an open transaction holds
 * is waited for, as mongod's write waits out its WriteConflict, then the statement is matched again; the wait
 * ends with the command's maxTimeMS, or when the transaction commits, aborts or outlives its lifetime limit.
 */
async function writeTargets(
  ctx: CommandContext,
  coll: Collection,
  filter: Document | undefined,
  limit: number | undefined,
  strings: ReturnType<typeof collationFor>,
): Promise<Document[]> {
  const ns = `${ctx.db}.${coll.name}`;
  const { transactions } = ctx.server;
  for (;;) {
    const targets = await matchDocuments(
      readView(ctx, coll),
      filter,
      ctx.budget,
      limit,
      strings,
      letVariables(ctx),
    );
    if (ctx.transaction) return targets;
    const holder = targets.map((doc) => transactions.holder(ns, indexKey(doc._id))).find(Boolean);
    if (!holder) return targets;
    while (holder.state === 'inProgress') {
      ctx.budget.check();
      await sleep(HELD_POLL_MS);
      transactions.reapExpired();
    }
  }
}

const deleteCommand: CommandHandler = async (ctx) => {
  const deletes = statements(ctx, 'deletes');
  const ordered = ctx.body.ordered !== false;
  const coll = ctx.server.store.collection(ctx.db, collectionName(ctx), false);
  const writeErrors: WriteError[] = [];
  let n = 0;
  for (let i = 0; i < deletes.length; i++) {
    const statement = deletes[i];
    try {
      const limit = Number(statement.limit ?? 0);
      if (limit !== 0 && limit !== 1)
        throw new CommandError(ErrorCodes.FailedToParse, 'The limit field in delete objects must be 0 or 1');
      if (!coll) continue;
      const targets = await writeTargets(
        ctx,
        coll,
        optionalDocument(statement, 'q'),
        limit === 1 ? 1 : undefined,
        collationFor(coll, statement.collation),
      );
      for (const doc of targets) {
        if (removeDocument(ctx, coll, doc)) n++;
        await ctx.budget.tick();
      }
    } catch (error) {
      writeErrors.push(writeErrorOf(i, error));
      if (ordered) break;
    }
  }
  if (n) ctx.server.store.touch(ctx.db, collectionName(ctx));
  return reply({ n }, writeErrors);
};

const findAndModify: CommandHandler = async (ctx) => {
  const { body } = ctx;
  refuseLetInUpdatePipelines(ctx, [body.update]);
  const coll = writableCollection(ctx);
  const query = optionalDocument(body, 'query');
  const sort = parseSort(body.sort);
  const strings = collationFor(coll, body.collation);
  let candidates = await writeTargets(ctx, coll, query, sort ? undefined : 1, strings);
  if (sort) candidates = await sortDocuments(candidates, sort, ctx.budget, strings);
  const target = candidates[0];
  const project = compileProjection(body.fields ?? body.projection);
  const shown = (doc: Document | undefined) => (doc && project ? project(doc) : (doc ?? null));
  if (body.remove) {
    if (body.update !== undefined)
      throw new CommandError(ErrorCodes.FailedToParse, 'Cannot specify both an update and remove=true');
    if (target) {
      removeDocument(ctx, coll, target);
      ctx.server.store.touch(ctx.db, collectionName(ctx));
    }
    return { lastErrorObject: { n: target ? 1 : 0 }, value: shown(target), ok: 1 };
  }
  if (body.update === undefined)
    throw new CommandError(ErrorCodes.FailedToParse, 'Either an update or remove=true must be specified');
  const arrayFilters = Array.isArray(body.arrayFilters) ? body.arrayFilters : undefined;
  if (target) {
    const next = updatedCopy(target, ctx.typed.update, arrayFilters, false, query);
    if (next) {
      assertSize(next);
      replaceDocument(ctx, coll, target, next, !Array.isArray(body.update) && !isOperatorUpdate(body.update));
      ctx.server.store.touch(ctx.db, collectionName(ctx));
    }
    return {
      lastErrorObject: { n: 1, updatedExisting: true },
      value: shown(body.new ? (next ?? target) : target),
      ok: 1,
    };
  }
  if (!body.upsert) return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
  const doc = upsertedDocument(optionalDocument(ctx.typed, 'query'), ctx.typed.update, arrayFilters);
  insertDocument(ctx, coll, doc);
  ctx.server.store.touch(ctx.db, collectionName(ctx));
  return {
    lastErrorObject: { n: 1, updatedExisting: false, upserted: doc._id },
    value: body.new ? shown(doc) : null,
    ok: 1,
  };
};

export const writeCommands: Record<string, CommandHandler> = {
  insert,
  update: updateCommand,
  delete: deleteCommand,
  findAndModify,
  findandmodify: findAndModify,
};
