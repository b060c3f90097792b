import type { Db, Document, Filter } from 'mongodb';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from './access.ts';

/** Documents per write when confirming or discarding a scan's first sightings. */
const PAGE = 10_000;

interface FirstSeenDoc {
  _id: string;
  relation: string;
  key: string;
  firstSeenAt: Date;
  /** The run that last saw the key unresolved. */
  seenBy?: string;
  /** Written by a scan that has not finished: not yet a first sighting anyone may count from. */
  pending?: boolean;
  /** What the parent was when last seen: gone (`missing`) or there but deleted or inactive (`inactive`). */
  state?: UnresolvedState;
}

export type UnresolvedState = 'missing' | 'inactive';

/** A reference the last complete scan saw unresolved. */
export interface UnresolvedReference {
  key: string;
  state?: UnresolvedState;
  firstSeenAt: Date;
}

/**
 * When the tool first saw each orphaned or inactive reference of a relation: the grace period of a parent
 * without a soft-delete timestamp counts from here. Read and written a probe batch at a time, so a scan's
 * memory does not grow with the orphan backlog: keys a scan sees for the first time are staged as pending,
 * and only a complete scan confirms them and forgets the keys it no longer saw. Never written read-only.
 */
export class FirstSeenStore {
  constructor(
    private readonly db: Db,
    private readonly relation: string,
    private readonly access: WriteAccess,
  ) {}

  private get collection() {
    return this.db.collection<FirstSeenDoc>(OWNED_COLLECTIONS.firstSeen);
  }

  private id(key: string): string {
    return `${this.relation}:${key}`;
  }

  /**
   * Every confirmed first sighting of the relation, when there are at most `limit` (then a scan answers from
   * memory, without a query per probe batch); undefined when there are more.
   */
  async loadIfAtMost(limit: number, maxTimeMS: number): Promise<Map<string, Date> | undefined> {
    const confirmed = { relation: this.relation, pending: { $ne: true } };
    if ((await this.collection.countDocuments(confirmed, { limit: limit + 1, maxTimeMS })) > limit)
      return undefined;
    const seen = new Map<string, Date>();
    for await (const doc of this.collection.find(confirmed, { projection: { key: 1, firstSeenAt: 1 } }))
      seen.set(doc.key, doc.firstSeenAt);
    return seen;
  }

  /** First sightings confirmed by complete scans, for these keys. */
  async lookup(keys: string[], maxTimeMS: number): Promise<Map<string, Date>> {
    const found = new Map<string, Date>();
    if (keys.length === 0) return found;
    const docs = await this.collection
      .find(
        { _id: { $in: keys.map((key) => this.id(key)) }, pending: { $ne: true } },
        { projection: { key: 1, firstSeenAt: 1 }, batchSize: keys.length, maxTimeMS },
      )
      .toArray();
    // Read back from a collection scan-role users can write: a first sighting that is not a valid date is not
    // one (the key counts as just seen, so in grace: failing closed).
    for (const doc of docs)
      if (
        doc.firstSeenAt instanceof Date &&
        !Number.isNaN(doc.firstSeenAt.getTime()) &&
        typeof doc.key === 'string'
      )
        found.set(doc.key, doc.firstSeenAt);
    return found;
  }

  /**
   * Notes the keys a batch found unresolved: a known key is marked seen by this run, a new one (or one left
   * pending by a scan that never finished) is staged with this run's time.
   */
  async stage(
    keys: string[],
    known: Map<string, Date>,
    runId: string,
    now: Date,
    inactive: Set<string> = new Set(),
  ): Promise<void> {
    if (keys.length === 0 || this.access.readOnly) return;
    const stateOf = (key: string): UnresolvedState => (inactive.has(key) ? 'inactive' : 'missing');
    // Known keys: one write per state for the batch. New ones (or left pending by a scan that never finished): upserted.
    for (const state of ['missing', 'inactive'] as const) {
      const seen = keys.filter((key) => known.has(key) && stateOf(key) === state).map((key) => this.id(key));
      if (seen.length)
        await this.collection.updateMany({ _id: { $in: seen } }, { $set: { seenBy: runId, state } });
    }
    const fresh = keys.filter((key) => !known.has(key));
    if (fresh.length)
      await this.collection.bulkWrite(
        fresh.map((key) => ({
          updateOne: {
            filter: { _id: this.id(key) },
            update: {
              $set: {
                relation: this.relation,
                key,
                firstSeenAt: now,
                seenBy: runId,
                pending: true,
                state: stateOf(key),
              },
            },
            upsert: true,
          },
        })),
        { ordered: false },
      );
  }

  /**
   * After a complete scan: its staged keys become first sightings, and keys it did not see are forgotten. A
   * page of ids at a time, so no single write outlasts the operation limits however large the backlog.
   */
  async confirm(runId: string, maxTimeMS: number): Promise<void> {
    assertWritable(this.access, 'update first-seen state');
    await this.inPages({ relation: this.relation, seenBy: runId, pending: true }, (ids) =>
      this.collection.updateMany({ _id: { $in: ids } }, { $unset: { pending: '' } }, { maxTimeMS }),
    );
    await this.inPages({ relation: this.relation, seenBy: { $ne: runId } }, (ids) =>
      this.collection.deleteMany({ _id: { $in: ids } }, { maxTimeMS }),
    );
  }

  /**
   * The references the last complete scan saw unresolved, in key order, a page at a time from after `afterKey`
   * (`state` narrows to missing or inactive parents; entries from before states were recorded match either).
   */
  async unresolved(
    options: { state?: UnresolvedState; key?: string; afterKey?: string; limit: number },
    maxTimeMS: number,
  ): Promise<UnresolvedReference[]> {
    const filter: Filter<FirstSeenDoc> = { relation: this.relation, pending: { $ne: true } };
    if (options.key !== undefined) filter._id = this.id(options.key);
    else if (options.afterKey !== undefined) filter._id = { $gt: this.id(options.afterKey) };
    if (options.state) (filter as Document).state = { $in: [options.state, null] };
    const docs = await this.collection
      .find(filter, { projection: { key: 1, state: 1, firstSeenAt: 1 }, maxTimeMS })
      .sort({ _id: 1 })
      .limit(options.limit)
      .toArray();
    return docs.map((doc) => ({
      key: doc.key,
      firstSeenAt: doc.firstSeenAt,
      ...(doc.state ? { state: doc.state } : {}),
    }));
  }

  /** After an incomplete scan: what it staged is taken back, so nothing counts from a partial view. */
  async discard(runId: string, maxTimeMS: number): Promise<void> {
    if (this.access.readOnly) return;
    await this.inPages({ relation: this.relation, seenBy: runId, pending: true }, (ids) =>
      this.collection.deleteMany({ _id: { $in: ids } }, { maxTimeMS }),
    );
  }

  /**
   * Applies `write` to the matching documents a page of `_id`s at a time, read from one cursor (writes that
   * leave `_id` alone neither repeat nor skip a document of it). The cursor has no maxTimeMS (mongod counts it
   * over its whole life); each write has.
   */
  private async inPages(
    filter: Filter<FirstSeenDoc>,
    write: (ids: string[]) => Promise<unknown>,
  ): Promise<void> {
    let page: string[] = [];
    for await (const doc of this.collection.find(filter, { projection: { _id: 1 }, batchSize: PAGE })) {
      page.push(doc._id);
      if (page.length === PAGE) {
        await write(page);
        page = [];
      }
    }
    if (page.length) await write(page);
  }
}
