import { Timestamp } from 'bson';
import type { AnyBulkWriteOperation, Db, Document, MongoClient, ResumeToken } from 'mongodb';
import { z } from 'zod';
import { OWNED_COLLECTIONS } from '../store/access.ts';
import type { CategoryCounts } from './scan.ts';

/**
 * The live-count watcher's saved state, cheap to keep (in `orphan_cleanup_watch`, the child's database):
 *
 * - one small **head** document per relation (`_id`: the relation's name): counts, both stream positions, the
 *   start snapshot's time, the generation of its key documents and how many there are;
 * - one **key** document per reference whose parent is missing or inactive, or whose recent moves child events
 *   may still need (`_id`: relation, generation and key, separated by U+0001, which names cannot hold).
 *
 * A save writes the head and only the keys that changed since the last save, in one transaction (change
 * streams need a replica set or a sharded cluster, so transactions are there). After a new start every key is
 * new: they are written as a new generation in pages outside any transaction, then the head names that
 * generation (the one write that makes it current), then the old generation is deleted. Read back, everything
 * is checked (a schema per document, the key count against the head): anything malformed is a lost state.
 */

export type KeyState = 'active' | 'missing' | 'inactive';
export type Move = { at: Timestamp; before: KeyState };

export interface KeyEntry {
  state?: 'missing' | 'inactive';
  moves?: Move[];
}

export interface WatchHead {
  counts: CategoryCounts;
  snapshotAt: Timestamp;
  childToken: ResumeToken;
  parentToken: ResumeToken;
}

export interface LoadedWatch extends WatchHead {
  keys: Map<string, KeyEntry>;
}

/** Key documents per write when a whole generation is written. */
const PAGE = 5000;
const SEPARATOR = '\u0001';

const count = z.number().int().nonnegative();
/** A BSON Timestamp (by its `_bsontype`: the driver's bson and this package's may be different copies). */
const timestamp = z.custom<Timestamp>(
  (value) => (value as { _bsontype?: unknown } | null)?._bsontype === 'Timestamp',
  'expected a Timestamp',
);
const token = z.object({ _data: z.string().regex(/^[0-9a-fA-F]+$/) }).passthrough();
const headSchema = z.object({
  _id: z.string(),
  version: z.literal(2),
  generation: z.number().int().nonnegative(),
  keys: count,
  counts: z
    .object({ ok: count, orphans: count, parentInactive: count, invalidReference: count, excepted: count })
    .strict(),
  snapshotAt: timestamp,
  childToken: token,
  parentToken: token,
  savedAt: z.date(),
});
const keySchema = z
  .object({
    _id: z.string(),
    relation: z.string(),
    generation: z.number().int().nonnegative(),
    key: z.string().min(1),
    state: z.enum(['missing', 'inactive']).optional(),
    moves: z
      .array(z.object({ at: timestamp, before: z.enum(['active', 'missing', 'inactive']) }).strict())
      .max(10_000)
      .optional(),
  })
  .strict();

type StateDoc = { _id: string } & Document;

/** The saved state failed its checks: treated as lost (a new snapshot, said once). */
export class MalformedWatchState extends Error {}

export class WatchStateStore {
  private generation = 0;

  constructor(
    private readonly db: Db,
    private readonly client: MongoClient,
    private readonly relation: string,
  ) {}

  private get collection() {
    return this.db.collection<StateDoc>(OWNED_COLLECTIONS.watch);
  }

  private prefix(generation: number): string {
    return `${this.relation}${SEPARATOR}${generation}${SEPARATOR}`;
  }

  private keyId(generation: number, key: string): string {
    return `${this.prefix(generation)}${key}`;
  }

  /** Every key document of the relation, whatever its generation. */
  private everyKey(): Document {
    return {
      _id: {
        $gt: `${this.relation}${SEPARATOR}`,
        $lt: `${this.relation}${String.fromCharCode(SEPARATOR.charCodeAt(0) + 1)}`,
      },
      relation: this.relation,
    };
  }

  /** The saved state, or undefined when there is none; `MalformedWatchState` when it fails its checks. */
  async load(maxTimeMS: number): Promise<LoadedWatch | undefined> {
    const raw = await this.collection.findOne({ _id: this.relation }, { maxTimeMS });
    if (!raw) return undefined;
    const head = headSchema.safeParse(raw);
    if (!head.success)
      throw new MalformedWatchState(`its head fails its checks (${describeIssue(head.error)})`);
    const { generation } = head.data;
    const keys = new Map<string, KeyEntry>();
    const prefix = this.prefix(generation);
    const cursor = this.collection.find(
      { _id: { $gte: prefix, $lt: `${prefix}\uffff` }, relation: this.relation, generation },
      { batchSize: PAGE },
    );
    for await (const doc of cursor) {
      const parsed = keySchema.safeParse(doc);
      if (!parsed.success || parsed.data._id !== this.keyId(generation, parsed.data.key))
        throw new MalformedWatchState(
          `a key document fails its checks (${parsed.success ? 'its _id does not match its key' : describeIssue(parsed.error)})`,
        );
      if (!parsed.data.state && !parsed.data.moves?.length)
        throw new MalformedWatchState('a key document holds neither a state nor moves');
      keys.set(parsed.data.key, {
        ...(parsed.data.state ? { state: parsed.data.state } : {}),
        ...(parsed.data.moves?.length ? { moves: parsed.data.moves } : {}),
      });
    }
    if (keys.size !== head.data.keys)
      throw new MalformedWatchState(
        `the head counts ${head.data.keys} key documents, ${keys.size} were found`,
      );
    this.generation = generation;
    const { counts, snapshotAt, childToken, parentToken } = head.data;
    return { counts, snapshotAt, childToken, parentToken, keys };
  }

