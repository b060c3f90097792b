// Over 300 lines: the watcher's one state machine (bootstrap, child events, parent events, persistence) reads best whole.
import { EJSON, Timestamp } from 'bson';
import type {
  ChangeStream,
  ChangeStreamDocument,
  Collection,
  Db,
  Document,
  MongoClient,
  ResumeToken,
} from 'mongodb';
import type { Relation, ResolvedConfig } from '../config/load.ts';
import { canonicalKey, referenceAt, valuesForKey } from '../mongo/keys.ts';
import { SilentSourceError } from '../mongo/liveness.ts';
import { valuesAtPath } from '../mongo/paths.ts';
import { redact } from '../mongo/redact.ts';
import type { SourcePool } from '../mongo/sources.ts';
import type { WriteAccess } from '../store/access.ts';
import { documentKey, type ExceptionIndex, ExceptionsStore } from '../store/exceptions.ts';
import { createIndexCommand, indexesOf, leadingField } from './parent-checks.ts';
import { ParentProbe } from './probe.ts';
import type { ScanReport } from './run-scan.ts';
import type { CategoryCounts } from './scan.ts';
import {
  type KeyEntry,
  type KeyState,
  MalformedWatchState,
  tokenTime,
  WatchStateStore,
} from './watch-state.ts';

export type { KeyState } from './watch-state.ts';

/**
 * Live orphan counts between full scans, from change streams on a relation's child and parent collections.
 *
 * Parent and child live on different clusters, so their events have no common order. The watcher keeps
 * only the references whose parent is missing or inactive (`unresolved`), and moves a reference's children
 * between categories with a **snapshot count** (`readConcern: snapshot`) taken on the child's cluster at a
 * time W. Child events are in that cluster's clock: an event at t ≤ W is already in the count, so it is
 * applied to the category the reference had before the move; an event after W to the one it has since.
 * The start is a snapshot too: one `$group` of the child collection by reference at W0, with the child
 * stream opened before it (events up to W0 are in the snapshot and skipped). Parent events re-probe their
 * keys now (the latest state wins, so their order does not matter). Counts therefore equal a full scan's
 * once the streams are caught up; each full scan is compared (the drift check) and the watcher starts
 * again from a new snapshot when they differ.
 *
 * Bounds: change-stream getMores wait `maxAwaitTimeMS` (500 ms); every query carries the config's maxTimeMS.
 * The start's `$group` must finish within the server's `minSnapshotHistoryWindowInSeconds` (300 s by
 * default) or it fails with SnapshotTooOld and the relation stays on scan figures. Deletes need the child
 * collection's pre-images (`changeStreamPreAndPostImages`); a parent keyed by a field other than `_id` needs
 * the parent's too. Exception changes made while watching count from the next scan (which restarts it).
 */

/** How long a change stream's getMore waits for events before answering empty. */
export const WATCH_AWAIT_MS = 500;
/** Unresolved references kept in memory per relation; above this the relation stays on scan figures. */
export const MAX_UNRESOLVED = 200_000;
/** Events applied before the state is saved at most this often (and on stop). */
const SAVE_INTERVAL_MS = 1000;
/**
 * A stream position that moved with no event applied (an idle collection: only the post-batch token
 * advances) is saved at most this often: resuming from an older one replays nothing that counts.
 */
const POSITION_SAVE_INTERVAL_MS = 60_000;
/** The start snapshot's `$group` may take this long unless the server's window says otherwise: mongod's default minSnapshotHistoryWindowInSeconds. */
export const START_SNAPSHOT_TIMEOUT_MS = 300_000;
/** References probed or counted per query. */
const KEYS_PER_QUERY = 500;
/** The first pause before a watcher tries again after a failure, doubling up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 5000;
const RETRY_MAX_MS = 60_000;
/** Change events applied as one batch at most. */
const MAX_BATCH = 1000;

/** The watcher's parent probes read majority-committed data: its events are, and a write seen with `local` and
 * later rolled back would never be corrected. */
const MAJORITY = { level: 'majority' } as const;

/** Server errors of a failover or shutdown: the start is tried again, never given up on for them. */
const TRANSIENT_CODES = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

/** A failure that says nothing about the relation: a failover, a network error, a source given up on for silence. */
function isTransient(error: unknown): boolean {
  if (error instanceof SilentSourceError) return true;
  const name = (error as { name?: string })?.name ?? '';
  if (/Network|ServerSelection|TopologyClosed|NotConnected|PoolClosed/.test(name)) return true;
  const code = (error as { code?: number })?.code;
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** mongod's BSONObjectTooLarge: a change event over 16 MB (after the stream's pipeline) fails the getMore. */
const EVENT_TOO_LARGE = 10334;

/** Events that add, remove or replace a whole document; the DDL events after them end a stream. */
const DATA_EVENTS = ['insert', 'delete', 'replace'];
const ENDING_EVENTS = ['drop', 'rename', 'dropDatabase', 'invalidate'];

function rootOf(path: string): string {
  return path.split('.')[0];
}

/**
 * The top-level fields a filter reads, or undefined when it cannot be told (`$expr`, `$where`, …: every
 * update then counts).
 */
function filterRoots(filter: Document): string[] | undefined {
  const roots: string[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' || key === '$or' || key === '$nor') {
      if (!Array.isArray(value)) return undefined;
      for (const part of value) {
        const inner = filterRoots(part as Document);
        if (!inner) return undefined;
        roots.push(...inner);
      }
    } else if (key.startsWith('$')) return undefined;
    else roots.push(rootOf(key));
  }
  return roots;
}

/**
 * A change-stream pipeline that keeps only what the watcher reads: data events, updates only when they touch
 * one of `roots` (by top-level field; any update when roots is undefined), and of the images only `keep`
 * (the event's `_id`, its resume token, always stays). Events stay small whatever the documents hold.
 */
function eventPipeline(roots: string[] | undefined, keep: string[]): Document[] {
  const touched = roots && {
    $gt: [
      {
        $size: {
          $filter: {
            input: {
              $concatArrays: [
                { $map: { input: { $objectToArray: '$updateDescription.updatedFields' }, in: '$$this.k' } },
                { $ifNull: ['$updateDescription.removedFields', []] },
              ],
            },
            cond: { $in: [{ $arrayElemAt: [{ $split: ['$$this', '.'] }, 0] }, [...new Set(roots)]] },
          },
        },
      },
      0,
    ],
  };
  return [
    {
      $match: {
        $or: [
          { operationType: { $in: [...DATA_EVENTS, ...ENDING_EVENTS] } },
          touched ? { operationType: 'update', $expr: touched } : { operationType: 'update' },
        ],
      },
    },
    {
      $project: {
        operationType: 1,
        clusterTime: 1,
        documentKey: 1,
        ns: 1,
        to: 1,
        ...Object.fromEntries(
          keep.flatMap((field) => [
            [`fullDocument.${field}`, 1],
            [`fullDocumentBeforeChange.${field}`, 1],
          ]),
        ),
      },
    },
  ];
}

