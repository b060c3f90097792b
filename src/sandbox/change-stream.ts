import { type Document, Timestamp } from 'bson';
import { CommandError, ErrorCodes } from './command-error.ts';
import type { Oplog } from './oplog.ts';
import type { Store } from './storage.ts';

/** How long a `getMore` on a change stream waits for an event when it gives no `maxTimeMS` (mongod: 1 s). */
export const DEFAULT_AWAIT_MS = 1000;

export interface ChangeStreamSpec {
  db: string;
  /** One collection's stream; undefined for a database's (or, with `cluster`, every database's). */
  coll?: string;
  cluster: boolean;
  fullDocument: 'default' | 'updateLookup' | 'whenAvailable' | 'required';
  /** Pre-images of updates, replacements and deletes, from collections that keep them. */
  fullDocumentBeforeChange: 'off' | 'whenAvailable' | 'required';
  /** Events strictly after this time; `inclusive` makes it "at or after" (startAtOperationTime). */
  after: Timestamp;
  inclusive: boolean;
  /** `showExpandedEvents`: DDL events (create, createIndexes, dropIndexes, modify) and `collectionUUID`. */
  expanded?: boolean;
}

/** A resume token: the event's cluster time, opaque to drivers (`{_data: hex}`, as mongod's). */
export function resumeToken(ts: Timestamp): Document {
  return { _data: `82${ts.high.toString(16).padStart(8, '0')}${ts.low.toString(16).padStart(8, '0')}` };
}

/** The cluster time a resume token carries; a token the sandbox did not issue is refused. */
export function tokenTime(token: unknown): Timestamp {
  const data = (token as { _data?: unknown } | undefined)?._data;
  if (typeof data !== 'string' || !/^82[0-9a-f]{16}$/.test(data))
    throw new CommandError(ErrorCodes.BadValue, 'invalid resume token: not one this server issued');
  return new Timestamp({
    t: Number.parseInt(data.slice(2, 10), 16),
    i: Number.parseInt(data.slice(10, 18), 16),
  });
}

/** Parses `$changeStream`'s options into where the stream starts; a start the oplog no longer holds is refused. */
export function parseChangeStream(
  stage: Document,
  target: { db: string; coll?: string },
  oplog: Oplog,
): ChangeStreamSpec {
  const known = [
    'fullDocument',
    'resumeAfter',
    'startAfter',
    'startAtOperationTime',
    'allChangesForCluster',
    'fullDocumentBeforeChange',
    'showExpandedEvents',
  ];
  for (const key of Object.keys(stage))
    if (!known.includes(key))
      throw new CommandError(40415, `BSON field '$changeStream.${key}' is an unknown field.`);
  const beforeChange = (stage.fullDocumentBeforeChange ??
    'off') as ChangeStreamSpec['fullDocumentBeforeChange'];
  if (!['off', 'whenAvailable', 'required'].includes(beforeChange))
    throw new CommandError(
      ErrorCodes.BadValue,
      `unknown fullDocumentBeforeChange mode ${String(beforeChange)}`,
    );
  const fullDocument = (stage.fullDocument ?? 'default') as ChangeStreamSpec['fullDocument'];
  if (!['default', 'updateLookup', 'whenAvailable', 'required'].includes(fullDocument))
    throw new CommandError(ErrorCodes.BadValue, `unknown fullDocument mode ${String(stage.fullDocument)}`);
  const cluster = stage.allChangesForCluster === true;
  if (cluster && target.db !== 'admin')
    throw new CommandError(
      ErrorCodes.InvalidOptions,
      'allChangesForCluster is only valid on the admin database',
    );
  const token = stage.resumeAfter ?? stage.startAfter;
  let after = oplog.latest();
  let inclusive = false;
  if (token !== undefined) after = tokenTime(token);
  else if (stage.startAtOperationTime !== undefined) {
    after = stage.startAtOperationTime as Timestamp;
    inclusive = true;
  }
  if ((token !== undefined || inclusive) && !oplog.holdsAfter(after))
    throw new CommandError(
      286,
      'Resume of change stream was not possible, as the resume point may no longer be in the oplog.',
      { errorLabels: ['NonResumableChangeStreamError'] },
    );
  return {
    db: target.db,
    coll: target.coll,
    cluster,
    fullDocument,
    fullDocumentBeforeChange: beforeChange,
    after,
    inclusive,
    expanded: stage.showExpandedEvents === true,
  };
}

