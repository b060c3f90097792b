import type { Db } from 'mongodb';
import { RuntimeError } from '../errors.ts';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from '../store/access.ts';

export const DEFAULT_LEASE_MS = 60_000;

interface LockDoc {
  _id: string;
  runId: string;
  operator: string;
  host: string;
  pid: number;
  acquiredAt: Date;
  heartbeatAt: Date;
  expiresAt: Date;
}

export interface LockOwner {
  runId: string;
  operator: string;
  host: string;
  pid: number;
}

/** Another run holds the relation. */
export class LockedError extends RuntimeError {}

/**
 * A lease per relation in the child's database: one cleanup at a time, and a holder that died stops
 * blocking once its lease expires. The holder renews it every third of the lease.
 */
export class RelationLock {
  private timer?: NodeJS.Timeout;
  /** Set when a renewal found the lease taken over: the holder must stop. */
  lost = false;

  private constructor(
    private readonly db: Db,
    private readonly relation: string,
    private readonly owner: LockOwner,
    private readonly leaseMs: number,
  ) {}

  private get collection() {
    return this.db.collection<LockDoc>(OWNED_COLLECTIONS.locks);
  }

  static async acquire(
    db: Db,
    relation: string,
    owner: LockOwner,
    access: WriteAccess,
    leaseMs = DEFAULT_LEASE_MS,
  ): Promise<RelationLock> {
    assertWritable(access, `lock relation ${relation}`);
    const lock = new RelationLock(db, relation, owner, leaseMs);
    const now = new Date();
    const fields = {
      ...owner,
      acquiredAt: now,
      heartbeatAt: now,
      expiresAt: new Date(now.getTime() + leaseMs),
    };
    try {
      await lock.collection.insertOne({ _id: relation, ...fields }, { writeConcern: { w: 'majority' } });
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
      const taken = await lock.collection.findOneAndUpdate(
        { _id: relation, expiresAt: { $lt: now } },
        { $set: fields },
        { returnDocument: 'after', writeConcern: { w: 'majority' } },
      );
      if (!taken || taken.runId !== owner.runId) {
        const holder = await lock.collection.findOne({ _id: relation });
        throw new LockedError(
          holder
            ? `relation ${relation} is locked by ${holder.operator} on ${holder.host} (pid ${holder.pid}, run ${holder.runId}) since ${holder.acquiredAt.toISOString()}; the lease ends ${holder.expiresAt.toISOString()} unless renewed`
            : `relation ${relation} is locked by another run`,
        );
      }
    }
    lock.timer = setInterval(() => void lock.renew(), Math.max(1000, leaseMs / 3));
    lock.timer.unref();
    return lock;
  }

  private async renew(): Promise<void> {
    const now = new Date();
    try {
      const result = await this.collection.updateOne(
        { _id: this.relation, runId: this.owner.runId },
        { $set: { heartbeatAt: now, expiresAt: new Date(now.getTime() + this.leaseMs) } },
      );
      if (result.matchedCount === 0) this.lost = true;
    } catch {
      // A missed renewal is retried at the next tick; the lease is long enough for a few.
    }
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.collection.deleteOne({ _id: this.relation, runId: this.owner.runId });
  }
}
