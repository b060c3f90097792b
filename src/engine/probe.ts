import type { Collection, Document, ReadConcernLike } from 'mongodb';
import { Query } from 'mingo';
import type { Relation } from '../config/load.ts';
import { canonicalKey, probeValues } from '../mongo/keys.ts';

/** What a parent probe found for one key. */
export type ParentState =
  | { kind: 'active' }
  | { kind: 'missing' }
  | { kind: 'inactive'; since: Date | undefined };

export const ACTIVE_PARENT: ParentState = { kind: 'active' };
export const MISSING_PARENT: ParentState = { kind: 'missing' };
const INACTIVE_PARENT: ParentState = { kind: 'inactive', since: undefined };

export function valueAt(doc: Document, path: string): unknown {
  let value: unknown = doc;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Document)[part];
  }
  return value;
}

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
  private readonly projection?: Document;

  constructor(
    private readonly relation: Relation,
    private readonly parents: Collection,
    private readonly options: ParentProbeOptions,
  ) {
    const { parent } = relation;
    this.activeFilter = parent.activeFilter ? new Query(parent.activeFilter) : undefined;
    const fields = [parent.field, ...(parent.softDeleteField ? [parent.softDeleteField] : [])];
    const filterKeys = parent.activeFilter ? Object.keys(parent.activeFilter) : [];
    // An activeFilter with top-level operators ($or, ...) needs whole parent documents.
    this.projection = filterKeys.some((key) => key.startsWith('$'))
      ? undefined
      : Object.fromEntries([...fields, ...filterKeys].map((f) => [f, 1]));
  }

  stateOf(parent: Document): ParentState {
    const { softDeleteField } = this.relation.parent;
    if (softDeleteField) {
      const deletedAt = valueAt(parent, softDeleteField);
      if (deletedAt !== null && deletedAt !== undefined)
        return { kind: 'inactive', since: deletedAt instanceof Date ? deletedAt : undefined };
    }
    if (this.activeFilter && !this.activeFilter.test(parent)) return INACTIVE_PARENT;
    return ACTIVE_PARENT;
  }

  /** `keys`: canonical key -> the reference as stored (its type matters under exact matching). */
  async probe(keys: Map<string, unknown>): Promise<Map<string, ParentState>> {
    const { relation } = this;
    const values = [...keys].flatMap(([key, original]) => probeValues(original, key, relation.keyMatch));
    const started = performance.now();
    const parents = await this.parents
      .find(
        { [relation.parent.field]: { $in: values } },
        {
          projection: this.projection,
          maxTimeMS: this.options.maxTimeMS,
          batchSize: Math.max(values.length, 101),
          readConcern: this.options.readConcern,
        },
      )
      .toArray();
    this.options.onProbe?.(performance.now() - started);
    const found = new Map<string, ParentState>();
    for (const parent of parents) {
      const raw = valueAt(parent, relation.parent.field);
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