/** How often a waiting change stream looks whether the majority commit point has reached new entries. */
const MAJORITY_RECHECK_MS = 20;

/**
 * A change stream over the oplog (majority-committed entries only, as on mongod): the events after its position that concern its namespace, as mongod shapes
 * them (`_id` resume token, `operationType`, `clusterTime`, `wallTime`, `ns`, `documentKey`, `fullDocument`,
 * `updateDescription`), then `invalidate` when its collection or database is dropped.
 */
export class ChangeStream {
  invalidated = false;

  constructor(
    private readonly spec: ChangeStreamSpec,
    private readonly oplog: Oplog,
    private readonly store: Store,
  ) {}

  /** Where the stream is: the token after its last event or the last entry it looked at. */
  postBatchResumeToken(): Document {
    return resumeToken(this.spec.after);
  }

  /** The events now available; when there are none, waits up to `waitMs` for one. */
  async poll(waitMs: number): Promise<Document[]> {
    if (this.invalidated) return [];
    const deadline = Date.now() + waitMs;
    let events = this.take();
    // Entries not yet majority-committed are not delivered: look again as the commit point moves.
    while (events.length === 0 && Date.now() < deadline) {
      await this.oplog.waitForEntry(Math.min(deadline - Date.now(), MAJORITY_RECHECK_MS));
      events = this.take();
    }
    return events;
  }

  private take(): Document[] {
    const events: Document[] = [];
    const committed = this.oplog.majorityPoint();
    for (const entry of this.oplog.after(this.spec.after)) {
      if ((entry.ts as Timestamp).compare(committed) > 0) break;
      if (this.spec.inclusive) this.spec.inclusive = false;
      this.spec.after = entry.ts as Timestamp;
      for (const event of this.eventsOf(entry)) {
        events.push(event);
        if (event.operationType === 'invalidate') {
          this.invalidated = true;
          return events;
        }
      }
      if (events.length >= 1000) break;
    }
    return events;
  }

  /**
   * The DDL events `showExpandedEvents` adds, from the sandbox's `c` entries (create, createIndexes,
   * dropIndexes, collMod), as mongod 7.0 shapes them; undefined for an entry that is not one of them.
   */
  private expandedEvent(
    entry: Document,
    db: string,
    base: (operationType: string, extra?: Document) => Document,
  ): Document[] | undefined {
    const o = entry.o as Document;
    const named = (field: string) => (typeof o[field] === 'string' ? (o[field] as string) : undefined);
    const coll = named('create') ?? named('createIndexes') ?? named('dropIndexes') ?? named('collMod');
    if (coll === undefined) return undefined;
    if (!this.concerns(db, coll)) return [];
    const ns = { db, coll };
    if (o.create !== undefined) {
      const { create: _create, ...description } = o;
      return [base('create', { ns, operationDescription: description })];
    }
    if (o.createIndexes !== undefined) {
      const { createIndexes: _coll, ...index } = o;
      return [base('createIndexes', { ns, operationDescription: { indexes: [index] } })];
    }
    if (o.dropIndexes !== undefined)
      return [
        base('dropIndexes', { ns, operationDescription: { indexes: [entry.o2 ?? { name: o.index }] } }),
      ];
    const { collMod: _coll, ...changes } = o;
    const before = (entry.o2 as Document | undefined)?.collectionOptions_old ?? {};
    return [
      base('modify', { ns, operationDescription: changes, stateBeforeChange: { collectionOptions: before } }),
    ];
  }

  private concerns(db: string, coll: string | undefined): boolean {
    if (this.spec.cluster) return !['admin', 'config', 'local'].includes(db);
    if (db !== this.spec.db) return false;
    return this.spec.coll === undefined || coll === undefined || coll === this.spec.coll;
  }