/** Child events: only those that add, remove or re-point a child; images cut to `_id` and the reference. */
export function childEventPipeline(relation: Relation): Document[] {
  return eventPipeline([rootOf(relation.child.field)], ['_id', relation.child.field]);
}

/**
 * Parent events: those that can change whether a parent is there and active (its key, soft-delete field and
 * activeFilter fields); images cut to the key (the watcher probes the parent itself).
 */
export function parentEventPipeline(relation: Relation): Document[] {
  const { parent } = relation;
  const filterFields = parent.activeFilter ? filterRoots(parent.activeFilter as Document) : [];
  const roots = filterFields && [
    rootOf(parent.field),
    ...(parent.softDeleteField ? [rootOf(parent.softDeleteField)] : []),
    ...filterFields,
  ];
  return eventPipeline(roots, [parent.field]);
}

/** Events the driver holds for a change stream without another getMore (its cursor's buffer). */
function bufferedEvents(stream: ChangeStream): number {
  return (stream as unknown as { cursor?: { bufferedCount(): number } }).cursor?.bufferedCount() ?? 0;
}

type Classified = { kind: 'excepted' } | { kind: 'invalid' } | { kind: 'key'; key: string; value: unknown };

export interface LiveCounts {
  relation: string;
  counts: CategoryCounts;
  /** When the counts last changed (events applied, or the start). */
  at: Date;
  /** Events applied since the start. */
  events: number;
  /** Whether this run continued from saved state (true) or began from a new snapshot (false). */
  resumed: boolean;
  /**
   * How much the counts have moved since `series` began: children added or removed (1 each) and children moved
   * between categories by a parent's change (1 each). The drift check allows what moved during a scan.
   */
  churn?: number;
  /** When this series of counts began (a new snapshot, or saved state loaded): churn counts from there. */
  series?: Date;
}

export interface WatchOptions {
  config: ResolvedConfig;
  pool: SourcePool;
  access: WriteAccess;
  relation: Relation;
  onCounts: (live: LiveCounts) => void;
  /** One line for what an operator should know (a restart from a new snapshot, why a relation is not live). */
  onNotice?: (message: string, relation: string, live: boolean) => void;
  signal: AbortSignal;
}

function zero(): CategoryCounts {
  return { ok: 0, orphans: 0, parentInactive: 0, invalidReference: 0, excepted: 0 };
}

const CATEGORY: Record<KeyState, keyof CategoryCounts> = {
  active: 'ok',
  missing: 'orphans',
  inactive: 'parentInactive',
};

/** Why a relation cannot be watched, said once; the console then shows "snapshot as of …". */

/** Children counted by reference: the value (absent when the field is) and its BSON type. */
interface ReferenceGroup {
  _id: { v?: unknown; t: string };
  n: number;
}

/**
 * `$group` of children by reference *and its type*: mongod puts equal numbers of different types in one group
 * (a Double 9.5 and a Decimal128 9.5) under the first value it meets, and the tool classifies them differently
 * (a fractional Decimal128 is an invalid reference, never deleted) — grouped by value alone, one could be counted
 * as the other.
 */
function byReference(field: string): Document {
  return { $group: { _id: { v: `$${field}`, t: { $type: `$${field}` } }, n: { $sum: 1 } } };
}

export class NotWatchable extends Error {}

/** Whether a collection keeps pre- and post-images (`changeStreamPreAndPostImages`). */
export async function preImagesEnabled(db: Db, collection: string): Promise<boolean> {
  const [info] = (await db.listCollections({ name: collection }).toArray()) as { options?: Document }[];
  return Boolean(info?.options?.changeStreamPreAndPostImages?.enabled);
}

/**
 * The time a snapshot session read at: the `atClusterTime` of its first read, which the driver keeps on the
 * session (not in its public types). A server that answers without one did not read a snapshot: refused.
 */
function snapshotTimeOf(session: { snapshotTime?: Timestamp }): Timestamp {
  if (!session.snapshotTime)
    throw new Error(
      'the server answered a snapshot read without atClusterTime: live counts need MongoDB 6.0 or later',
    );
  return session.snapshotTime;
}

/** The command that switches pre- and post-images on for a collection. */
export function preImagesCommand(db: Db, collection: string): string {
  return `db.getSiblingDB('${db.databaseName}').runCommand({collMod: '${collection}', changeStreamPreAndPostImages: {enabled: true}})`;
}

export class RelationWatcher {
  private counts = zero();
  private readonly unresolved = new Map<string, 'missing' | 'inactive'>();
  /** Per reference, its moves whose snapshot time child events may not have passed yet (oldest first). */
  private readonly history = new Map<string, { at: Timestamp; before: KeyState }[]>();
  /** References a probe found active (child events for them need no probe); cleared when large. */
  private readonly knownActive = new Set<string>();
  private snapshotAt = new Timestamp({ t: 0, i: 0 });
  private exceptions: ExceptionIndex = { documentKeys: new Set(), referenceKeys: new Set() };
  private childToken?: ResumeToken;
  private parentToken?: ResumeToken;
  private events = 0;
  private churn = 0;
  private series = new Date();
  private resumed = false;
  /** Set when the streams are being closed (a stop, or the other stream failed): nothing more is applied. */
  private halted = false;
  private lastSave = 0;
  private lastPositionSave = 0;
  /** References whose unresolved state or moves changed since the last save (only these are written). */
  private readonly dirty = new Set<string>();
  /** After a new start every reference is new: the next save writes them all, as a new generation. */
  private rewriteAll = true;
  /** Events applied since the last save. */
  private unsaved = false;
  /** A stream position moved since the last save. */
  private positionMoved = false;
  private stateStore!: WatchStateStore;
  private queue: Promise<void> = Promise.resolve();
  private streams: ChangeStream[] = [];
  private children!: Collection;
  /**
   * The child collection as the start snapshot reads it: with the source's read preference (a secondary when
   * it allows one: snapshot reads are allowed there, and the primary is spared the full index read).
   */
  private startChildren!: Collection;
  /** The child field's index the start reads (its name, as the hint). */
  private childIndex = '';
  /** How long the start snapshot may take: the config's maxTimeMS or the server's snapshot window, the smaller. */
  private startBound = { ms: START_SNAPSHOT_TIMEOUT_MS, why: '' };
  private childDb!: Db;
  private childClient!: MongoClient;
  private parents!: Collection;
  private probe!: ParentProbe;

  constructor(private readonly options: WatchOptions) {}

