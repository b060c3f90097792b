import { EJSON } from 'bson';
import type { Db } from 'mongodb';
import { UsageError } from '../errors.ts';
import { canonicalKey, displayValue, type KeyMatch } from '../mongo/keys.ts';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from './access.ts';
import { currentHost, newRunId, RunsStore } from './runs.ts';

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

function isBinary(value: unknown): boolean {
  return (value as { _bsontype?: string } | null)?._bsontype === 'Binary';
}

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
    for await (const entry of cursor) {
      if (entry.kind === 'document') {
        index.documentKeys.add(entry.valueKey);
        continue;
      }
      index.referenceKeys.add(entry.valueKey);
      // Binary keys carry their subtype since this version: an entry stored before still excepts its value.
      const binaryKey = isBinary(entry.value) ? canonicalKey(entry.value, 'exact') : undefined;
      if (binaryKey) index.referenceKeys.add(binaryKey);
    }
    return index;
  }

  /**
   * Adds an entry, unique per (relation, kind, value). One that exists but has expired is renewed (new reason,
   * author, time and expiry); one still in force is left as it is and returned, so the caller can show it.
   */
  /** Adds an exception (recorded in the run history unless `history` is false: an import records one run). */
  async add(entry: ExceptionEntry, { history = true }: { history?: boolean } = {}): Promise<AddOutcome> {
    assertWritable(this.access, 'add an exception');
    if (!entry.reason.trim()) throw new UsageError('an exception needs a reason');
    await this.collection.createIndex(
      { relation: 1, kind: 1, valueKey: 1 },
      { unique: true, name: 'relation_kind_value_unique' },
    );
    try {
      await this.collection.insertOne({ ...entry });
      if (history) await this.recordChange('added', entry, entry.createdBy);
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
    if (renewed) {
      if (history) await this.recordChange('renewed', entry, entry.createdBy);
      return { outcome: 'renewed', expired: renewed.expiresAt ?? undefined };
    }
    const existing = await this.collection.findOne(same, { projection: { _id: 0 } });
    return { outcome: 'exists', entry: existing ?? entry };
  }

  /** Removes an exception; recorded in the run history by whom. */
  async remove(
    entry: Pick<ExceptionEntry, 'relation' | 'kind' | 'valueKey' | 'value'>,
    operator: string,
  ): Promise<boolean> {
    assertWritable(this.access, 'remove an exception');
    const result = await this.collection.deleteOne({
      relation: entry.relation,
      kind: entry.kind,
      valueKey: entry.valueKey,
    });
    if (result.deletedCount !== 1) return false;
    await this.recordChange('removed', entry, operator);
    return true;
  }

  /**
   * An add or removal in the run history (`kind: exception`), next to the scans and cleanups it changes: who
   * allow-listed what, why, and until when.
   */
  private recordChange(
    change: 'added' | 'renewed' | 'removed',
    entry: Pick<ExceptionEntry, 'relation' | 'kind' | 'value'> & Partial<ExceptionEntry>,
    operator: string,
  ): Promise<void> {
    const until =
      change === 'removed'
        ? ''
        : entry.expiresAt
          ? ` until ${entry.expiresAt.toISOString().slice(0, 10)}`
          : ' no expiry';
    const reason = entry.reason ? ` "${entry.reason}"` : '';
    return this.recordRun(
      entry.relation,
      { [change]: 1 },
      `${change} ${entry.kind} ${displayValue(entry.value)}${reason}${until}`,
      operator,
    );
  }

  /** One `exception` run in the history: counts of what changed and a note saying what. */
  async recordRun(relation: string, counts: Record<string, number>, note: string, operator: string) {
    const now = new Date();
    await new RunsStore(this.db, this.access).record({
      runId: newRunId(now),
      kind: 'exception',
      relation,
      startedAt: now,
      finishedAt: now,
      durationMs: 0,
      operator,
      host: currentHost(),
      outcome: 'succeeded',
      complete: true,
      counts,
      note,
    });
  }
}