  private head(head: WatchHead, generation: number, keys: number): Document {
    return {
      version: 2,
      generation,
      keys,
      counts: head.counts,
      snapshotAt: head.snapshotAt,
      childToken: head.childToken,
      parentToken: head.parentToken,
      savedAt: new Date(),
    };
  }

  private keyDoc(generation: number, key: string, entry: KeyEntry): StateDoc {
    return {
      _id: this.keyId(generation, key),
      relation: this.relation,
      generation,
      key,
      ...(entry.state ? { state: entry.state } : {}),
      ...(entry.moves?.length ? { moves: entry.moves } : {}),
    };
  }

  /**
   * Saves the head and the keys that changed (`undefined`: nothing to keep for it any more), in one
   * transaction: what a restart loads is always one consistent save.
   */
  async saveChanges(
    head: WatchHead,
    changed: Map<string, KeyEntry | undefined>,
    keyCount: number,
    maxTimeMS: number,
  ): Promise<void> {
    const generation = this.generation;
    const writes = [...changed].map(
      ([key, entry]): AnyBulkWriteOperation<StateDoc> =>
        entry
          ? {
              replaceOne: {
                filter: { _id: this.keyId(generation, key) },
                replacement: this.keyDoc(generation, key, entry),
                upsert: true,
              },
            }
          : { deleteOne: { filter: { _id: this.keyId(generation, key) } } },
    );
    const session = this.client.startSession();
    try {
      await session.withTransaction(
        async () => {
          if (writes.length) await this.collection.bulkWrite(writes, { session, ordered: true });
          await this.collection.replaceOne({ _id: this.relation }, this.head(head, generation, keyCount), {
            session,
            upsert: true,
          });
        },
        { maxCommitTimeMS: maxTimeMS },
      );
    } finally {
      await session.endSession();
    }
  }

  /**
   * Saves every key as a new generation (after a new start): written in pages, made current by the head,
   * then the older generations deleted. A crash before the head leaves the previous save current.
   */
  async saveAll(head: WatchHead, keys: Map<string, KeyEntry>, maxTimeMS: number): Promise<void> {
    const current = await this.collection.findOne(
      { _id: this.relation },
      { projection: { generation: 1 }, maxTimeMS },
    );
    const generation =
      Math.max(this.generation, typeof current?.generation === 'number' ? current.generation : 0) + 1;
    let page: StateDoc[] = [];
    const flush = async () => {
      if (page.length) await this.collection.insertMany(page, { ordered: false });
      page = [];
    };
    for (const [key, entry] of keys) {
      if (!entry.state && !entry.moves?.length) continue;
      page.push(this.keyDoc(generation, key, entry));
      if (page.length === PAGE) await flush();
    }
    await flush();
    const written = [...keys.values()].filter((entry) => entry.state || entry.moves?.length).length;
    await this.collection.replaceOne({ _id: this.relation }, this.head(head, generation, written), {
      upsert: true,
    });
    this.generation = generation;
    await this.collection.deleteMany({ ...this.everyKey(), generation: { $ne: generation } }, { maxTimeMS });
  }

  /** Forgets the relation's saved state: its head first (so no half-deleted state is ever loaded), then its keys. */
  async forget(maxTimeMS: number): Promise<void> {
    await this.collection.deleteOne({ _id: this.relation });
    await this.collection.deleteMany(this.everyKey(), { maxTimeMS });
  }
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || 'document'}: ${issue.message}` : 'invalid';
}

/**
 * The cluster time a resume token starts with, when it has mongod's layout (`_data` hex: 0x82, then the
 * timestamp's 8 bytes big-endian); undefined otherwise (nothing is pruned on an unknown layout).
 */
export function tokenTime(token: ResumeToken | undefined): Timestamp | undefined {
  const data = (token as { _data?: unknown } | undefined)?._data;
  if (typeof data !== 'string' || !/^82[0-9a-fA-F]{16}/.test(data)) return undefined;
  return new Timestamp({
    t: Number.parseInt(data.slice(2, 10), 16),
    i: Number.parseInt(data.slice(10, 18), 16),
  });
}