  /** The current counts (a copy). */
  current(): LiveCounts {
    return {
      relation: this.options.relation.name,
      counts: { ...this.counts },
      at: new Date(),
      events: this.events,
      resumed: this.resumed,
      churn: this.churn,
      series: this.series,
    };
  }

  /**
   * The handles of one (re)start, taken from the pool each time (a source given up on for silence gets a new
   * client), and the requirements checked again: a replica set or sharded cluster on both sides, pre-images.
   */
  private async connect(): Promise<void> {
    const { relation, pool, config } = this.options;
    this.childClient = await pool.client(relation.child.source);
    this.childDb = await pool.primaryDb(relation.child.source);
    this.children = this.childDb.collection(relation.child.collection);
    this.startChildren = (await pool.db(relation.child.source)).collection(relation.child.collection);
    this.startBound = await startBoundOf(this.childDb, config.maxTimeMS);
    this.stateStore = new WatchStateStore(this.childDb, this.childClient, relation.name);
    const parentDb = await pool.primaryDb(relation.parent.source);
    this.parents = parentDb.collection(relation.parent.collection);
    this.probe = new ParentProbe(relation, parentDb, { maxTimeMS: config.maxTimeMS, readConcern: MAJORITY });
    for (const [side, db] of [
      ['child', this.childDb],
      ['parent', parentDb],
    ] as const) {
      const hello = await db.admin().command({ hello: 1 });
      if (!hello.setName && hello.msg !== 'isdbgrid')
        throw new NotWatchable(
          `${relation.name}: not live: the ${side}'s server is standalone (change streams need a replica set or a sharded cluster)`,
        );
      const { version } = await db.admin().command({ buildInfo: 1 });
      if (Number(String(version).split('.')[0]) < 6)
        throw new NotWatchable(
          `${relation.name}: not live: the ${side}'s server is MongoDB ${version}; live counts need 6.0 or later (pre-images and fullDocumentBeforeChange)`,
        );
    }
    // The start reads the child field's index alone: one of the simple collation, leading with the field.
    const index = (await indexesOf(this.children)).find(
      (spec) =>
        leadingField(spec) === relation.child.field &&
        !spec.partialFilterExpression &&
        !spec.sparse &&
        (!spec.collation || (spec.collation as Document).locale === 'simple'),
    );
    if (!index)
      throw new NotWatchable(
        `${relation.name}: live counts need an index on ${relation.child.collection}.${relation.child.field} (simple collation, not partial): ${createIndexCommand(this.childDb.databaseName, relation.child.collection, relation.child.field)}`,
      );
    this.childIndex = String(index.name);
    if (!(await preImagesEnabled(this.childDb, relation.child.collection)))
      throw new NotWatchable(
        `${relation.name}: live counts need pre-images on the child collection (a delete event carries only _id): ${preImagesCommand(this.childDb, relation.child.collection)}`,
      );
    if (relation.parent.field !== '_id' && !(await preImagesEnabled(parentDb, relation.parent.collection)))
      throw new NotWatchable(
        `${relation.name}: live counts need pre-images on the parent collection (its key ${relation.parent.field} is not _id): ${preImagesCommand(parentDb, relation.parent.collection)}`,
      );
  }

