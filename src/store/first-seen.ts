import type { AnyBulkWriteOperation, Db } from 'mongodb';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from './access.ts';

interface FirstSeenDoc {
  _id: string;
  relation: string;
  key: string;
  firstSeenAt: Date;
  /** The run that last saw the key unresolved. */
  seenBy?: string;
  /** Written by a scan that has not finished: not yet a first sighting anyone may count from. */
  pending?: boolean;
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
    for (const doc of docs) found.set(doc.key, doc.firstSeenAt);
    return found;
  }

  /**
   * Notes the keys a batch found unresolved: a known key is marked seen by this run, a new one (or one left
   * pending by a scan that never finished) is staged with this run's time.
   */
  async stage(keys: string[], known: Map<string, Date>, runId: string, now: Date): Promise<void> {
    if (keys.length === 0 || this.access.readOnly) return;
    const operations: AnyBulkWriteOperation<FirstSeenDoc>[] = keys.map((key) =>
      known.has(key)
        ? { updateOne: { filter: { _id: this.id(key) }, update: { $set: { seenBy: runId } } } }
        : {
            updateOne: {
              filter: { _id: this.id(key) },
              update: {
                $set: { relation: this.relation, key, firstSeenAt: now, seenBy: runId, pending: true },
              },
              upsert: true,
            },
          },
    );
    await this.collection.bulkWrite(operations, { ordered: false });
  }

  /** After a complete scan: its staged keys become first sightings, and keys it did not see are forgotten. */
  async confirm(runId: string): Promise<void> {
    assertWritable(this.access, 'update first-seen state');
    await this.collection.updateMany(
      { relation: this.relation, seenBy: runId, pending: true },
      { $unset: { pending: '' } },
    );
    await this.collection.deleteMany({ relation: this.relation, seenBy: { $ne: runId } });
  }

  /** After an incomplete scan: what it staged is taken back, so nothing counts from a partial view. */
  async discard(runId: string): Promise<void> {
    if (this.access.readOnly) return;
    await this.collection.deleteMany({ relation: this.relation, seenBy: runId, pending: true });
  }
}
