import { type Oplog, type OplogWrite, updateDiff } from '../oplog.ts';
import type { Document, Timestamp } from 'bson';
import { indexKey, type StringCompare } from '../bson-values.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import type { Cursor, CursorRegistry } from '../cursors.ts';
import type { FailPoints } from '../faults.ts';
import { type ClusterTime, clusterTimeOf } from '../history.ts';
import { readerView } from '../snapshot-view.ts';
import { parseCollation } from '../match.ts';
import type { WorkBudget } from '../query.ts';
import type { Collection, Store } from '../storage.ts';
import type { ClusterParameters, ServerParameters } from '../parameters.ts';
import type { Transaction, Transactions } from '../transactions.ts';
import type { TopCounters } from './top.ts';

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
  /** Cluster parameters (`getClusterParameter`/`setClusterParameter`): replica sets only. */
  clusterParameters?: ClusterParameters;
  openConnections(): number;
  /** Commands running now, by operation id: what `$currentOp` reports. */
  operations: Map<number, RunningOperation>;
  /** How the process was started, for `getCmdLineOpts`. */
  argv: string[];
  /** Every write applied, in replica-set mode (`local.oplog.rs`, change streams). */
  oplog?: Oplog;
  counters: ServerCounters;
  /** Time and counts per namespace (`top`). */
  top: TopCounters;
  /** The commands this server answers (`listCommands`). */
  commandNames(): string[];
  /** Writes the data directory now, if there is one (`fsync`). */
  saveNow(): Promise<void>;
}

/** What `serverStatus` counts (mongostat reads its differences): operations, bytes and connections. */
export interface ServerCounters {
  opcounters: {
    insert: number;
    query: number;
    update: number;
    delete: number;
    getmore: number;
    command: number;
  };
  network: { bytesIn: number; bytesOut: number; numRequests: number };
  connectionsCreated: number;
}

/** Counts one command as mongod's opcounters do: documents inserted, statements updated or deleted. */
export function countCommand(counters: ServerCounters, name: string, body: Document): void {
  const ops = counters.opcounters;
  const statements = (field: string) => (Array.isArray(body[field]) ? body[field].length : 0);
  if (name === 'insert') ops.insert += statements('documents');
  else if (name === 'update') ops.update += statements('updates');
  else if (name === 'delete') ops.delete += statements('deletes');
  else if (name === 'find') ops.query++;
  else if (name === 'getMore') ops.getmore++;
  else ops.command++;
}

export interface RunningOperation {
  opid: number;
  connectionId: number;
  appName?: string;
  db: string;
  command: Document;
  startedAt: number;
  /** The running command's budget, once it has one: `killOp` stops it through it. */
  budget?: WorkBudget;
}