  /** Runs until the signal: resumes from the saved state when it can, else starts from a new snapshot. */
  async run(): Promise<void> {
    const { relation, signal } = this.options;
    let failures = 0;
    let startFailures = 0;
    let lastStart = Date.now();
    while (!signal.aborted) {
      lastStart = Date.now();
      try {
        await this.connect();
        const resumed = await this.load();
        this.resumed = resumed;
        this.series = new Date();
        this.churn = 0;
        await this.follow(resumed);
        return;
      } catch (error) {
        if (signal.aborted) return;
        const code = (error as { code?: number }).code;
        // The saved position is older than the oplog (286), or a stream ended (drop, rename), or an event too
        // large even trimmed to the fields the watcher reads (10334): a new snapshot, which starts past it.
        if (code === 286 || code === 280 || code === EVENT_TOO_LARGE || error instanceof StreamEnded) {
          const why =
            error instanceof StreamEnded
              ? error.message
              : code === EVENT_TOO_LARGE
                ? 'a change event is over 16 MB even with only the fields live counts read'
                : 'the saved change-stream position is no longer in the oplog';
          this.options.onNotice?.(
            `${relation.name}: ${why}; live counts start again from a new snapshot`,
            relation.name,
            true,
          );
          await this.forget();
          continue;
        }
        if (error instanceof NotWatchable) throw error;
        // A start that ran out of its time (maxTimeMS) or of the server's snapshot history is too large to
        // start from one snapshot: trying again would only load the cluster for as long again.
        const startCode = error instanceof StartFailed ? (error.cause as { code?: number })?.code : undefined;
        if (startCode === MAX_TIME_EXPIRED || startCode === SNAPSHOT_TOO_OLD)
          throw new NotWatchable(
            `${relation.name}: not live: the start (one snapshot of the ${relation.child.collection}.${relation.child.field} index) did not finish within ${Math.round(this.startBound.ms / 1000)} s (${this.startBound.why}); a collection this large stays on the scan's figures`,
          );
        // A start snapshot that fails twice for a reason of its own (too slow for the snapshot window, say) is
        // not retried forever; one cut short by a failover or a silent source is, like any other interruption.
        if (error instanceof StartFailed && !isTransient(error.cause) && ++startFailures >= 2)
          throw new NotWatchable(
            `${relation.name}: the start snapshot failed twice (${redact(error.message)}); the scan's figures stand`,
          );
        // Anything else (a failover the driver could not ride out, a timed-out probe): the last saved state
        // (consistent with its stream positions) is loaded again after a pause that grows to a minute.
        failures = Date.now() - lastStart > RETRY_MAX_MS ? 1 : failures + 1;
        const pause = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (failures - 1));
        // A source given up on for silence is said in plain words, not as the driver's error for the ended read.
        const silent = this.options.pool
          .silentSources()
          .find((s) => s.source === relation.child.source || s.source === relation.parent.source);
        this.options.onNotice?.(
          `${relation.name}: live counts interrupted (${silent ? silent.message : redact((error as Error).message)}); trying again in ${Math.round(pause / 1000)} s`,
          relation.name,
          true,
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pause);
          signal.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              resolve();
            },
            { once: true },
          );
        });
      }
    }
  }

  /**
   * Opens both streams (from the saved tokens when resuming) and applies events. A new start opens the parent
   * stream first (a parent change after it re-probes its key), takes the snapshot, and opens the child stream at
   * the snapshot's time W0: a stream opened before would start at the last applied write while the snapshot
   * reads at the majority commit point, and the writes in between would be in neither. Child events at or
   * before W0 are in the snapshot and skipped.
   */
  private async follow(resumed: boolean): Promise<void> {
    const { relation, signal } = this.options;
    const parentStream = this.parents.watch(parentEventPipeline(relation), {
      fullDocument: 'whenAvailable',
      fullDocumentBeforeChange: relation.parent.field === '_id' ? 'off' : 'whenAvailable',
      maxAwaitTimeMS: WATCH_AWAIT_MS,
      ...(resumed && this.parentToken ? { resumeAfter: this.parentToken } : {}),
    });
    this.streams = [parentStream];
    let firstParent: ChangeStreamDocument | null;
    try {
      firstParent = await parentStream.tryNext();
      if (!resumed)
        await this.bootstrap().catch((error) => {
          throw new StartFailed(error);
        });
    } catch (error) {
      await parentStream.close().catch(() => undefined);
      throw error;
    }
    const childStream = this.children.watch(childEventPipeline(relation), {
      fullDocument: 'whenAvailable',
      fullDocumentBeforeChange: 'whenAvailable',
      maxAwaitTimeMS: WATCH_AWAIT_MS,
      ...(resumed && this.childToken
        ? { resumeAfter: this.childToken }
        : { startAtOperationTime: this.snapshotAt }),
    });
    this.streams = [childStream, parentStream];
    this.halted = false;
    const stop = () => {
      this.halted = true;
      for (const stream of this.streams) void stream.close().catch(() => undefined);
    };
    signal.addEventListener('abort', stop, { once: true });
    try {
      const firstChild = await childStream.tryNext();
      this.publish();
      // One stream failing stops the other before this returns: no event is applied to a state being reloaded.
      let failure: unknown;
      await Promise.all(
        [
          this.drain(childStream, firstChild, (events) => this.onChildren(events), 'child'),
          this.drain(parentStream, firstParent, (events) => this.onParents(events), 'parent'),
        ].map((drained) =>
          drained.catch((error) => {
            failure ??= error;
            stop();
          }),
        ),
      );
      if (failure && !signal.aborted) throw failure;
    } finally {
      signal.removeEventListener('abort', stop);
      stop();
      // Saved on a clean stop only: after a failure the last save (consistent with its tokens) stands.
      if (signal.aborted) await this.serialize(() => this.save(true)).catch(() => undefined);
    }
  }

  /**
   * Reads one stream until stopped, applying its events in the watcher's single queue: what the driver has
   * already received is applied as one batch (one parent probe and at most one snapshot count per batch).
   */
  private async drain(
    stream: ChangeStream,
    first: ChangeStreamDocument | null,
    apply: (events: ChangeStreamDocument[]) => Promise<void>,
    side: 'child' | 'parent',
  ): Promise<void> {
    let event = first;
    while (!this.options.signal.aborted && !this.halted) {
      if (event) {
        const batch = [event];
        while (batch.length < MAX_BATCH && bufferedEvents(stream) > 0) {
          const next = await stream.tryNext();
          if (!next) break;
          batch.push(next);
        }
        await this.serialize(async () => {
          if (this.halted) return;
          await apply(batch);
          this.events += batch.length;
          this.unsaved = true;
          this.setToken(side, batch[batch.length - 1]._id);
          if (side === 'child')
            this.pruneHistory((batch[batch.length - 1] as { clusterTime?: Timestamp }).clusterTime);
          this.publish();
        });
      } else {
        // Nothing pending on this stream: its position is the post-batch token.
        await this.serialize(async () => {
          this.setToken(side, stream.resumeToken);
          if (side === 'child') this.pruneHistory(tokenTime(stream.resumeToken));
        });
      }
      await this.serialize(() => (this.halted ? undefined : this.save(false)));
      if (this.options.signal.aborted || this.halted) break;
      try {
        event = await stream.tryNext();
      } catch (error) {
        // Closed by this watcher (stop sets halted first): the end. Closed under it (its client ended for a
        // silent source, a failover the driver gave up on): a failure, retried by run().
        if (this.options.signal.aborted || this.halted) break;
        throw error;
      }
      if (!event && stream.closed && !this.options.signal.aborted && !this.halted)
        throw new StreamEnded(`the ${side} stream closed`);
    }
  }

  private setToken(side: 'child' | 'parent', token: ResumeToken | undefined) {
    if (!token) return;
    const current = side === 'child' ? this.childToken : this.parentToken;
    if ((current as { _data?: unknown } | undefined)?._data !== (token as { _data?: unknown })._data)
      this.positionMoved = true;
    if (side === 'child') this.childToken = token;
    else this.parentToken = token;
  }

  private serialize<T>(work: () => Promise<T> | T): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private publish() {
    this.options.onCounts(this.current());
  }

  /** The start: the child collection grouped by reference in one snapshot, each reference's parent probed. */
  private async bootstrap(): Promise<void> {
    const { relation, config } = this.options;
    this.counts = zero();
    this.unresolved.clear();
    this.history.clear();
    this.knownActive.clear();
    this.dirty.clear();
    this.rewriteAll = true;
    this.exceptions = await new ExceptionsStore(this.childDb, this.options.access).index(
      relation.name,
      new Date(),
    );
    const session = this.childClient.startSession({ snapshot: true });
    try {
      // Children excepted by _id are counted below under their reference; read first (this read fixes the
      // snapshot's time for the session), they are moved to excepted: by reference key here.
      const exceptedUnder = new Map<string, number>();
      const ids = this.exceptedIds();
      for (let i = 0; i < ids.length; i += KEYS_PER_QUERY) {
        const docs = await this.startChildren
          .find({ _id: { $in: ids.slice(i, i + KEYS_PER_QUERY) } } as Document, {
            session,
            projection: { [relation.child.field]: 1 },
            maxTimeMS: config.maxTimeMS,
          })
          .toArray();
        for (const doc of docs) {
          const classified = this.classifyValue(this.referenceOf(doc));
          if (classified.kind === 'key')
            exceptedUnder.set(classified.key, (exceptedUnder.get(classified.key) ?? 0) + 1);
          else if (classified.kind === 'invalid') this.counts.invalidReference--;
          else this.counts.excepted--;
          this.counts.excepted++;
        }
      }
      // Read from the child field's index alone ($sort on it, then $group: no document is fetched), and bounded
      // by maxTimeMS, below the socket timeout (the driver's timeoutMS bounds nothing on a cursor) and within the
      // server's snapshot window. A start too slow for it is not tried again: the relation stays on scan figures,
      // said once (see `TooLargeToStart`).
      const grouped = this.startChildren.aggregate<ReferenceGroup>(
        [{ $sort: { [relation.child.field]: 1 } }, byReference(relation.child.field)],
        {
          session,
          allowDiskUse: true,
          collation: { locale: 'simple' },
          hint: this.childIndex,
          maxTimeMS: this.startBound.ms,
        },
      );
      // Probed a batch of references at a time as the groups arrive: memory follows the batch, not the keys.
      let batch = new Map<string, { value: unknown; n: number }>();
      const flush = async () => {
        const states = await this.probe.probe(new Map([...batch].map(([key, { value }]) => [key, value])));
        for (const [key, { n: grouped }] of batch) {
          const n = grouped - (exceptedUnder.get(key) ?? 0);
          exceptedUnder.delete(key);
          const state = states.get(key)?.kind ?? 'missing';
          this.counts[CATEGORY[state]] += n;
          if (state !== 'active' && n > 0) this.unresolved.set(key, state);
          else if (state === 'active' && this.knownActive.size < MAX_UNRESOLVED) this.knownActive.add(key);
        }
        batch = new Map();
        this.checkSize();
      };
      for await (const group of grouped) {
        const classified = this.classifyValue(group._id.v);
        if (classified.kind !== 'key') this.add(classified, group.n);
        else {
          const entry = batch.get(classified.key) ?? { value: classified.value, n: 0 };
          entry.n += group.n;
          batch.set(classified.key, entry);
          if (batch.size >= KEYS_PER_QUERY) await flush();
        }
      }
      if (batch.size) await flush();
      this.snapshotAt = snapshotTimeOf(session as unknown as { snapshotTime?: Timestamp });
      this.checkSize();
    } finally {
      await session.endSession();
    }
    this.events = 0;
    // A new series of counts: the start's own counting is not movement.
    this.churn = 0;
    this.series = new Date();
  }

  /** The `_id`s of the children excepted by document (the exception index keeps them as canonical EJSON). */
  private exceptedIds(): unknown[] {
    return [...this.exceptions.documentKeys].map((key) => (EJSON.parse(key) as { id: unknown }).id);
  }

  private checkSize() {
    if (this.unresolved.size > MAX_UNRESOLVED)
      throw new NotWatchable(
        `${this.options.relation.name}: ${this.unresolved.size} references have a missing or inactive parent, more than the ${MAX_UNRESOLVED} live counts keep in memory; the scan's figures stand`,
      );
  }

  private referenceOf(doc: Document | undefined | null): unknown {
    if (!doc) return undefined;
    return referenceAt(doc, this.options.relation.child.field);
  }

  private classifyValue(value: unknown): Classified {
    const key = canonicalKey(value, this.options.relation.keyMatch);
    if (key === undefined) return { kind: 'invalid' };
    if (this.exceptions.referenceKeys.has(key)) return { kind: 'excepted' };
    return { kind: 'key', key, value };
  }

  /** A child as the scan classifies it: excepted by _id first, then its reference. */
  private classifyChild(doc: Document): Classified {
    if (this.exceptions.documentKeys.has(documentKey(doc._id))) return { kind: 'excepted' };
    return this.classifyValue(this.referenceOf(doc));
  }

  /** The state a reference had for a child event at `t`: before the first move whose snapshot came at or after t. */
  private stateAt(key: string, t: Timestamp | undefined): KeyState | undefined {
    const moves = this.history.get(key);
    if (moves && t) {
      // Child events come in order: moves before this one's time no longer apply to any event.
      if (moves.length && moves[0].at.compare(t) < 0) {
        while (moves.length && moves[0].at.compare(t) < 0) moves.shift();
        this.dirty.add(key);
      }
      if (moves.length === 0) this.history.delete(key);
      else return moves[0].before;
    }
    const unresolved = this.unresolved.get(key);
    if (unresolved) return unresolved;
    return this.knownActive.has(key) ? 'active' : undefined;
  }

  private add(classified: Classified, delta: number, state?: KeyState) {
    this.churn += Math.abs(delta);
    if (classified.kind === 'excepted') this.counts.excepted += delta;
    else if (classified.kind === 'invalid') this.counts.invalidReference += delta;
    else this.counts[CATEGORY[state ?? 'active']] += delta;
  }

  /** Applies one child's arrival (+1) or departure (−1) at `t`, probing its parent first when unknown. */
  private async applyChild(doc: Document | null | undefined, t: Timestamp, delta: number): Promise<void> {
    if (!doc) throw new StreamEnded('a child change without its document (pre- or post-image expired)');
    const classified = this.classifyChild(doc);
    if (classified.kind !== 'key') return this.add(classified, delta);
    let state = this.stateAt(classified.key, t);
    if (state === undefined) {
      const found = (await this.probe.probe(new Map([[classified.key, classified.value]]))).get(
        classified.key,
      );
      const now = found?.kind ?? 'missing';
      if (now === 'active') this.rememberActive(classified.key);
      else await this.move(new Map([[classified.key, { value: classified.value, to: now }]]));
      state = this.stateAt(classified.key, t) ?? now;
    }
    this.add(classified, delta, state);
  }

  /**
   * What a child event changes: the document that leaves (−1, before the change) and the one that arrives (+1,
   * after it); nothing for an update that leaves the reference alone. A drop, rename or invalidate ends the stream.
   */
  private childChanges(event: ChangeStreamDocument): [Document | null | undefined, number][] {
    const e = event as Document;
    switch (event.operationType) {
      case 'insert':
        return [[e.fullDocument, 1]];
      case 'delete':
        return [[e.fullDocumentBeforeChange, -1]];
      case 'update':
        return this.touchesReference(e)
          ? [
              [e.fullDocumentBeforeChange, -1],
              [e.fullDocument, 1],
            ]
          : [];
      case 'replace':
        return [
          [e.fullDocumentBeforeChange, -1],
          [e.fullDocument, 1],
        ];
      case 'drop':
      case 'rename':
      case 'dropDatabase':
      case 'invalidate':
        throw new StreamEnded(`the child collection saw ${event.operationType}`);
      default:
        return [];
    }
  }

  private touchesReference(e: Document): boolean {
    // The stream's pipeline passes only updates that touch the reference, without their updateDescription.
    if (!e.updateDescription) return true;
    const field = this.options.relation.child.field;
    const root = field.split('.')[0];
    return [
      ...Object.keys(e.updateDescription?.updatedFields ?? {}),
      ...(e.updateDescription?.removedFields ?? []),
    ].some((path: string) => path === field || path.split('.')[0] === root || field.startsWith(`${path}.`));
  }

  /**
   * A batch of child events: the references none of them knows the parent of are probed together, and those
   * found missing or inactive moved in one snapshot count; then each event is applied in order.
   */
  private async onChildren(events: ChangeStreamDocument[]): Promise<void> {
    const unknown = new Map<string, unknown>();
    for (const event of events) {
      const t = (event as { clusterTime?: Timestamp }).clusterTime;
      if (!t || t.compare(this.snapshotAt) <= 0) continue;
      for (const [doc] of this.childChanges(event)) {
        if (!doc) continue;
        const classified = this.classifyChild(doc);
        if (
          classified.kind !== 'key' ||
          this.unresolved.has(classified.key) ||
          this.knownActive.has(classified.key)
        )
          continue;
        if (this.history.get(classified.key)?.some((move) => move.at.compare(t) >= 0)) continue;
        unknown.set(classified.key, classified.value);
      }
    }
    const moves = new Map<string, { value: unknown; to: KeyState }>();
    const keys = [...unknown];
    for (let i = 0; i < keys.length; i += KEYS_PER_QUERY) {
      const batch = new Map(keys.slice(i, i + KEYS_PER_QUERY));
      const states = await this.probe.probe(batch);
      for (const [key, value] of batch) {
        const to = states.get(key)?.kind ?? 'missing';
        if (to === 'active') this.rememberActive(key);
        else moves.set(key, { value, to });
      }
    }
    await this.move(moves);
    for (const event of events) await this.onChild(event);
  }

  private rememberActive(key: string) {
    if (this.knownActive.size > MAX_UNRESOLVED) this.knownActive.clear();
    this.knownActive.add(key);
  }

  private async onChild(event: ChangeStreamDocument): Promise<void> {
    const t = (event as { clusterTime?: Timestamp }).clusterTime;
    if (!t || t.compare(this.snapshotAt) <= 0) return;
    for (const [doc, delta] of this.childChanges(event)) await this.applyChild(doc, t, delta);
  }

  /** A batch of parent events: every key they touch probed now, in one query; those whose state changed moved. */
  private async onParents(events: ChangeStreamDocument[]): Promise<void> {
    const { relation } = this.options;
    const values = new Map<string, unknown>();
    for (const event of events) {
      const e = event as Document;
      if (['drop', 'rename', 'dropDatabase', 'invalidate'].includes(event.operationType))
        throw new StreamEnded(`the parent collection saw ${event.operationType}`);
      const note = (doc: Document | null | undefined) => {
        if (!doc) return;
        for (const value of valuesAtPath(doc, relation.parent.field)) {
          const key = canonicalKey(value, relation.keyMatch);
          // Children of an allow-listed reference count as excepted whatever their parent does.
          if (key !== undefined && !this.exceptions.referenceKeys.has(key)) values.set(key, value);
        }
      };
      if (relation.parent.field === '_id') note(e.documentKey);
      // A parent keyed by another field than _id is known by its images alone: one that is gone (expired,
      // or never kept) hides which key changed, so the counts could no longer be trusted.
      else if (['delete', 'update', 'replace'].includes(event.operationType) && !e.fullDocumentBeforeChange)
        throw new StreamEnded('a parent change without its document (pre-image expired)');
      note(e.fullDocument);
      note(e.fullDocumentBeforeChange);
    }
    const keys = [...values];
    const moves = new Map<string, { value: unknown; to: KeyState }>();
    for (let i = 0; i < keys.length; i += KEYS_PER_QUERY) {
      const batch = new Map(keys.slice(i, i + KEYS_PER_QUERY));
      const states = await this.probe.probe(batch);
      for (const [key, value] of batch) {
        const to = states.get(key)?.kind ?? 'missing';
        const from = this.unresolved.get(key) ?? 'active';
        if (to === 'active') this.rememberActive(key);
        else this.knownActive.delete(key);
        if (to !== from) moves.set(key, { value, to });
      }
    }
    await this.move(moves);
  }

  /**
   * Moves references to a new parent state: their children are counted in one snapshot at W, taken from the
   * old category and added to the new; events at or before W will be applied under the old state.
   */
  private async move(moves: Map<string, { value: unknown; to: KeyState }>): Promise<void> {
    if (moves.size === 0) return;
    const { relation, config } = this.options;
    const session = this.childClient.startSession({ snapshot: true });
    try {
      const values = [...moves].flatMap(([key]) => valuesForKey(key, relation.keyMatch));
      const excluded = this.exceptedIds();
      const groups = await this.children
        .aggregate<ReferenceGroup>(
          [
            {
              $match: {
                [relation.child.field]: { $in: values },
                ...(excluded.length ? { _id: { $nin: excluded } } : {}),
              },
            },
            byReference(relation.child.field),
          ],
          { session, collation: { locale: 'simple' }, maxTimeMS: config.maxTimeMS },
        )
        .toArray();
      const at = snapshotTimeOf(session as unknown as { snapshotTime?: Timestamp });
      const counted = new Map<string, number>();
      for (const group of groups) {
        const key = canonicalKey(group._id.v, relation.keyMatch);
        if (key !== undefined && moves.has(key)) counted.set(key, (counted.get(key) ?? 0) + group.n);
      }
      for (const [key, { to }] of moves) {
        const from = this.unresolved.get(key) ?? 'active';
        const n = counted.get(key) ?? 0;
        this.counts[CATEGORY[from]] -= n;
        this.counts[CATEGORY[to]] += n;
        this.churn += n;
        const history = this.history.get(key) ?? [];
        history.push({ at, before: from });
        this.history.set(key, history);
        if (to === 'active' || n === 0) this.unresolved.delete(key);
        else this.unresolved.set(key, to);
        this.dirty.add(key);
      }
      this.checkSize();
    } finally {
      await session.endSession();
    }
  }

  /**
   * Loads the saved state; false (start from a snapshot) when there is none or the session is read-only. A
   * state that fails its checks (written by hand, cut short) is a lost one: said once, forgotten, a new snapshot.
   */
  private async load(): Promise<boolean> {
    if (this.options.access.readOnly) return false;
    const { relation, config } = this.options;
    let saved: Awaited<ReturnType<WatchStateStore['load']>>;
    try {
      saved = await this.stateStore.load(config.maxTimeMS);
    } catch (error) {
      if (!(error instanceof MalformedWatchState)) throw error;
      this.options.onNotice?.(
        `${relation.name}: the saved live-count state is malformed (${error.message}); live counts start again from a new snapshot`,
        relation.name,
        true,
      );
      await this.forget();
      return false;
    }
    if (!saved) return false;
    this.counts = saved.counts;
    this.unresolved.clear();
    this.history.clear();
    for (const [key, entry] of saved.keys) {
      if (entry.state) this.unresolved.set(key, entry.state);
      if (entry.moves) this.history.set(key, entry.moves);
    }
    this.snapshotAt = saved.snapshotAt;
    this.childToken = saved.childToken;
    this.parentToken = saved.parentToken;
    this.dirty.clear();
    this.rewriteAll = false;
    this.unsaved = false;
    this.positionMoved = false;
    this.exceptions = await new ExceptionsStore(this.childDb, this.options.access).index(
      relation.name,
      new Date(),
    );
    return true;
  }

  private entryOf(key: string): KeyEntry | undefined {
    const state = this.unresolved.get(key);
    const moves = this.history.get(key);
    if (!state && !moves?.length) return undefined;
    return { ...(state ? { state } : {}), ...(moves?.length ? { moves } : {}) };
  }

  /**
   * Saves what changed: the head (counts, positions) and the references whose state or moves changed —
   * every reference only after a new start. Nothing when nothing changed; a position that moved alone at
   * most every minute.
   */
  private async save(force: boolean): Promise<void> {
    if (this.options.access.readOnly) return;
    if (!this.childToken || !this.parentToken) return;
    const changed = this.unsaved || this.rewriteAll || this.dirty.size > 0;
    if (!changed && !this.positionMoved) return;
    const now = Date.now();
    if (!force && !changed && now - this.lastPositionSave < POSITION_SAVE_INTERVAL_MS) return;
    if (!force && now - this.lastSave < SAVE_INTERVAL_MS) return;
    this.lastSave = now;
    this.lastPositionSave = now;
    const head = {
      counts: { ...this.counts },
      snapshotAt: this.snapshotAt,
      childToken: this.childToken,
      parentToken: this.parentToken,
    };
    const keys = new Set([...this.unresolved.keys(), ...this.history.keys()]);
    if (this.rewriteAll) {
      const all = new Map<string, KeyEntry>();
      for (const key of keys) all.set(key, this.entryOf(key)!);
      await this.stateStore.saveAll(head, all, this.options.config.maxTimeMS);
    } else {
      const changes = new Map<string, KeyEntry | undefined>();
      for (const key of this.dirty) changes.set(key, this.entryOf(key));
      await this.stateStore.saveChanges(head, changes, keys.size, this.options.config.maxTimeMS);
    }
    this.rewriteAll = false;
    this.dirty.clear();
    this.unsaved = false;
    this.positionMoved = false;
  }

  /**
   * Drops the moves no child event can need any more: those before the child stream's position (events
   * come in order, and an event at t reads only moves at or after t).
   */
  private pruneHistory(position: Timestamp | undefined): void {
    if (!position) return;
    for (const [key, moves] of this.history) {
      if (moves.length === 0 || moves[0].at.compare(position) >= 0) continue;
      while (moves.length && moves[0].at.compare(position) < 0) moves.shift();
      if (moves.length === 0) this.history.delete(key);
      this.dirty.add(key);
    }
  }

  /** Forgets the saved state (a new snapshot follows). */
  async forget(): Promise<void> {
    this.childToken = undefined;
    this.parentToken = undefined;
    this.rewriteAll = true;
    if (!this.options.access.readOnly)
      await this.stateStore.forget(this.options.config.maxTimeMS).catch(() => undefined);
  }
}

