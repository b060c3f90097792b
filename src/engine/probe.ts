import type { Collection, Document, ReadConcernLike } from 'mongodb';
import { BSON } from 'bson';
import { Query } from 'mingo';
import type { Relation } from '../config/load.ts';
import { canonicalKey, probeValues } from '../mongo/keys.ts';
import { MISSING, RawFieldReader } from './raw-bson.ts';

/** What a parent probe found for one key. */
export type ParentState =
  | { kind: 'active' }
  | { kind: 'missing' }
  | { kind: 'inactive'; since: Date | undefined };

export const ACTIVE_PARENT: ParentState = { kind: 'active' };
export const MISSING_PARENT: ParentState = { kind: 'missing' };
const INACTIVE_PARENT: ParentState = { kind: 'inactive', since: undefined };

export interface ParentProbeOptions {
  maxTimeMS: number;
  readConcern?: ReadConcernLike;
  onProbe?: (ms: number) => void;
}

/**
 * Looks up parents of a relation in one `$in` query (both key forms under objectid-or-hex) and says, per
 * key, whether its parent is active, inactive (soft-deleted, or failing activeFilter) or missing.
 */
export class ParentProbe {
  private readonly activeFilter?: Query;
  private readonly keyReader: RawFieldReader;
  private readonly deletedReader?: RawFieldReader;
  private readonly projection?: Document;

  constructor(
    private readonly relation: Relation,
    private readonly parents: Collection,
    private readonly options: ParentProbeOptions,
  ) {
    const { parent } = relation;
    this.keyReader = new RawFieldReader(parent.field);
    if (parent.softDeleteField) this.deletedReader = new RawFieldReader(parent.softDeleteField);
    this.activeFilter = parent.activeFilter ? new Query(parent.activeFilter) : undefined;
    const fields = [parent.field, ...(parent.softDeleteField ? [parent.softDeleteField] : [])];
    const filterKeys = parent.activeFilter ? Object.keys(parent.activeFilter) : [];
    // An activeFilter with top-level operators ($or, ...) needs whole parent documents.
    this.projection = filterKeys.some((key) => key.startsWith('$'))
      ? undefined
      : Object.fromEntries([...fields, ...filterKeys].map((f) => [f, 1]));
  }

  /** A parent read raw: the soft-delete field decoded alone; the whole document only for an activeFilter. */
  private stateOf(raw: Uint8Array): ParentState {
    const deletedAt = this.deletedReader?.read(raw);
    if (deletedAt !== undefined && deletedAt !== MISSING && deletedAt !== null) {
      return { kind: 'inactive', since: deletedAt instanceof Date ? deletedAt : undefined };
    }
    if (this.activeFilter && !this.activeFilter.test(BSON.deserialize(raw))) return INACTIVE_PARENT;
    return ACTIVE_PARENT;
  }

  /** `keys`: canonical key -> the reference as stored (its type matters under exact matching). */
  async probe(keys: Map<string, unknown>): Promise<Map<string, ParentState>> {
    const { relation } = this;
    const values = [...keys].flatMap(([key, original]) => probeValues(original, key, relation.keyMatch));
    const started = performance.now();
    const parents = (await this.parents
      .find(
        { [relation.parent.field]: { $in: values } },
        {
          projection: this.projection,
          maxTimeMS: this.options.maxTimeMS,
          batchSize: Math.max(values.length, 101),
          readConcern: this.options.readConcern,
          raw: true,
        },
      )
      .toArray()) as unknown as Uint8Array[];
    this.options.onProbe?.(performance.now() - started);
    const found = new Map<string, ParentState>();
    for (const parent of parents) {
      const raw = this.keyReader.read(parent);
      if (raw === MISSING) continue;
      for (const value of Array.isArray(raw) ? raw : [raw]) {
        const key = canonicalKey(value, relation.keyMatch);
        if (key === undefined || !keys.has(key)) continue;
        // Several parents may share a non-unique key: one active parent is enough.
        if (found.get(key)?.kind !== 'active') found.set(key, this.stateOf(parent));
      }
    }
    for (const key of keys.keys()) if (!found.has(key)) found.set(key, MISSING_PARENT);
    return found;
  }
}
