import type { Document } from 'bson';
import { CommandError, ErrorCodes } from '../command-error.ts';
import type { Cursor, CursorRegistry } from '../cursors.ts';
import type { FailPoints } from '../faults.ts';
import type { WorkBudget } from '../query.ts';
import type { Collection, Store } from '../storage.ts';

export interface ServerState {
  store: Store;
  cursors: CursorRegistry;
  faults: FailPoints;
  startedAt: Date;
  openConnections(): number;
}

export interface CommandContext {
  server: ServerState;
  connectionId: number;
  db: string;
  body: Document;
  budget: WorkBudget;
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