class StreamEnded extends Error {}

/** The start snapshot failed (its cause's message). */
/** mongod's codes for a read that ran out of maxTimeMS, and for one older than the snapshot history. */
const MAX_TIME_EXPIRED = 50;
const SNAPSHOT_TOO_OLD = 239;

/**
 * The start snapshot's bound: the config's maxTimeMS (below the socket timeout) or the server's snapshot history
 * window (`minSnapshotHistoryWindowInSeconds`; mongod's default when `getParameter` is refused), the smaller.
 */
async function startBoundOf(db: Db, maxTimeMS: number): Promise<{ ms: number; why: string }> {
  let windowMs = START_SNAPSHOT_TIMEOUT_MS;
  let read = false;
  try {
    // Bounded by the client's socket timeout (above maxTimeMS).
    const reply = await db.admin().command({ getParameter: 1, minSnapshotHistoryWindowInSeconds: 1 });
    const seconds = Number(reply.minSnapshotHistoryWindowInSeconds);
    if (Number.isFinite(seconds) && seconds > 0) {
      windowMs = seconds * 1000;
      read = true;
    }
  } catch {
    // Not allowed to read it (Atlas may refuse getParameter): mongod's default.
  }
  if (maxTimeMS < windowMs) return { ms: maxTimeMS, why: "the config's maxTimeMS" };
  return {
    ms: windowMs,
    why: read
      ? "the cluster's snapshot history window, minSnapshotHistoryWindowInSeconds"
      : "mongod's default snapshot history window (getParameter was refused)",
  };
}