export interface CommandContext {
  server: ServerState;
  connectionId: number;
  db: string;
  /** The command, numbers promoted (see `IncomingCommand.body`): options are read from here. */
  body: Document;
  /** The command with int64 and whole doubles typed: documents to store are taken from here. */
  typed: Document;
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

/**
 * Before a write to a document (`_id` key `idKey`, last committed as `before`): in a transaction, mongod's
 * write-conflict rules (see `Transactions.noteWrite`); outside one, a document an open transaction holds is
 * not written (the write commands wait for that transaction first, as mongod's do).
 */
function noteWrite(ctx: CommandContext, coll: Collection, idKey: string, before: Document | null): void {
  const ns = `${ctx.db}.${coll.name}`;
  if (ctx.transaction) {
    ctx.server.transactions.noteWrite(ctx.transaction, ns, idKey, before, coll.history);
  } else if (ctx.server.transactions.holder(ns, idKey))
    throw new CommandError(
      ErrorCodes.WriteConflict,
      'Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.',
    );
}

/**
 * Records a write in the oplog (replica-set mode): at once, or when its transaction commits; with the document
 * as it was before, when the collection keeps pre-images (`changeStreamPreAndPostImages`). A write outside a
 * transaction enters the collection's history at its cluster time (a transaction's enter at its commit).
 */
function logWrite(
  ctx: CommandContext,
  coll: Collection,
  write: OplogWrite,
  idKey: string,
  before?: Document,
  after?: Document,
): void {
  const oplog = ctx.server.oplog;
  if (!oplog) return;
  const images = (coll.options.changeStreamPreAndPostImages as Document | undefined)?.enabled
    ? { before, after }
    : {};
  if (ctx.transaction) ctx.transaction.onCommit(() => oplog.append(write, images));
  else {
    const entry = oplog.append(write, images);
    coll.history.record(
      idKey,
      before ?? null,
      clusterTimeOf(entry.ts as Timestamp),
      ctx.server.parameters.minSnapshotHistoryWindowInSeconds * 1000,
    );
  }
}

export function insertDocument(ctx: CommandContext, coll: Collection, doc: Document): void {
  const idKey = indexKey(doc._id);
  noteWrite(ctx, coll, idKey, null);
  coll.insert(doc);
  logWrite(ctx, coll, { op: 'i', ns: `${ctx.db}.${coll.name}`, ui: coll.uuid, o: doc }, idKey);
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
  const idKey = indexKey(previous._id);
  noteWrite(ctx, coll, idKey, previous);
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
    idKey,
    previous,
    next,
  );
  ctx.transaction?.record(() => {
    coll.replace(next, previous);
    ctx.server.store.touch(ctx.db, coll.name);
  });
}

export function removeDocument(ctx: CommandContext, coll: Collection, doc: Document): boolean {
  const idKey = indexKey(doc._id);
  if (!coll.docs.has(idKey)) return false;
  noteWrite(ctx, coll, idKey, doc);
  coll.remove(doc);
  logWrite(
    ctx,
    coll,
    { op: 'd', ns: `${ctx.db}.${coll.name}`, ui: coll.uuid, o: { _id: doc._id } },
    idKey,
    doc,
  );
  ctx.transaction?.record(() => {
    coll.insert(doc);
    ctx.server.store.touch(ctx.db, coll.name);
  });
  return true;
}

/**
 * The collection as this command reads it: as of `at` (a snapshot read's time, or its transaction's snapshot)
 * and without the uncommitted writes of other transactions. The store itself when neither applies.
 */
export function readView(ctx: CommandContext, coll: Collection, at?: ClusterTime): Collection {
  const { transactions } = ctx.server;
  const self = ctx.transaction;
  const snapshot = at ?? self?.snapshot;
  if (snapshot === undefined && !transactions.anyOpen()) return coll;
  if (snapshot !== undefined && !coll.history.covers(snapshot))
    throw new CommandError(
      ErrorCodes.SnapshotTooOld,
      `Read timestamp is older than the oldest available timestamp in ${ctx.db}.${coll.name}'s history (minSnapshotHistoryWindowInSeconds ${ctx.server.parameters.minSnapshotHistoryWindowInSeconds})`,
    );
  const ns = `${ctx.db}.${coll.name}`;
  return readerView(coll, {
    versionOf(key) {
      const past = snapshot !== undefined ? coll.history.versionAt(key, snapshot) : undefined;
      if (past !== undefined) return past;
      const holder = transactions.holder(ns, key, self);
      return holder ? (holder.held.get(ns)?.get(key) ?? null) : undefined;
    },
    differing() {
      const versions =
        snapshot !== undefined ? coll.history.asOf(snapshot) : new Map<string, Document | null>();
      for (const [key, before] of transactions.uncommittedPatch(ns, self))
        if (!versions.has(key)) versions.set(key, before);
      return versions;
    },
  });
}

/**
 * The collation a command's string comparisons follow: the command's (or statement's) own `collation`, else
 * the collection's default; undefined for binary comparison.
 */
export function collationFor(coll: Collection | undefined, spec: unknown): StringCompare | undefined {
  return parseCollation(spec ?? coll?.options.collation);
}
