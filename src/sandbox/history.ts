import type { Document, Timestamp } from 'bson';

/** A cluster time as one comparable number: (t, i), t first, as mongod orders Timestamps. */
export type ClusterTime = bigint;

export function clusterTimeOf(ts: Timestamp): ClusterTime {
  return (BigInt(ts.t) << 32n) | BigInt(ts.i);
}

/** Versions kept per collection at most (mongod's history is bounded by its cache; this by a count). */
export const HISTORY_VERSIONS_KEPT = 200_000;

interface Change {
  idKey: string;
  at: ClusterTime;
  wall: number;
  /** The document as it was just before this change; null when it did not exist. */
  before: Document | null;
}

/**
 * The committed changes of one collection within mongod's snapshot window (`minSnapshotHistoryWindowInSeconds`),
 * in cluster-time order: what a snapshot read at an earlier time needs to see the collection as it was.
 */
export class DocumentHistory {
  private readonly changes: Change[] = [];
  private head = 0;
  /** Each document's changes in the window, oldest first. */
  private readonly byId = new Map<string, Change[]>();
  /** Changes at or before this time were dropped: a snapshot read there is SnapshotTooOld. */
  prunedThrough: ClusterTime = 0n;

  /** Records a committed change at `at` (after every earlier one). */
  record(idKey: string, before: Document | null, at: ClusterTime, windowMs: number): void {
    const wall = Date.now();
    const change = { idKey, at, wall, before };
    this.changes.push(change);
    const own = this.byId.get(idKey);
    if (own) own.push(change);
    else this.byId.set(idKey, [change]);
    this.prune(wall - windowMs);
  }

  /** When the document was last changed by a committed write still in the window. */
  lastChangeOf(idKey: string): ClusterTime | undefined {
    return this.byId.get(idKey)?.at(-1)?.at;
  }

  /** The document as it was at `at` when it changed since (null: absent then); undefined when unchanged since. */
  versionAt(idKey: string, at: ClusterTime): Document | null | undefined {
    const own = this.byId.get(idKey);
    if (!own || own[own.length - 1].at <= at) return undefined;
    for (const change of own) if (change.at > at) return change.before;
    return undefined;
  }

  /** Whether a read at `at` can be answered: its time is within the history kept. */
  covers(at: ClusterTime): boolean {
    return at >= this.prunedThrough;
  }

  /** The documents changed after `at`, each as it was at `at` (null: absent then). */
  asOf(at: ClusterTime): Map<string, Document | null> {
    const versions = new Map<string, Document | null>();
    for (let i = this.firstAfter(at); i < this.changes.length; i++) {
      const change = this.changes[i];
      if (!versions.has(change.idKey)) versions.set(change.idKey, change.before);
    }
    return versions;
  }

  private firstAfter(at: ClusterTime): number {
    let lo = this.head;
    let hi = this.changes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.changes[mid].at <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private prune(cutoffWall: number): void {
    while (
      this.head < this.changes.length &&
      (this.changes[this.head].wall < cutoffWall || this.changes.length - this.head > HISTORY_VERSIONS_KEPT)
    ) {
      const dropped = this.changes[this.head++];
      this.prunedThrough = dropped.at;
      const own = this.byId.get(dropped.idKey);
      own?.shift();
      if (own?.length === 0) this.byId.delete(dropped.idKey);
    }
    if (this.head > 1024 && this.head * 2 > this.changes.length) {
      this.changes.splice(0, this.head);
      this.head = 0;
    }
  }
}
