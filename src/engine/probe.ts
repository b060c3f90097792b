import { BSON } from 'bson';
import type { ClientSession, Collection, Db, Document, ReadConcernLike } from 'mongodb';
import type { Relation } from '../config/load.ts';
import { RuntimeError } from '../errors.ts';
import { canonicalKey, displayValue, probeValues } from '../mongo/keys.ts';
import { valuesAtPath } from '../mongo/paths.ts';
import { documentKey } from '../store/exceptions.ts';
import { MISSING, RawFieldReader } from './raw-bson.ts';

/** What a parent probe found for one key. */
export type ParentState =
  | { kind: 'active' }
  | { kind: 'missing'; since?: Date }
  | { kind: 'inactive'; since: Date | undefined };

export const ACTIVE_PARENT: ParentState = { kind: 'active' };
export const MISSING_PARENT: ParentState = { kind: 'missing' };
export const INACTIVE_PARENT: ParentState = { kind: 'inactive', since: undefined };

/** A soft-delete value that is neither a deletion mark nor a live one: the relation's meaning is unclear. */
export interface AmbiguousSoftDelete {
  /** The value's type, as a person reads it: `number`, `string`, `object`, `array`, `Decimal128`… */
  type: string;
  parentId: string;
}

/**
 * The server returned a parent for the requested keys whose key the tool cannot map back to any of them:
 * the server compares keys differently (a collation, a numeric type the tool does not know). Judging its
 * children missing could delete children of a live parent, so the relation's scan fails instead.
 */
export class ParentKeyMismatchError extends RuntimeError {}

export interface ParentProbeOptions {
  maxTimeMS: number;
  readConcern?: ReadConcernLike;
  onProbe?: (ms: number) => void;
}

const BSON_ARRAY = 0x04;

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value !== 'object' || value === null) return typeof value;
  return (value as { _bsontype?: string })._bsontype ?? 'object';
}

function isZero(value: unknown): boolean {
  if (typeof value === 'number' || typeof value === 'bigint') return Number(value) === 0;
  const bsonType = (value as { _bsontype?: string })._bsontype;
  if (bsonType === 'Long' || bsonType === 'Int32' || bsonType === 'Double' || bsonType === 'Decimal128')
    return Number(String(value)) === 0;
  return false;
}

/**
 * What a soft-delete field says: a date (the deletion time) or `true` mark a deleted parent; `false`, `0`,
 * `""`, `null` and absence a live one; anything else is ambiguous and never read as deleted.
 */
export function softDeleteState(
  value: unknown,
): { deleted: false } | { deleted: true; since: Date | undefined } | { ambiguous: string } {
  if (value === MISSING || value === undefined || value === null || value === false || value === '')
    return { deleted: false };
  // A BSON date outside JavaScript's range (±8.64e15 ms) decodes to an invalid Date: deleted, at a time the
  // tool cannot know, so its grace counts from the first sighting, never from NaN (which passes no grace check).
  if (value instanceof Date)
    return { deleted: true, since: Number.isNaN(value.getTime()) ? undefined : value };
  if (value === true) return { deleted: true, since: undefined };
  if (isZero(value)) return { deleted: false };
  return { ambiguous: typeName(value) };
}

/**
 * Looks up parents of a relation in one `$in` query (both key forms under objectid-or-hex) and says, per
 * key, whether its parent is active, inactive (soft-deleted, or failing activeFilter) or missing. The
 * activeFilter is evaluated by the parent's server, in a second query on the found parents' `_id`s, so
 * numbers, dates and mixed types compare as mongod compares them.
 */
export class ParentProbe {
  /** The first parent seen whose soft-delete field is ambiguous (reported as unsafe, treated as live). */
  ambiguous?: AmbiguousSoftDelete;
  private readonly idReader = new RawFieldReader('_id');
  private readonly keyReader: RawFieldReader;
  private readonly deletedReader?: RawFieldReader;
  private readonly projection: Document;
  private readonly parents: Collection;

  constructor(
    private readonly relation: Relation,
    private readonly parentDb: Db,
    private readonly options: ParentProbeOptions,
  ) {
    this.parents = parentDb.collection(relation.parent.collection);
    const { parent } = relation;
    this.keyReader = new RawFieldReader(parent.field);
    if (parent.softDeleteField) this.deletedReader = new RawFieldReader(parent.softDeleteField);
    const fields = [parent.field, ...(parent.softDeleteField ? [parent.softDeleteField] : [])];
    this.projection = Object.fromEntries(fields.map((f) => [f, 1]));
  }

