import { escapeForTerminal } from '../terminal-text.ts';
import type { ClientSession, Db } from 'mongodb';
import { RuntimeError } from '../errors.ts';
import { serverClock } from '../mongo/capabilities.ts';
import { DEFAULT_MAX_TIME_MS, majorityWrite } from '../mongo/timeouts.ts';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from '../store/access.ts';

export const DEFAULT_LEASE_MS = 60_000;

interface LockDoc {
  _id: string;
  runId: string;
  operator: string;
  host: string;
  pid: number;
  /** Raised by every acquisition: the delete checks it, so a holder whose lease was taken over cannot delete. */
  fence: number;
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

/** The lease was taken over (it expired while this run was stalled): this run must not delete. */
export class LockLostError extends RuntimeError {}

/**
 * A lease per relation in the child's database: one cleanup at a time, and a holder that died stops
 * blocking once its lease expires. The holder renews it every third of the lease. Times are the server's
 * (two hosts' clocks never decide a takeover), and each acquisition raises a fencing token that the delete
 * checks.
 */
export class RelationLock {
  private timer?: NodeJS.Timeout;
  /** Set when a renewal found the lease taken over: the holder must stop. */
  lost = false;
  private fence = 0;

  private constructor(
    private readonly db: Db,
    private readonly relation: string,
    private readonly owner: LockOwner,
    private readonly leaseMs: number,
    /** Server time minus client time, measured at acquisition. */
    private readonly offsetMs: number,
  ) {}

  private serverNow(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  private get collection() {
    return this.db.collection<LockDoc>(OWNED_COLLECTIONS.locks);
  }

  static async acquire(
    db: Db,
    relation: string,
    owner: LockOwner,
    access: WriteAccess,
    {
      leaseMs = DEFAULT_LEASE_MS,
      wtimeoutMS = DEFAULT_MAX_TIME_MS,
    }: { leaseMs?: number; wtimeoutMS?: number } = {},
  ): Promise<RelationLock> {
    assertWritable(access, `lock relation ${relation}`);
    const { now, offsetMs } = await serverClock(db.client);
    const lock = new RelationLock(db, relation, owner, leaseMs, offsetMs);
    const fields = {
      ...owner,
      acquiredAt: now,
      heartbeatAt: now,
      expiresAt: new Date(now.getTime() + leaseMs),
    };
    const writeConcern = majorityWrite(wtimeoutMS);
    try {
      await lock.collection.insertOne({ _id: relation, ...fields, fence: 1 }, { writeConcern });
      lock.fence = 1;
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
      const taken = await lock.collection.findOneAndUpdate(
        { _id: relation, expiresAt: { $lt: now } },
        { $set: fields, $inc: { fence: 1 } },
        { returnDocument: 'after', writeConcern },
      );
      if (taken && taken.runId === owner.runId) lock.fence = taken.fence;
      else {
        const holder = await lock.collection.findOne({ _id: relation });
        throw new LockedError(
          holder ? describeHolder(relation, holder) : `relation ${relation} is locked by another run`,
        );
      }
    }
    lock.timer = setInterval(() => void lock.renew(), Math.max(1000, leaseMs / 3));
    lock.timer.unref();
    return lock;
  }

  /**
   * Fails unless this run still holds the lease with its fencing token, with at least a third of the lease
   * left: a takeover needs the lease expired, so none can happen before this batch's delete is done. Inside
   * the delete's transaction the check reads the same snapshot the delete writes in. (A write to the lock
   * there would hold the lock document until the transaction ends, which after a failed commit is up to a
   * minute on mongod, and block its release.)
   */
  async assertHeld(session?: ClientSession): Promise<void> {
    const held = await this.collection.countDocuments(
      {
        _id: this.relation,
        runId: this.owner.runId,
        fence: this.fence,
        expiresAt: { $gt: new Date(this.serverNow().getTime() + this.leaseMs / 3) },
      },
      { limit: 1, ...(session ? { session } : {}) },
    );
    if (held !== 1) {
      this.lost = true;
      throw new LockLostError(
        `lost the lock on ${this.relation} (its lease ran out or another run took it over); this batch was not deleted`,
      );
    }
  }

  private async renew(): Promise<void> {
    const now = this.serverNow();
    try {
      const result = await this.collection.updateOne(
        { _id: this.relation, runId: this.owner.runId, fence: this.fence },
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

/**
 * Who holds a relation's lock, from its lock document — read back from a collection others can write, so
 * checked: text fields escaped for the terminal, times that are not dates said so, never a crash on a forged
 * or damaged document.
 */
export function describeHolder(relation: string, holder: Record<string, unknown>): string {
  const text = (value: unknown) =>
    typeof value === 'string' && value.length > 0 ? escapeForTerminal(value.slice(0, 200)) : '(unreadable)';
  const time = (value: unknown) =>
    value instanceof Date && !Number.isNaN(value.getTime()) ? value.toISOString() : '(not a date)';
  const pid =
    typeof holder.pid === 'number' && Number.isInteger(holder.pid) ? String(holder.pid) : '(unreadable)';
  const valid =
    holder.expiresAt instanceof Date &&
    !Number.isNaN(holder.expiresAt.getTime()) &&
    holder.acquiredAt instanceof Date;
  return `relation ${relation} is locked by ${text(holder.operator)} on ${text(holder.host)} (pid ${pid}, run ${text(holder.runId)}) since ${time(holder.acquiredAt)}; ${
    valid
      ? `the lease ends ${time(holder.expiresAt)} unless renewed`
      : `its lock document fails its checks (no valid lease end): it never expires by itself; if no run holds it, remove it: db.orphan_cleanup_locks.deleteOne({_id: '${escapeForTerminal(relation)}'})`
  }`;
}
