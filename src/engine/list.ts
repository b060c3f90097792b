import type { Document } from 'mongodb';
import type { Relation, ResolvedConfig } from '../config/load.ts';
import { RuntimeError, UsageError } from '../errors.ts';
import { DAY_MS } from '../limits.ts';
import { canonicalKey, referenceAt, valuesForKey } from '../mongo/keys.ts';
import type { SourcePool } from '../mongo/sources.ts';
import { documentKey, ExceptionsStore } from '../store/exceptions.ts';
import { FirstSeenStore, type UnresolvedState } from '../store/first-seen.ts';
import { type RunRecord, RunsStore } from '../store/runs.ts';
import { createIndexCommand, indexesOf, leadingField } from './parent-checks.ts';

/** References per query on the child collection (one `$in` over the child field's index). */
const REFERENCES_PER_QUERY = 500;

export type ListCategory = 'orphans' | 'parentInactive';

/** One child whose reference the last complete scan saw unresolved. */
export interface ListedChild {
  id: unknown;
  reference: unknown;
  /** `unresolved` for references recorded before the tool kept whether the parent was missing or inactive. */
  category: ListCategory | 'unresolved';
  /** When the tool first saw the reference unresolved. */
  firstSeenAt: Date;
  /** Past the relation's grace period, counted from the first sighting. */
  pastGrace: boolean;
}

export interface ListOptions {
  config: ResolvedConfig;
  pool: SourcePool;
  relation: Relation;
  category?: ListCategory;
  /** Only the children of this reference (a value, matched as the relation matches keys). */
  ref?: unknown;
  now?: Date;
}

export interface UnresolvedListing {
  /** The complete scan the listing reflects; undefined when the relation was never scanned completely. */
  asOf?: RunRecord;
  children: AsyncGenerator<ListedChild>;
}

const STATE_CATEGORY: Record<UnresolvedState, ListCategory> = {
  missing: 'orphans',
  inactive: 'parentInactive',
};

/**
 * Every child in a category, found without a rescan: the references the last complete scan recorded as
 * unresolved (the first-seen state, in key order, a page at a time), and for each page one query on the
 * child collection by reference, read whole. Memory stays at one page (500 references' children, `_id` and
 * reference only) whatever the backlog. Needs an index on the child
 * field (refused otherwise, with the command to create it, unless collection scans are allowed). Excepted
 * children are left out, as the scan counts them apart.
 */
export async function listUnresolved(options: ListOptions): Promise<UnresolvedListing> {
  const { config, pool, relation } = options;
  const now = options.now ?? new Date();
  const childDb = await pool.db(relation.child.source);
  const children = childDb.collection(relation.child.collection);
  const field = relation.child.field;
  if (
    !config.allowCollectionScan &&
    !(await indexesOf(children)).some((index) => leadingField(index) === field)
  )
    throw new RuntimeError(
      `${relation.name}: listing children by reference needs an index on ${relation.child.collection}.${field}; create it with ${createIndexCommand(childDb.databaseName, relation.child.collection, field)} (or pass --allow-collection-scan)`,
    );
  let key: string | undefined;
  if (options.ref !== undefined) {
    key = canonicalKey(options.ref, relation.keyMatch);
    if (key === undefined)
      throw new UsageError(`--ref: not a valid reference for ${relation.name} (${relation.keyMatch})`);
  }
  const access = { readOnly: true };
  // The tool's own state is read where it is written (the primary), the children where the config says.
  const stateDb = await pool.primaryDb(relation.child.source);
  const firstSeen = new FirstSeenStore(stateDb, relation.name, access);
  const exceptions = await new ExceptionsStore(stateDb, access).index(relation.name, now);
  const asOf = await new RunsStore(stateDb, access).previousScan(relation.name);
  const graceMs = relation.graceDays * DAY_MS;
  const state = options.category === 'parentInactive' ? 'inactive' : options.category ? 'missing' : undefined;

  async function* generate(): AsyncGenerator<ListedChild> {
    let afterKey: string | undefined;
    for (;;) {
      const page = await firstSeen.unresolved(
        { state, key, afterKey, limit: key ? 1 : REFERENCES_PER_QUERY },
        config.maxTimeMS,
      );
      if (page.length === 0) return;
      afterKey = page[page.length - 1].key;
      const byKey = new Map(page.map((entry) => [entry.key, entry]));
      const values = page.flatMap((entry) => valuesForKey(entry.key, relation.keyMatch));
      // Read whole before anything is yielded: the console pages this list at key presses, and a server cursor
      // left idle between them is killed after 10 minutes (cursorTimeoutMillis). The next page continues from
      // the last reference key, so no server cursor is held between pages either.
      const docs = await children
        .find({ [field]: { $in: values } } as Document, {
          projection: { _id: 1, [field]: 1 },
          batchSize: 1000,
          maxTimeMS: config.maxTimeMS,
        })
        .toArray();
      for (const doc of docs) {
        if (exceptions.documentKeys.has(documentKey(doc._id))) continue;
        // The server's `$in` also matches arrays holding the value: the scan calls those invalid, so does the list.
        const reference = referenceAt(doc, field);
        const referenceKey = canonicalKey(reference, relation.keyMatch);
        const entry = referenceKey !== undefined ? byKey.get(referenceKey) : undefined;
        if (!entry || exceptions.referenceKeys.has(entry.key)) continue;
        yield {
          id: doc._id,
          reference,
          category: entry.state ? STATE_CATEGORY[entry.state] : 'unresolved',
          firstSeenAt: entry.firstSeenAt,
          pastGrace: now.getTime() - entry.firstSeenAt.getTime() >= graceMs,
        };
      }
      if (key) return;
    }
  }
  return { asOf, children: generate() };
}
