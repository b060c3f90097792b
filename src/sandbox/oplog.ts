import { type Document, Long, Timestamp, type UUID } from 'bson';
import { Collection } from './storage.ts';
import { sameBsonValue } from './typed-values.ts';

/** Entries the oplog keeps (a capped collection: the oldest go first), about a day of a busy demo. */
export const OPLOG_ENTRIES_KEPT = 200_000;

/** One write as mongod's oplog records it (`local.oplog.rs`). */
export type OplogWrite =
  | { op: 'i'; ns: string; ui: UUID; o: Document }
  | { op: 'u'; ns: string; ui: UUID; o: Document; o2: Document }
  | { op: 'd'; ns: string; ui: UUID; o: Document }
  | { op: 'c'; ns: string; ui?: UUID; o: Document; o2?: Document };

/**
 * The replica-set sandbox's oplog: every write it applies, in order, with mongod's entry shape (`ts`, `t`, `v`,
 * `op`, `ns`, `ui`, `o`, `o2`, `wall`), readable as `local.oplog.rs` (mongodump --oplog) and followed by change
 * streams. Updates are recorded as `$v: 2` diffs of top-level fields, replacements as whole documents.
 */
export class Oplog {
  /** The entries, as the collection `local.oplog.rs` (keyed by timestamp; entries have no `_id`). */
  readonly collection = new Collection('oplog.rs', { capped: true, size: 1 << 30 });
  private lastSeconds = 0;
  private increment = 0;
  /** When this oplog began (a restarted sandbox starts a new one): nothing before it can be resumed. */
  readonly began = new Timestamp({ t: Math.floor(Date.now() / 1000), i: 0 });
  /** The newest entry dropped to keep the cap: resuming from before it would miss events. */
  private lastDropped?: Timestamp;
  /**
   * Documents as they were before an update, replacement or delete, by entry, for collections with
   * `changeStreamPreAndPostImages` enabled (mongod keeps them in `config.system.preimages`, not in the entry).
   */
  private readonly preImages = new Map<string, Document>();
  /** The document just after an update or replacement, for the same collections (a post-image as of the event). */
  private readonly postImages = new Map<string, Document>();
  /**
   * The same entries in order, from `head` on: a change stream finds its position by binary search instead of
   * walking the whole oplog at every `getMore`.
   */
  private readonly ordered: Document[] = [];
  private head = 0;
  private readonly waiters = new Set<() => void>();

  /**
   * `majorityLagMs`: how far the majority commit point trails the last applied write (`--majority-lag-ms`),
   * read at every use so tests can change it with setParameter.
   */
  constructor(
    private readonly majorityLagMs: () => number = () => 0,
    /** `changeStreamOptions.preAndPostImages.expireAfterSeconds`: images older than this are gone. */
    private readonly imagesExpireAfter: () => 'off' | number = () => 'off',
    /** How many entries are kept (`sandboxOplogEntries`). */
    private readonly entriesKept: () => number = () => OPLOG_ENTRIES_KEPT,
  ) {}

  /** Whether the images of the write at `ts` have expired (its wall time older than the expiry). */
  private imagesExpired(ts: Timestamp): boolean {
    const expiry = this.imagesExpireAfter();
    if (expiry === 'off') return false;
    const entry = this.collection.docs.get(timestampKey(ts));
    return !entry || Date.now() - (entry.wall as Date).getTime() > expiry * 1000;
  }