class StartFailed extends Error {
  constructor(readonly cause: unknown) {
    super((cause as Error).message ?? String(cause));
  }
}

/** How far back the drift check can place a scan's start against live counts. */
const SAMPLE_WINDOW_MS = 6 * 3600_000;

const FIVE: (keyof CategoryCounts)[] = ['ok', 'orphans', 'parentInactive', 'invalidReference', 'excepted'];

/**
 * The drift check: live counts against a full scan's, one line naming the relation and both figures when
 * they differ (the full scan wins: the watcher then starts again from a new snapshot); undefined when equal.
 */
export function driftBetween(
  relation: string,
  live: CategoryCounts,
  scan: CategoryCounts,
  tolerance = 0,
): string | undefined {
  const differing = FIVE.filter((category) => Math.abs(live[category] - scan[category]) > tolerance);
  if (differing.length === 0) return undefined;
  return `live counts of ${relation} drifted from the full scan (${differing
    .map((category) => `${category} live ${live[category]} vs scan ${scan[category]}`)
    .join(
      ', ',
    )}${tolerance ? `, beyond the ${tolerance} changes applied since the scan began` : ''}); the scan's figures stand and live counts start again from a new snapshot`;
}

/** Forgets a relation's saved watch state, so its next watcher starts from a new snapshot. */
export async function forgetWatchState(db: Db, relation: string, maxTimeMS: number): Promise<void> {
  await new WatchStateStore(db, db.client, relation).forget(maxTimeMS);
}

