import type { Timestamp } from 'bson';
import { randomInt } from 'node:crypto';
import type { Document } from 'bson';
import { CommandError, ErrorCodes } from './command-error.ts';
import type { ChangeStream } from './change-stream.ts';
import type { Projector } from './query.ts';

export interface Cursor {
  id: bigint;
  ns: string;
  docs: Document[];
  pos: number;
  project?: Projector;
  lastUsed: number;
  /** A change stream's cursor: never exhausted, its batches come from the oplog (`getMore` waits for them). */
  changeStream?: ChangeStream;
  /** A snapshot read's time (`readConcern: snapshot`), returned in the first batch as `atClusterTime`. */
  atClusterTime?: Timestamp;
  /** The stages after `$changeStream`, applied to each batch of events. */
  pipeline?: (events: Document[]) => Promise<Document[]>;
}

/**
 * Open cursors of one server; ids are positive int64 values, idle cursors expire after mongod's
 * `cursorTimeoutMillis` (10 minutes unless set with `setParameter`).
 */
export class CursorRegistry {
  private readonly cursors = new Map<bigint, Cursor>();

  constructor(private readonly idleTimeoutMs: () => number = () => 10 * 60 * 1000) {}

  open(ns: string, docs: Document[], project?: Projector): Cursor {
    let id: bigint;
    do id = BigInt(randomInt(1, 2 ** 47)) * 64n + BigInt(randomInt(0, 64));
    while (this.cursors.has(id));
    const cursor: Cursor = { id, ns, docs, pos: 0, project, lastUsed: Date.now() };
    this.cursors.set(id, cursor);
    return cursor;
  }

  get(id: bigint, ns: string): Cursor {
    this.reapIdle();
    const cursor = this.cursors.get(id);
    if (!cursor) throw new CommandError(ErrorCodes.CursorNotFound, `cursor id ${id} not found`);
    if (cursor.ns !== ns) {
      throw new CommandError(
        13,
        `Requested getMore on namespace '${ns}', but cursor belongs to '${cursor.ns}'`,
      );
    }
    cursor.lastUsed = Date.now();
    return cursor;
  }

  kill(id: bigint): boolean {
    return this.cursors.delete(id);
  }

  get openCount(): number {
    return this.cursors.size;
  }

  private reapIdle(): void {
    const cutoff = Date.now() - this.idleTimeoutMs();
    for (const [id, cursor] of this.cursors) if (cursor.lastUsed < cutoff) this.cursors.delete(id);
  }
}

/** Normalises a cursor id as drivers send it (int64 promoted to number, or a Long). */
export function cursorIdOf(value: unknown): bigint {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'bigint') return value;
  if (value && typeof value === 'object' && (value as { _bsontype?: string })._bsontype === 'Long') {
    return BigInt(value.toString());
  }
  throw new CommandError(ErrorCodes.TypeMismatch, 'cursor id must be a 64-bit integer');
}
