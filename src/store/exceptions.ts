import { EJSON } from 'bson';
import type { Db } from 'mongodb';
import { UsageError } from '../errors.ts';
import { canonicalKey, type KeyMatch } from '../mongo/keys.ts';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from './access.ts';

export type ExceptionKind = 'document' | 'reference';

export interface ExceptionEntry {
  relation: string;
  kind: ExceptionKind;
  value: unknown;
  /** What `value` is matched by: the child `_id` in canonical EJSON, or the reference's canonical key. */
  valueKey: string;
  reason: string;
  createdBy: string;
  createdAt: Date;
  expiresAt?: Date | null;
}

/** The allow-list as the scan uses it: child ids and reference keys that are never deleted. */
export interface ExceptionIndex {
  documentKeys: Set<string>;
  referenceKeys: Set<string>;
}

export const NO_EXCEPTIONS: ExceptionIndex = { documentKeys: new Set(), referenceKeys: new Set() };

/** How a child `_id` is compared: its canonical Extended JSON, so 5, "5" and ObjectId("…") stay apart. */
export function documentKey(id: unknown): string {
  return EJSON.stringify({ id }, { relaxed: false });
}

export function exceptionKey(kind: ExceptionKind, value: unknown, keyMatch: KeyMatch): string {
  if (kind === 'document') return documentKey(value);
  const key = canonicalKey(value, keyMatch);
  if (key === undefined)
    throw new UsageError(
      `reference ${EJSON.stringify({ value }, { relaxed: true })} is not a valid key for this relation`,
    );
  return key;
}

/** Allow-listed orphans, in the child's database, so every operator and the nightly job see one list. */
export class ExceptionsStore {
  constructor(
    private readonly db: Db,
    private readonly access: WriteAccess,
  ) {}

  private get collection() {
    return this.db.collection<ExceptionEntry>(OWNED_COLLECTIONS.exceptions);
  }

  async list(relation?: string): Promise<ExceptionEntry[]> {
    return this.collection
      .find(relation ? { relation } : {}, { projection: { _id: 0 } })
      .sort({ relation: 1, createdAt: 1 })
      .toArray();
  }

  /** Active entries of a relation (expired ones no longer apply). */
  async index(relation: string, now: Date): Promise<ExceptionIndex> {
    const index: ExceptionIndex = { documentKeys: new Set(), referenceKeys: new Set() };
    const cursor = this.collection.find({
      relation,
      $or: [{ expiresAt: { $exists: false } }, { expiresAt: null }, { expiresAt: { $gt: now } }],
    });
    for await (const entry of cursor)
      (entry.kind === 'document' ? index.documentKeys : index.referenceKeys).add(entry.valueKey);
    return index;
  }

  /** Adds an entry; unique per (relation, kind, value). Returns false when it already existed. */
  async add(entry: ExceptionEntry): Promise<boolean> {
    assertWritable(this.access, 'add an exception');
    if (!entry.reason.trim()) throw new UsageError('an exception needs a reason');
    await this.collection.createIndex(
      { relation: 1, kind: 1, valueKey: 1 },
      { unique: true, name: 'relation_kind_value_unique' },
    );
    try {
      await this.collection.insertOne({ ...entry });
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === 11000) return false;
      throw error;
    }
  }

  async remove(relation: string, kind: ExceptionKind, valueKey: string): Promise<boolean> {
    assertWritable(this.access, 'remove an exception');
    const result = await this.collection.deleteOne({ relation, kind, valueKey });
    return result.deletedCount === 1;
  }
}
