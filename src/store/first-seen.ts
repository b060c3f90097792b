import type { Db } from 'mongodb';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from './access.ts';

interface FirstSeenDoc {
  _id: string;
  relation: string;
  key: string;
  firstSeenAt: Date;
}

const WRITE_BATCH = 1000;

/**
 * When the tool first saw each orphaned or inactive reference of a relation: the grace period of a parent
 * without a soft-delete timestamp counts from here. Written only after complete scans, never read-only.
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

  async load(): Promise<Map<string, Date>> {
    const seen = new Map<string, Date>();
    const cursor = this.collection.find(
      { relation: this.relation },
      { projection: { key: 1, firstSeenAt: 1 } },
    );
    for await (const doc of cursor) seen.set(doc.key, doc.firstSeenAt);
    return seen;
  }

  /** Records keys seen for the first time and forgets keys whose parent came back. */
  async update(
    previous: Map<string, Date>,
    current: Set<string>,
    now: Date,
  ): Promise<{ added: number; removed: number }> {
    assertWritable(this.access, 'update first-seen state');
    const added = [...current].filter((key) => !previous.has(key));
    const removed = [...previous.keys()].filter((key) => !current.has(key));
    for (let i = 0; i < added.length; i += WRITE_BATCH) {
      const docs = added
        .slice(i, i + WRITE_BATCH)
        .map((key) => ({ _id: `${this.relation}:${key}`, relation: this.relation, key, firstSeenAt: now }));
      await this.collection
        .insertMany(docs, { ordered: false })
        .catch((error: { code?: number; writeErrors?: unknown }) => {
          // Another scan recorded the same key first: its (earlier) timestamp stands.
          if (error.code !== 11000) throw error;
        });
    }
    for (let i = 0; i < removed.length; i += WRITE_BATCH) {
      const ids = removed.slice(i, i + WRITE_BATCH).map((key) => `${this.relation}:${key}`);
      await this.collection.deleteMany({ _id: { $in: ids } });
    }
    return { added: added.length, removed: removed.length };
  }
}