/**
 * Watches every relation until the signal; a relation that cannot be watched is said once (`onNotice`) and
 * left on scan figures. Resolves when all watchers have stopped.
 */
export async function watchRelations(
  options: Omit<WatchOptions, 'relation'> & { relations?: Relation[] },
): Promise<void> {
  const relations = options.relations ?? options.config.relations;
  await Promise.all(
    relations.map(async (relation) => {
      try {
        await new RelationWatcher({ ...options, relation }).run();
      } catch (error) {
        if (options.signal.aborted) return;
        options.onNotice?.(
          error instanceof NotWatchable
            ? error.message
            : `${relation.name}: live counts stopped: ${redact((error as Error).message)}`,
          relation.name,
          false,
        );
      }
    }),
  );
}

/** Starts live counts for some relations until the signal (`fresh`: forget their saved state first). */
export type WatchStarter = (options: {
  relations: string[];
  onCounts: (live: LiveCounts) => void;
  onNotice: (message: string, relation: string, live: boolean) => void;
  signal: AbortSignal;
  fresh?: boolean;
}) => Promise<void>;

/** The starter for a config's relations on a pool: what the console and `serve --watch` run. */
export function watcherFor(config: ResolvedConfig, pool: SourcePool, access: WriteAccess): WatchStarter {
  return async ({ relations: names, onCounts, onNotice, signal, fresh }) => {
    const chosen = names.map((name) => {
      const found = config.relations.find((r) => r.name === name);
      if (!found) throw new Error(`unknown relation ${name}`);
      return found;
    });
    if (fresh && !access.readOnly)
      for (const r of chosen)
        await forgetWatchState(await pool.primaryDb(r.child.source), r.name, config.maxTimeMS);
    return watchRelations({ config, pool, access, relations: chosen, onCounts, onNotice, signal });
  };
}

