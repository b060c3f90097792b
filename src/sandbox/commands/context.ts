import { type Oplog, type OplogWrite, updateDiff } from '../oplog.ts';
import type { Document } from 'bson';
import { indexKey, type StringCompare } from '../bson-values.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import type { Cursor, CursorRegistry } from '../cursors.ts';
import type { FailPoints } from '../faults.ts';
import { parseCollation } from '../match.ts';
import type { WorkBudget } from '../query.ts';
import type { Collection, Store } from '../storage.ts';
import type { ServerParameters } from '../parameters.ts';
import type { Transaction, Transactions } from '../transactions.ts';

export interface ServerState {
  store: Store;
  cursors: CursorRegistry;
  faults: FailPoints;
  startedAt: Date;
  /** Set when the sandbox acts as a replica set (`--replica-set NAME`); `secondary` with `--secondary-port`. */
  replicaSet?: { name: string; host: string; secondary?: string };
  transactions: Transactions;
  /** Server parameters (`getParameter`/`setParameter`): cursor timeout, transaction lifetime, snapshot window. */
  parameters: ServerParameters;
  openConnections(): number;
  /** Commands running now, by operation id: what `$currentOp` reports. */
  operations: Map<number, RunningOperation>;
  /** How the process was started, for `getCmdLineOpts`. */
  argv: string[];
  /** Every write applied, in replica-set mode (`local.oplog.rs`, change streams). */
  oplog?: Oplog;
}

export interface RunningOperation {
  opid: number;
  connectionId: number;
  appName?: string;
  db: string;
  command: Document;
  startedAt: number;
}

export interface CommandContext {
  server: ServerState;
  connectionId: number;
  db: string;
  body: Document;
  budget: WorkBudget;
  /** The session's transaction this command runs in, if any. */
  transaction?: Transaction;
  /** The command arrived on the secondary's port. */
  secondary?: boolean;
}

/** A reply carrying a cursor batch; the connection streams its documents straight into the reply buffer. */
export interface CursorBatch {
  kind: 'cursorBatch';
  cursor: Cursor;
  field: 'firstBatch' | 'nextBatch';
  batchSize: number | undefined;
  /** Close the cursor after this batch (singleBatch, negative limit). */
  single: boolean;
}

export type CommandResult = Document | CursorBatch;
export type CommandHandler = (ctx: CommandContext) => Promise<CommandResult> | CommandResult;

export function isCursorBatch(result: CommandResult): result is CursorBatch {
  return (result as CursorBatch).kind === 'cursorBatch';
}

/** The collection named by the command's first field (a string), validated. */
export function collectionName(ctx: CommandContext): string {
  const name = ctx.body[Object.keys(ctx.body)[0]];
  if (typeof name !== 'string' || name.length === 0) {
    throw new CommandError(ErrorCodes.InvalidNamespace, `collection name has invalid type ${typeof name}`);
  }
  return name;
}

export function existingCollection(ctx: CommandContext, name = collectionName(ctx)): Collection | undefined {
  return ctx.server.store.collection(ctx.db, name, false);
}

export function optionalNumber(body: Document, field: string): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CommandError(ErrorCodes.TypeMismatch, `'${field}' must be a number`);
  return n;
}

export function optionalDocument(body: Document, field: string): Document | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new CommandError(ErrorCodes.TypeMismatch, `'${field}' must be an object`);
  }
  return value as Document;
}

/*
 * Every write goes through these three, so a transaction can take it back on abort (and persistence notices).
 */

/** A document's identity for write-conflict detection. */
function documentRef(ctx: CommandContext, coll: Collection, doc: Document): string {
  return `${ctx.db}.${coll.name}\u0000${indexKey(doc._id)}`;
}

/**
 * Records a write in the oplog (replica-set mode): at once, or when its transaction commits; with the document
 * as it was before, when the collection keeps pre-images (`changeStreamPreAndPostImages`).
 */
function logWrite(
  ctx: CommandContext,
  coll: Collection,
  write: OplogWrite,
  before?: Document,
  after?: Document,
): void {
  const oplog = ctx.server.oplog;
  if (!oplog) return;
  const images = (coll.options.changeStreamPreAndPostImages as Document | undefined)?.enabled
    ? { before, after }
    : {};
  if (ctx.transaction) ctx.transaction.onCommit(() => oplog.append(write, images));
  else oplog.append(write, images);
}

export function insertDocument(ctx: CommandContext, coll: Collection, doc: Document): void {
  ctx.server.transactions.noteWrite(ctx.transaction, documentRef(ctx, coll, doc));
  coll.insert(doc);
  logWrite(ctx, coll, { op: 'i', ns: `${ctx.db}.${coll.name}`, ui: coll.uuid, o: doc });
  ctx.transaction?.record(() => {
    coll.remove(doc);
    ctx.server.store.touch(ctx.db, coll.name);
  });
}

export function replaceDocument(
  ctx: CommandContext,
  coll: Collection,
  previous: Document,
  next: Document,
  /** A replacement (the whole document given) rather than an update (operators or a pipeline). */
  replacement = false,
): void {
  ctx.server.transactions.noteWrite(ctx.transaction, documentRef(ctx, coll, previous));
  coll.replace(previous, next);
  logWrite(
    ctx,
    coll,
    {
      op: 'u',
      ns: `${ctx.db}.${coll.name}`,
      ui: coll.uuid,
      o: replacement ? next : updateDiff(previous, next),
      o2: { _id: next._id },
    },
    previous,
    next,
  );
  ctx.transaction?.record(() => {
    coll.replace(next, previous);
    ctx.server.store.touch(ctx.db, coll.name);
  });
}

export function removeDocument(ctx: CommandContext, coll: Collection, doc: Document): boolean {
  ctx.server.transactions.noteWrite(ctx.transaction, documentRef(ctx, coll, doc));
  const removed = coll.remove(doc);
  if (removed)
    logWrite(ctx, coll, { op: 'd', ns: `${ctx.db}.${coll.name}`, ui: coll.uuid, o: { _id: doc._id } }, doc);
  if (removed)
    ctx.transaction?.record(() => {
      coll.insert(doc);
      ctx.server.store.touch(ctx.db, coll.name);
    });
  return removed;
}

/**
 * The collation a command's string comparisons follow: the command's (or statement's) own `collation`, else
 * the collection's default; undefined for binary comparison.
 */
export function collationFor(coll: Collection | undefined, spec: unknown): StringCompare | undefined {
  return parseCollation(spec ?? coll?.options.collation);
}