  /** The newest entry applied at least `ms` ago (the oldest point kept when none is): a lagging member's view. */
  pointBehind(ms: number): Timestamp {
    if (ms <= 0) return this.latest();
    const cutoff = Date.now() - ms;
    let lo = this.head;
    let hi = this.ordered.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ordered[mid].wall as Date).getTime() <= cutoff) lo = mid + 1;
      else hi = mid;
    }
    return lo > this.head ? (this.ordered[lo - 1].ts as Timestamp) : (this.lastDropped ?? this.began);
  }

  /**
   * The majority commit point: what `w: "majority"` waits for, majority and snapshot reads read at, and change
   * streams deliver up to. The last applied write unless the set is told to lag.
   */
  majorityPoint(): Timestamp {
    return this.pointBehind(this.majorityLagMs());
  }

  /** The wall time of the entry at `ts` (mongod's `wall`), or the time's own seconds when it is not kept. */
  wallOf(ts: Timestamp): Date {
    const entry = this.collection.docs.get(timestampKey(ts));
    return entry ? (entry.wall as Date) : new Date(ts.t * 1000);
  }

  /** A cluster time after every entry so far: strictly increasing, one second granularity as mongod's. */
  nextTimestamp(): Timestamp {
    const seconds = Math.floor(Date.now() / 1000);
    if (seconds > this.lastSeconds) {
      this.lastSeconds = seconds;
      this.increment = 0;
    }
    this.increment++;
    return new Timestamp({ t: this.lastSeconds, i: this.increment });
  }

  /** The newest entry's time, or now when there is none (where a change stream without a token starts). */
  latest(): Timestamp {
    const last = this.ordered.length > this.head ? this.ordered[this.ordered.length - 1] : undefined;
    return (last?.ts as Timestamp | undefined) ?? new Timestamp({ t: Math.floor(Date.now() / 1000), i: 0 });
  }

  append(write: OplogWrite, images: { before?: Document; after?: Document } = {}): Document {
    const ts = this.nextTimestamp();
    const entry: Document = { ts, t: Long.fromNumber(1), v: Long.fromNumber(2), ...write, wall: new Date() };
    const docs = this.collection.docs;
    docs.set(timestampKey(ts), entry);
    this.ordered.push(entry);
    if (images.before) this.preImages.set(timestampKey(ts), images.before);
    if (images.after) this.postImages.set(timestampKey(ts), images.after);
    const kept = this.entriesKept();
    while (docs.size > kept) {
      // The oldest entry, from the ordered queue: a Map iterated from its front after many deletes walks every
      // deleted slot first (V8 keeps them until it rehashes), which made each append O(entries dropped).
      const dropped = this.ordered[this.head];
      const key = timestampKey(dropped.ts as Timestamp);
      this.lastDropped = dropped.ts as Timestamp;
      docs.delete(key);
      this.preImages.delete(key);
      this.postImages.delete(key);
      this.head++;
      // Drop the consumed front now and then, not at every append.
      if (this.head >= kept / 4) {
        this.ordered.splice(0, this.head);
        this.head = 0;
      }
    }
    for (const wake of this.waiters) wake();
    this.waiters.clear();
    return entry;
  }

  /** The entries after `after` (all kept ones when undefined), oldest first. */
  *after(after: Timestamp | undefined): Generator<Document> {
    let lo = this.head;
    let hi = this.ordered.length;
    while (after && lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ordered[mid].ts as Timestamp).compare(after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    // Appends during the walk are taken too (the array only grows at its end while a stream reads it).
    for (let i = lo; i < this.ordered.length; i++) yield this.ordered[i];
  }

  /** The document before the write at `ts`, when its collection keeps pre-images. */
  preImage(ts: Timestamp): Document | undefined {
    if (this.imagesExpired(ts)) return undefined;
    return this.preImages.get(timestampKey(ts));
  }

  /** The document just after the update at `ts`, when its collection keeps pre- and post-images. */
  postImage(ts: Timestamp): Document | undefined {
    if (this.imagesExpired(ts)) return undefined;
    return this.postImages.get(timestampKey(ts));
  }

  /** Whether every entry after `time` is still here: false once one rolled off or before this oplog began. */
  holdsAfter(time: Timestamp): boolean {
    return time.compare(this.began) >= 0 && (!this.lastDropped || time.compare(this.lastDropped) >= 0);
  }

  /** Resolves at the next entry or after `ms`, whichever comes first. */
  waitForEntry(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        resolve();
      }, ms);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.add(wake);
    });
  }
}

function timestampKey(ts: Timestamp): string {
  return `${ts.high.toString().padStart(10, '0')}:${ts.low.toString().padStart(10, '0')}`;
}

/**
 * mongod's `$v: 2` update diff between two versions of a document, field by field at the top level: `i` new
 * fields, `u` changed ones, `d` removed ones.
 */
export function updateDiff(previous: Document, next: Document): Document {
  const diff: Document = {};
  const inserted: Document = {};
  const updated: Document = {};
  const deleted: Document = {};
  for (const [key, value] of Object.entries(next)) {
    if (!(key in previous)) inserted[key] = value;
    else if (!sameBsonValue(previous[key], value)) updated[key] = value;
  }
  for (const key of Object.keys(previous)) if (!(key in next)) deleted[key] = false;
  if (Object.keys(deleted).length) diff.d = deleted;
  if (Object.keys(updated).length) diff.u = updated;
  if (Object.keys(inserted).length) diff.i = inserted;
  return { $v: 2, diff };
}