  /** Every key value of a parent read raw: one value directly, or each element of an array path. */
  private keyValuesOf(raw: Uint8Array): unknown[] {
    const { field } = this.relation.parent;
    if (this.keyReader.locate(raw) && this.keyReader.type !== BSON_ARRAY) return [this.keyReader.read(raw)];
    return valuesAtPath(BSON.deserialize(raw, { promoteValues: true }), field);
  }

  private readOptions(batchSize: number, session: ClientSession | undefined) {
    return {
      maxTimeMS: this.options.maxTimeMS,
      batchSize: Math.max(batchSize, 101),
      readConcern: this.options.readConcern,
      ...(session ? { session } : {}),
    };
  }

  /** `keys`: canonical key -> the reference as stored (its type matters under exact matching). */
  async probe(keys: Map<string, unknown>): Promise<Map<string, ParentState>> {
    const { relation } = this;
    const found = new Map<string, ParentState>();
    if (keys.size === 0) return found;
    // With an activeFilter the probe is two reads: one causally consistent session makes the second read a
    // member at least as recent as the first (with secondary reads they could otherwise be two members, the
    // second behind the first, calling a parent un-suspended meanwhile inactive).
    const session = relation.parent.activeFilter
      ? this.parentDb.client.startSession({ causalConsistency: true })
      : undefined;
    try {
      return await this.probeIn(keys, session);
    } finally {
      await session?.endSession();
    }
  }

  private async probeIn(
    keys: Map<string, unknown>,
    session: ClientSession | undefined,
  ): Promise<Map<string, ParentState>> {
    const { relation } = this;
    const found = new Map<string, ParentState>();
    const values: unknown[] = [];
    for (const [key, original] of keys)
      for (const value of probeValues(original, key, relation.keyMatch)) values.push(value);
    const started = performance.now();
    const parents = (await this.parents
      .find(
        { [relation.parent.field]: { $in: values } },
        { ...this.readOptions(values.length, session), projection: this.projection, raw: true },
      )
      .toArray()) as unknown as Uint8Array[];

    interface FoundParent {
      idKey: string;
      keys: string[];
      softDeleted: { since: Date | undefined } | undefined;
    }
    const matched: FoundParent[] = [];
    const stillLive: unknown[] = [];
    for (const parent of parents) {
      const id = this.idReader.read(parent);
      const values = this.keyValuesOf(parent);
      const mapped = values
        .map((value) => canonicalKey(value, relation.keyMatch))
        .filter((key): key is string => key !== undefined && keys.has(key));
      if (mapped.length === 0)
        throw new ParentKeyMismatchError(
          `parent ${relation.parent.collection} _id ${displayValue(id)} was returned for the requested keys, but its ${relation.parent.field} (${values.map(displayValue).join(', ') || 'missing'}) matches none of them: the server compares keys differently from keyMatch '${relation.keyMatch}' (a collation?); refusing to judge these children`,
        );
      let softDeleted: FoundParent['softDeleted'];
      if (this.deletedReader) {
        const state = softDeleteState(this.deletedReader.read(parent));
        if ('ambiguous' in state) this.ambiguous ??= { type: state.ambiguous, parentId: displayValue(id) };
        else if (state.deleted) softDeleted = { since: state.since };
      }
      matched.push({ idKey: documentKey(id), keys: mapped, softDeleted });
      if (!softDeleted) stillLive.push(id);
    }

    const passing = await this.passingActiveFilter(stillLive, session);
    this.options.onProbe?.(performance.now() - started);
    for (const parent of matched) {
      const state: ParentState = parent.softDeleted
        ? { kind: 'inactive', since: parent.softDeleted.since }
        : passing && !passing.has(parent.idKey)
          ? INACTIVE_PARENT
          : ACTIVE_PARENT;
      // Several parents may share a non-unique key: one active parent is enough.
      for (const key of parent.keys) if (found.get(key)?.kind !== 'active') found.set(key, state);
    }
    for (const key of keys.keys()) if (!found.has(key)) found.set(key, MISSING_PARENT);
    return found;
  }

  /** The `_id`s (document keys) of those parents that pass the activeFilter, decided by the server. */
  private async passingActiveFilter(
    ids: unknown[],
    session: ClientSession | undefined,
  ): Promise<Set<string> | undefined> {
    const { activeFilter } = this.relation.parent;
    if (!activeFilter) return undefined;
    if (ids.length === 0) return new Set();
    const passing = await this.parents
      .find({ $and: [{ _id: { $in: ids } }, activeFilter] } as Document, {
        ...this.readOptions(ids.length, session),
        projection: { _id: 1 },
      })
      .toArray();
    return new Set(passing.map((doc) => documentKey(doc._id)));
  }
}
