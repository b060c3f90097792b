import type { AnyBulkWriteOperation, Db, Document, Filter } from 'mongodb';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from './access.ts';
import { FirstSeenIndex } from './first-seen-index.ts';
import { forEachSighting } from './raw-sightings.ts';

/** Documents per write when confirming or discarding a scan's first sightings. */
const PAGE = 10_000;
/** Buffered first-seen writes sent in one bulk write. */
const WRITE_BATCH = 1000;
/** Unseen keys forgotten (or, after a resumed scan, re-checked) per write. */
const FORGET_PAGE = 500;

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
  private buffer: AnyBulkWriteOperation<FirstSeenDoc>[] = [];
  private flushing: Promise<void> = Promise.resolve();

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

  /** Whether `id` is `this.id(key)`, compared in place (no string built per loaded document). */
  private isIdOf(id: unknown, key: string): boolean {
    const { relation } = this;
    return (
      typeof id === 'string' &&
      id.length === relation.length + 1 + key.length &&
      id.startsWith(relation) &&
      id.charCodeAt(relation.length) === 0x3a &&
      id.endsWith(key)
    );
  }

  /**
   * Every confirmed first sighting of the relation, in a compact in-memory index (one cursor): a scan answers
   * from it, and at its end knows which it did not see. A document that fails its checks (not a valid date,
   * no key, an `_id` other than the one the tool writes for its key) is left out: its key counts as just seen
   * (in grace: failing closed) and is staged again.
   */
  async loadIndex(maxTimeMS: number, runId: string): Promise<FirstSeenIndex> {
    const expected = await this.collection.estimatedDocumentCount({ maxTimeMS }).catch(() => 0);
    const index = new FirstSeenIndex(Math.min(expected, 1_000_000));
    // Staged documents are read too (few, normally): another run's are counted, for the end of the scan to
    // remove; this run's own (a resumed scan's first part) are confirmed by it then.
    const cursor = this.collection.find(
      { relation: this.relation },
      { projection: { key: 1, firstSeenAt: 1, state: 1, pending: 1, seenBy: 1 }, batchSize: PAGE, raw: true },
    );
    await forEachSighting(cursor, (doc) => {
      if (doc.pending === true) {
        if (doc.seenBy !== runId) index.stagedElsewhere++;
        return;
      }
      // Its `_id` must be the one the tool writes for its key: the end of the scan forgets by that `_id`.
      if (
        doc.key === undefined ||
        doc.key.length === 0 ||
        doc.firstSeenAtMs === undefined ||
        !this.isIdOf(doc.id, doc.key)
      )
        index.rejected++;
      else
        index.add(
          doc.key,
          new Date(doc.firstSeenAtMs),
          doc.state === 'inactive' || doc.state === 'missing' ? doc.state : undefined,
        );
    });
    return index;
  }

  /**
   * Notes the keys a probe batch found unresolved, in the index, and buffers the writes they need: a key
   * seen for the first time is staged (pending until a complete scan confirms it), a confirmed key whose
   * parent changed between missing and inactive gets its new state; a confirmed key in the same state needs
   * nothing. Buffered writes go in bulk (`flush`), so a scan's round trips follow what changed. Returns the
   * confirmed first sightings among the keys (those of earlier complete scans; a key first seen now has none).
   */
  async note(
    index: FirstSeenIndex,
    keys: string[],
    inactive: Set<string>,
    runId: string,
    now: Date,
  ): Promise<Map<string, Date>> {
    const confirmed = new Map<string, Date>();
    for (const key of keys) {
      const state: UnresolvedState = inactive.has(key) ? 'inactive' : 'missing';
      const held = index.sight(key, state, now);
      if (held === 'fresh') continue;
      if (held !== 'new') {
        confirmed.set(key, held.firstSeenAt);
        if (held.state !== state)
          this.buffer.push({ updateOne: { filter: { _id: this.id(key) }, update: { $set: { state } } } });
        continue;
      }
      this.buffer.push({
        updateOne: {
          filter: { _id: this.id(key) },
          update: {
            $set: { relation: this.relation, key, firstSeenAt: now, seenBy: runId, pending: true, state },
          },
          upsert: true,
        },
      });
    }
    if (this.buffer.length >= WRITE_BATCH) await this.flush();
    return confirmed;
  }

  /** Sends the buffered writes (one bulk write at a time). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.access.readOnly) {
        this.buffer = [];
        return;
      }
      while (this.buffer.length) {
        const writes = this.buffer.splice(0, WRITE_BATCH);
        await this.collection.bulkWrite(writes, { ordered: false });
      }
    });
    return this.flushing;
  }

  /**
   * After a complete scan: its staged keys become first sightings, and the confirmed keys it did not see are
   * forgotten — named by the index (which kept their text when it loaded them), so the keys it did see are
   * never written and the collection is not read again; only when some stored document failed its checks at
   * loading is everything read once more, to forget that one too. A scan resumed by another
   * process did not see the first part itself: a key it did not see is forgotten only when its parent is back
   * (`stillUnresolved` says which are not), never because the other process's sightings are unknown here.
   */
  async confirmScan(
    runId: string,
    index: FirstSeenIndex,
    maxTimeMS: number,
    stillUnresolved?: (keys: string[]) => Promise<Set<string>>,
  ): Promise<void> {
    assertWritable(this.access, 'update first-seen state');
    await this.flush();
    // What this scan staged, named by the index (a page of ids per write; the filter keeps it to this run's).
    let staged: string[] = [];
    const confirm = async () => {
      const ids = staged;
      staged = [];
      await this.collection.updateMany(
        { _id: { $in: ids }, seenBy: runId, pending: true },
        { $unset: { pending: '' } },
        { maxTimeMS },
      );
    };
    if (stillUnresolved) {
      // Resumed: the process that began the scan staged keys under the same run that this index never held.
      await this.inPages({ relation: this.relation, seenBy: runId, pending: true }, (ids) =>
        this.collection.updateMany({ _id: { $in: ids } }, { $unset: { pending: '' } }, { maxTimeMS }),
      );
    } else {
      for (const key of index.staged()) {
        staged.push(this.id(key));
        if (staged.length === PAGE) await confirm();
      }
      if (staged.length) await confirm();
    }
    // Forgotten outright: what counts for nobody (left pending by a scan that never finished, or without a key).
    // Re-checked first when the scan was resumed: confirmed keys this process did not see.
    let unseen: { id: unknown; key: string }[] = [];
    let dropped: unknown[] = [];
    const forget = async () => {
      const page = unseen;
      const ids = dropped;
      unseen = [];
      dropped = [];
      const keep = stillUnresolved ? await stillUnresolved(page.map((doc) => doc.key)) : new Set<string>();
      ids.push(...page.filter((doc) => !keep.has(doc.key)).map((doc) => doc.id));
      if (ids.length) await this.collection.deleteMany({ _id: { $in: ids as string[] } }, { maxTimeMS });
    };
    // Another run's staged keys count for nobody (it never finished): one delete on the server, when the
    // index met some at loading (a scan with nothing to remove sends no write at all).
    if (index.stagedElsewhere > 0 && index.rejected === 0)
      await this.collection.deleteMany(
        { relation: this.relation, pending: true, seenBy: { $ne: runId } },
        { maxTimeMS },
      );
    if (index.rejected === 0) {
      // The confirmed keys this scan did not see, named by the index: nothing is read again.
      for (const key of index.unseenConfirmed()) {
        unseen.push({ id: this.id(key), key });
        if (unseen.length >= FORGET_PAGE) await forget();
      }
    } else {
      // Stored documents failed their checks at loading: read them all (raw), to forget those too.
      const all = this.collection.find(
        { relation: this.relation },
        { projection: { key: 1, pending: 1, seenBy: 1 }, batchSize: PAGE, raw: true },
      );
      await forEachSighting(all, (doc) => {
        if (doc.id === undefined) return;
        // Not the tool's document for its key (another `_id`): it never counts, so it goes.
        if (
          (doc.pending === true && doc.seenBy !== runId) ||
          doc.key === undefined ||
          !this.isIdOf(doc.id, doc.key)
        )
          dropped.push(doc.id);
        else if (!index.seen(doc.key)) unseen.push({ id: doc.id, key: doc.key });
        return unseen.length + dropped.length >= FORGET_PAGE ? forget() : undefined;
      });
    }
    if (unseen.length + dropped.length) await forget();
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
    for (const doc of docs) if (validSighting(doc)) found.set(doc.key, doc.firstSeenAt);
    return found;
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

/** A first-seen document read back is input: a string key and a valid date, or it is not a sighting. */
function validSighting(doc: Partial<FirstSeenDoc>): doc is FirstSeenDoc {
  return (
    typeof doc.key === 'string' &&
    doc.key.length > 0 &&
    doc.firstSeenAt instanceof Date &&
    !Number.isNaN(doc.firstSeenAt.getTime())
  );
}