  private eventsOf(entry: Document): Document[] {
    const [db, ...rest] = String(entry.ns).split('.');
    const coll = rest.join('.');
    const base = (operationType: string, extra: Document = {}): Document => ({
      _id: resumeToken(entry.ts as Timestamp),
      operationType,
      clusterTime: entry.ts,
      ...(this.spec.expanded && entry.ui ? { collectionUUID: entry.ui } : {}),
      wallTime: entry.wall,
      ...extra,
    });
    if (entry.op === 'c') {
      const o = entry.o as Document;
      const ddl = this.spec.expanded ? this.expandedEvent(entry, db, base) : undefined;
      if (ddl) return ddl;
      if (o.drop !== undefined && this.concerns(db, String(o.drop))) {
        const drop = base('drop', { ns: { db, coll: String(o.drop) } });
        return this.spec.coll !== undefined ? [drop, base('invalidate')] : [drop];
      }
      if (o.renameCollection !== undefined) {
        const [fromDb, ...from] = String(o.renameCollection).split('.');
        const [toDb, ...to] = String(o.to).split('.');
        if (!this.concerns(fromDb, from.join('.'))) return [];
        const toNs = { db: toDb, coll: to.join('.') };
        const renamed = base('rename', {
          ns: { db: fromDb, coll: from.join('.') },
          to: toNs,
          ...(this.spec.expanded
            ? { operationDescription: { to: toNs, ...(o.dropTarget ? { dropTarget: o.dropTarget } : {}) } }
            : {}),
        });
        return this.spec.coll !== undefined ? [renamed, base('invalidate')] : [renamed];
      }
      if (o.dropDatabase !== undefined && (this.spec.cluster || db === this.spec.db)) {
        const dropped = base('dropDatabase', { ns: { db } });
        return this.spec.cluster ? [dropped] : [dropped, base('invalidate')];
      }
      return [];
    }
    if (!this.concerns(db, coll)) return [];
    const ns = { db, coll };
    const o = entry.o as Document;
    const before = (): Document => {
      if (this.spec.fullDocumentBeforeChange === 'off') return {};
      const preImage = this.oplog.preImage(entry.ts as Timestamp);
      if (!preImage && this.spec.fullDocumentBeforeChange === 'required')
        throw new CommandError(
          ErrorCodes.NoMatchingDocument,
          `Change stream was configured to require a pre-image for all update, delete and replace events, but the pre-image was not found for event: ${JSON.stringify(entry.o2 ?? o)}`,
        );
      return { fullDocumentBeforeChange: preImage ?? null };
    };
    switch (entry.op) {
      case 'i':
        return [base('insert', { ns, documentKey: { _id: o._id }, fullDocument: o })];
      case 'd':
        return [base('delete', { ns, documentKey: { _id: o._id }, ...before() })];
      case 'u': {
        const documentKey = { _id: (entry.o2 as Document)._id };
        if (o.$v !== 2) return [base('replace', { ns, documentKey, fullDocument: o, ...before() })];
        const diff = (o.diff ?? {}) as Document;
        const updateDescription = {
          updatedFields: { ...(diff.u ?? {}), ...(diff.i ?? {}) },
          removedFields: Object.keys(diff.d ?? {}),
          truncatedArrays: [],
        };
        // updateLookup: the document now; whenAvailable/required: the post-image, the document as of this event.
        const lookup =
          this.spec.fullDocument === 'default'
            ? undefined
            : this.spec.fullDocument === 'updateLookup'
              ? this.current(db, coll, documentKey._id)
              : (this.oplog.postImage(entry.ts as Timestamp) ?? null);
        if (this.spec.fullDocument === 'required' && lookup === null)
          throw new CommandError(
            ErrorCodes.NoMatchingDocument,
            `Change stream was configured to require a post-image for all update events, but the post-image was not found for event: ${JSON.stringify(documentKey)}`,
          );
        return [
          base('update', {
            ns,
            documentKey,
            updateDescription,
            ...(this.spec.fullDocument === 'default' ? {} : { fullDocument: lookup }),
            ...before(),
          }),
        ];
      }
    }
    return [];
  }

  /** `updateLookup`: the document as it is now (null when it is gone), as mongod looks it up. */
  private current(db: string, coll: string, id: unknown): Document | null {
    const collection = this.store.collection(db, coll, false);
    if (!collection) return null;
    for (const doc of collection.equalityLookup('_id')!(id)) return doc;
    return null;
  }
}