/**
 * Live counts for several relations, one watcher each: the latest counts, why a relation is not live, the
 * drift check against a full scan (a drifted relation's watcher starts again from a new snapshot), stop.
 */
export class LiveCountKeeper {
  readonly latest = new Map<string, LiveCounts>();
  readonly unavailable = new Map<string, string>();
  private readonly controllers = new Map<string, AbortController>();
  /** Each relation's running watcher: a restart waits for it to end (its final save) before it begins. */
  private readonly running = new Map<string, Promise<void>>();
  /** Per relation, when its churn changed (series, time, churn): the drift check's baseline at a scan's start. */
  private readonly samples = new Map<string, { series: number; at: number; churn: number }[]>();

  constructor(
    private readonly start: WatchStarter,
    private readonly hooks: {
      onCounts?: (live: LiveCounts) => void;
      onNotice?: (message: string, relation: string, live: boolean) => void;
    } = {},
  ) {}

  watch(relation: string, fresh = false): void {
    this.controllers.get(relation)?.abort();
    const controller = new AbortController();
    this.controllers.set(relation, controller);
    this.unavailable.delete(relation);
    this.samples.delete(relation);
    // The previous watcher saves its state when it stops: a fresh start forgets the saved state only after
    // that save, so it never forgets a state that is then written again.
    const previous = this.running.get(relation) ?? Promise.resolve();
    // A failure before the watcher runs (a source unreachable while forgetting saved state) is said, never
    // left as an unhandled rejection.
    const run = previous
      .then(() =>
        controller.signal.aborted
          ? undefined
          : this.start({
              relations: [relation],
              fresh,
              signal: controller.signal,
              onCounts: (live) => {
                if (controller.signal.aborted) return;
                this.latest.set(live.relation, live);
                this.sample(live);
                this.hooks.onCounts?.(live);
              },
              onNotice: (message, name, live) => {
                if (controller.signal.aborted) return;
                if (!live) {
                  this.latest.delete(name);
                  this.unavailable.set(name, message);
                }
                this.hooks.onNotice?.(message, name, live);
              },
            }),
      )
      .catch((error) => {
        if (controller.signal.aborted) return;
        const message = `${relation}: live counts stopped: ${redact((error as Error).message)}`;
        this.latest.delete(relation);
        this.unavailable.set(relation, message);
        this.hooks.onNotice?.(message, relation, false);
      });
    this.running.set(relation, run);
  }

  /** Notes a relation's churn when it changed; samples older than SAMPLE_WINDOW_MS go (the newest such stays). */
  private sample(live: LiveCounts): void {
    if (live.churn === undefined || !live.series) return;
    const list = this.samples.get(live.relation) ?? [];
    const last = list.at(-1);
    const series = live.series.getTime();
    if (last && last.series === series && last.churn === live.churn) return;
    list.push({ series, at: live.at.getTime(), churn: live.churn });
    const cutoff = Date.now() - SAMPLE_WINDOW_MS;
    while (list.length > 1 && list[1].at <= cutoff) list.shift();
    this.samples.set(live.relation, list);
  }

  /**
   * How much a relation's counts moved from a scan's start until now, or undefined when unknown (the current
   * series began after the scan started, or no sample that old is kept).
   */
  private movedSince(relation: string, live: LiveCounts, startedAt: Date): number | undefined {
    if (live.churn === undefined || !live.series) return undefined;
    const series = live.series.getTime();
    if (series > startedAt.getTime()) return undefined;
    const baseline = (this.samples.get(relation) ?? [])
      .filter((s) => s.series === series && s.at <= startedAt.getTime())
      .at(-1);
    const before = baseline?.churn;
    return before === undefined ? undefined : live.churn - before;
  }

  /**
   * Compares each complete relation of a scan with its live counts; a difference is returned as a line (for
   * the log or the screen) and that relation's watcher starts again from a new snapshot.
   */
  checkDrift(
    relations: (CategoryCounts & { name: string; complete: boolean; startedAt?: Date })[],
  ): string[] {
    const lines: string[] = [];
    for (const report of relations) {
      const live = this.latest.get(report.name);
      if (!live || !report.complete) continue;
      // What moved from the scan's start until now may differ honestly between the two: allowed. A scan
      // whose start the current counts cannot be placed against (they began after it) is not compared.
      let tolerance = 0;
      if (report.startedAt) {
        const moved = this.movedSince(report.name, live, report.startedAt);
        if (moved === undefined) continue;
        tolerance = moved;
      }
      const drift = driftBetween(report.name, live.counts, report, tolerance);
      if (!drift) continue;
      lines.push(drift);
      this.latest.delete(report.name);
      this.watch(report.name, true);
    }
    return lines;
  }

  stop(): void {
    for (const controller of this.controllers.values()) controller.abort();
  }
}

/**
 * Growth since a relation's last complete scan, per day, counted over at least one day (so an increase
 * within the first day is its full size, never extrapolated): undefined without such a scan.
 */
export function liveGrowthPerDay(scan: ScanReport | undefined, live: LiveCounts): number | undefined {
  const report = scan?.relations.find((r) => r.name === live.relation && r.complete);
  if (!report || !scan) return undefined;
  const days = Math.max(1, (live.at.getTime() - scan.finishedAt.getTime()) / 86_400_000);
  return Math.round((live.counts.orphans - report.orphans) / days);
}

/** A scan report with its five categories replaced by live counts where there are any, and growth from them. */
export function withLiveCounts(scan: ScanReport, latest: Map<string, LiveCounts>): ScanReport {
  return {
    ...scan,
    relations: scan.relations.map((r) => {
      const live = latest.get(r.name);
      if (!live) return r;
      // The larger of the scan's own growth and the growth since it, so a fresh scan never hides its alert.
      const since = liveGrowthPerDay(scan, live);
      const growthPerDay =
        since === undefined
          ? r.growthPerDay
          : r.growthPerDay === null
            ? since
            : Math.max(since, r.growthPerDay);
      return { ...r, ...live.counts, growthPerDay };
    }),
  };
}
