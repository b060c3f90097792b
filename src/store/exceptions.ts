import { EJSON } from 'bson';
import type { Db } from 'mongodb';
import { UsageError } from '../errors.ts';
import { canonicalKey, displayValue, type KeyMatch } from '../mongo/keys.ts';
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

/** What adding an exception did. */
export type AddOutcome =
  | { outcome: 'added' }
  | { outcome: 'renewed'; expired: Date | undefined }
  | { outcome: 'exists'; entry: ExceptionEntry };

/** One line for an add's outcome, the same for the CLI and the console. */
export function addOutcomeText(
  result: AddOutcome,
  kind: ExceptionKind,
  shown: string,
  relation: string,
): string {
  switch (result.outcome) {
    case 'added':
      return `added ${kind} exception ${shown} to ${relation}`;
    case 'renewed':
      return `renewed ${kind} exception ${shown} in ${relation} (it had expired ${result.expired?.toISOString() ?? ''})`;
    case 'exists':
      return `already excepted: ${kind} ${shown} in ${relation}, ${result.entry.expiresAt ? `until ${result.entry.expiresAt.toISOString()}` : 'with no expiry'}`;
  }
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
      `reference ${displayValue(value)} is not a valid key: keyMatch ${keyMatch} takes ${keyMatch === 'objectid-or-hex' ? 'an ObjectId or a 24-character hex string' : 'a non-empty string, a number, an ObjectId or binary data'}`,
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

  /**
   * Adds an entry, unique per (relation, kind, value). One that exists but has expired is renewed (new reason,
   * author, time and expiry); one still in force is left as it is and returned, so the caller can show it.
   */
  async add(entry: ExceptionEntry): Promise<AddOutcome> {
    assertWritable(this.access, 'add an exception');
    if (!entry.reason.trim()) throw new UsageError('an exception needs a reason');
    await this.collection.createIndex(
      { relation: 1, kind: 1, valueKey: 1 },
      { unique: true, name: 'relation_kind_value_unique' },
    );
    try {
      await this.collection.insertOne({ ...entry });
      return { outcome: 'added' };
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
    }
    const same = { relation: entry.relation, kind: entry.kind, valueKey: entry.valueKey };
    const renewed = await this.collection.findOneAndUpdate(
      { ...same, expiresAt: { $lte: entry.createdAt } },
      {
        $set: {
          value: entry.value,
          reason: entry.reason,
          createdBy: entry.createdBy,
          createdAt: entry.createdAt,
          expiresAt: entry.expiresAt ?? null,
        },
      },
      { returnDocument: 'before', projection: { _id: 0 } },
    );
    if (renewed) return { outcome: 'renewed', expired: renewed.expiresAt ?? undefined };
    const existing = await this.collection.findOne(same, { projection: { _id: 0 } });
    return { outcome: 'exists', entry: existing ?? entry };
  }

  async remove(relation: string, kind: ExceptionKind, valueKey: string): Promise<boolean> {
    assertWritable(this.access, 'remove an exception');
    const result = await this.collection.deleteOne({ relation, kind, valueKey });
    return result.deletedCount === 1;
  }
}
