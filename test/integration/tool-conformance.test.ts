import { Binary, Decimal128, type Document, ObjectId, Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

/**
 * The commands operators' own tools send, in the shapes they send them (mongosh's helpers, Compass's explain,
 * `db.currentOp()`), with mongod-shaped replies: written to pass against a real mongod too
 * (`ORPHAN_CLEANUP_TEST_URI`); the few sandbox-only facts are marked.
 */
let server: TestServer;
let dbName: string;

beforeAll(async () => {
  server = await startTestServer();
  dbName = server.dbName('tools');
  const coll = server.client.db(dbName).collection('content');
  await coll.insertMany([
    {
      title: 'a',
      ref: new ObjectId(),
      blob: new Binary(Buffer.from('ab')),
      score: 1.5,
      price: Decimal128.fromString('9.99'),
    },
    { title: 'b', ref: 'not-an-id' },
    { title: 'c' },
  ]);
  await coll.createIndex({ title: 1 });
});
afterAll(async () => server?.stop());

const db = () => server.client.db(dbName);

describe('mongosh helpers', () => {
  it('db.coll.stats(), totalSize() and dataSize() read $collStats', async () => {
    // What mongosh 2.x sends for db.content.stats().
    const [stats] = await db()
      .collection('content')
      .aggregate([{ $collStats: { storageStats: { scale: 1 } } }])
      .toArray();
    expect(stats.ns).toBe(`${dbName}.content`);
    expect(stats.storageStats).toMatchObject({ count: 3, nindexes: 2 });
    expect(stats.storageStats.size).toBeGreaterThan(0);
    expect(stats.storageStats.indexSizes).toHaveProperty('title_1');
    const [counted] = await db()
      .collection('content')
      .aggregate([{ $collStats: { count: {} } }])
      .toArray();
    expect(counted.count).toBe(3);
    await expect(
      db()
        .collection('content')
        .aggregate([{ $match: {} }, { $collStats: { count: {} } }])
        .toArray(),
    ).rejects.toThrow(/\$collStats/);
  });

  it('db.currentOp() lists the operations running, its own included', async () => {
    const ops = await server.client
      .db('admin')
      .aggregate([
        { $currentOp: { allUsers: true, idleConnections: false, truncateOps: false } },
        { $match: {} },
      ])
      .toArray();
    const own = ops.find((op) => op.command?.aggregate === 1);
    expect(own).toMatchObject({ type: 'op', active: true });
    expect(typeof own?.opid).toBe('number');
    await expect(
      db()
        .aggregate([{ $currentOp: {} }])
        .toArray(),
    ).rejects.toThrow(/admin/);
  });

  it('show dbs lists admin, config and local', async () => {
    const { databases } = await server.client.db('admin').command({ listDatabases: 1, nameOnly: true });
    const names = databases.map((d: { name: string }) => d.name);
    expect(names).toEqual(expect.arrayContaining(['admin', 'config', 'local', dbName]));
  });

  it('hostInfo, getCmdLineOpts, profile (read, level 0) and validate answer as mongod does', async () => {
    const admin = server.client.db('admin');
    expect((await admin.command({ hostInfo: 1 })).system).toMatchObject({ numCores: expect.any(Number) });
    expect((await admin.command({ getCmdLineOpts: 1 })).argv).toEqual(expect.any(Array));
    expect(await db().command({ profile: -1 })).toMatchObject({ was: 0, ok: 1 });
    const validated = await db().command({ validate: 'content' });
    expect(validated).toMatchObject({ valid: true, nrecords: 3, ns: `${dbName}.content` });
    if (server.isSandbox)
      // Sandbox-only: it has no profiler to switch on, and says so instead of pretending.
      await expect(db().command({ profile: 2 })).rejects.toThrow(/no profiler/);
  });
});

describe('explain', () => {
  it('find: the index used, IDHACK for an _id lookup, COLLSCAN without an index, and what it examined', async () => {
    const coll = db().collection('content');
    const byTitle = await coll.find({ title: 'a' }).explain('executionStats');
    expect(byTitle.queryPlanner.winningPlan).toMatchObject({
      stage: 'FETCH',
      inputStage: { stage: 'IXSCAN', indexName: 'title_1', keyPattern: { title: 1 } },
    });
    expect(byTitle.executionStats).toMatchObject({
      nReturned: 1,
      totalKeysExamined: 1,
      totalDocsExamined: 1,
    });
    const [first] = await coll.find({}).limit(1).toArray();
    expect((await coll.find({ _id: first._id }).explain()).queryPlanner.winningPlan.stage).toBe('IDHACK');
    const scan = await coll.find({ score: 1.5 }).explain('executionStats');
    expect(scan.queryPlanner.winningPlan.stage).toBe('COLLSCAN');
    expect(scan.executionStats).toMatchObject({ nReturned: 1, totalDocsExamined: 3 });
  });

  it('aggregate and count are planned; an explained delete deletes nothing', async () => {
    const coll = db().collection('content');
    const aggregate = await coll
      .aggregate([{ $match: { title: 'b' } }, { $project: { title: 1 } }])
      .explain();
    const planner = aggregate.queryPlanner ?? aggregate.stages?.[0]?.$cursor?.queryPlanner;
    expect(planner.winningPlan).toMatchObject({ stage: 'FETCH', inputStage: { indexName: 'title_1' } });
    const count = await db().command({
      explain: { count: 'content', query: { title: 'c' } },
      verbosity: 'queryPlanner',
    });
    expect(count.queryPlanner.winningPlan.stage).toBe('COUNT');
    const deleted = await db().command({
      explain: { delete: 'content', deletes: [{ q: { title: 'a' }, limit: 0 }] },
      verbosity: 'executionStats',
    });
    expect(deleted.queryPlanner.winningPlan.stage).toBe('DELETE');
    expect(await coll.countDocuments()).toBe(3);
  });
});

describe('aggregation answers as mongod', () => {
  it('$type names every BSON type the way mongod does', async () => {
    const rows = await db()
      .collection('content')
      .aggregate([
        { $match: { title: 'a' } },
        {
          $project: {
            _id: 0,
            ref: { $type: '$ref' },
            blob: { $type: '$blob' },
            score: { $type: '$score' },
            price: { $type: '$price' },
            title: { $type: '$title' },
            none: { $type: '$nothing' },
          },
        },
      ])
      .toArray();
    expect(rows).toEqual([
      {
        ref: 'objectId',
        blob: 'binData',
        score: 'double',
        price: 'decimal',
        title: 'string',
        none: 'missing',
      },
    ]);
  });

  it('$project puts _id first, kept fields in document order, new fields after', async () => {
    const [row] = await db()
      .collection('content')
      .aggregate([
        { $match: { title: 'a' } },
        { $project: { score: 1, title: 1, label: { $concat: ['$title', '!'] } } },
      ])
      .toArray();
    expect(Object.keys(row)).toEqual(['_id', 'title', 'score', 'label']);
  });
});

describe('replica-set mode: the oplog and a secondary', () => {
  let rs: TestServer;
  beforeAll(async () => {
    rs = await startTestServer({ replicaSet: 'rs0', secondaryPort: 0, sandboxOnly: true });
  });
  afterAll(async () => rs?.stop());

  it('records every applied write in local.oplog.rs as mongod does, committed transactions only', async () => {
    const name = rs.dbName('oplog');
    const coll = rs.client
      .db(name)
      .collection<{ _id: ObjectId | string; [field: string]: unknown }>('content');
    const oplog = rs.client.db('local').collection('oplog.rs');
    const [start] = await oplog.find({}).sort({ $natural: -1 }).limit(1).toArray();
    const kept = new ObjectId();
    await coll.insertOne({ _id: kept, title: 'a', n: 1 });
    await coll.updateOne({ _id: kept }, { $set: { title: 'b' }, $unset: { n: '' } });
    await coll.replaceOne({ _id: kept }, { title: 'c' });
    const session = rs.client.startSession();
    try {
      await session.withTransaction(async () => {
        await coll.insertOne({ _id: 'in-txn' }, { session });
      });
      session.startTransaction();
      await coll.insertOne({ _id: 'aborted' }, { session });
      await session.abortTransaction();
    } finally {
      await session.endSession();
    }
    await coll.deleteOne({ _id: kept });
    const entries = await oplog
      .find({ ns: `${name}.content`, ...(start ? { ts: { $gt: start.ts } } : {}) })
      .sort({ $natural: 1 })
      .toArray();
    expect(entries.map((e) => e.op)).toEqual(['i', 'u', 'u', 'i', 'd']);
    const [insert, update, replace, inTxn, remove] = entries;
    expect(insert).toMatchObject({ o: { _id: kept, title: 'a', n: 1 } });
    expect(insert.ts._bsontype).toBe('Timestamp');
    expect(insert.ui._bsontype).toBe('Binary');
    expect(insert.wall).toBeInstanceOf(Date);
    expect(update).toMatchObject({
      o: { $v: 2, diff: { u: { title: 'b' }, d: { n: false } } },
      o2: { _id: kept },
    });
    expect(replace).toMatchObject({ o: { _id: kept, title: 'c' }, o2: { _id: kept } });
    expect(inTxn.o).toEqual({ _id: 'in-txn' });
    expect(remove.o).toEqual({ _id: kept });
    expect(entries.every((e, i) => i === 0 || e.ts.compare(entries[i - 1].ts) > 0)).toBe(true);
    await expect(oplog.insertOne({ op: 'n' })).rejects.toThrow(/cannot write to 'local.oplog.rs'/);
  });

  it('answers readPreference=secondary on its secondary port, which refuses writes as not primary', async () => {
    const name = rs.dbName('secondary');
    await rs.client
      .db(name)
      .collection<{ _id: number; title?: string }>('content')
      .insertOne({ _id: 1, title: 'x' });
    const hello = await rs.client.db('admin').command({ hello: 1 });
    expect(hello.hosts).toHaveLength(2);
    const secondaryHost = hello.hosts.find((host: string) => host !== hello.primary);
    const { MongoClient } = await import('mongodb');
    const viaSet = new MongoClient(`${rs.uri}${rs.uri.includes('?') ? '&' : '?'}readPreference=secondary`);
    const direct = new MongoClient(`mongodb://${secondaryHost}/?directConnection=true`);
    try {
      const found = await viaSet.db(name).collection<{ _id: number }>('content').findOne({ _id: 1 });
      expect(found).toMatchObject({ title: 'x' });
      expect((await direct.db('admin').command({ hello: 1 })).secondary).toBe(true);
      expect((await direct.db('admin').command({ replSetGetStatus: 1 })).myState).toBe(2);
      await expect(
        direct.db(name).collection<{ _id: number }>('content').insertOne({ _id: 2 }),
      ).rejects.toThrow(/not primary/);
    } finally {
      await viaSet.close();
      await direct.close();
    }
  });

  it("change streams: every event in order with mongod's shapes, resumable after any event, invalidated by a drop", async () => {
    const name = rs.dbName('streams');
    const coll = rs.client.db(name).collection<{ _id: number; [field: string]: unknown }>('content');
    await coll.insertOne({ _id: 0 });
    const stream = coll.watch([], { fullDocument: 'updateLookup', maxAwaitTimeMS: 100 });
    // The first (empty) batch positions the stream before the writes.
    expect(await stream.tryNext()).toBeNull();
    await coll.insertOne({ _id: 1, title: 'a', n: 1 });
    await coll.updateOne({ _id: 1 }, { $set: { title: 'b' }, $unset: { n: '' } });
    await coll.replaceOne({ _id: 1 }, { title: 'c' });
    await coll.deleteOne({ _id: 1 });
    await coll.drop();
    const events = [];
    for (let i = 0; i < 6; i++) events.push(await stream.next());
    expect(events.map((e) => e.operationType)).toEqual([
      'insert',
      'update',
      'replace',
      'delete',
      'drop',
      'invalidate',
    ]);
    const [insert, update, replace, remove] = events as Document[];
    expect(insert).toMatchObject({
      ns: { db: name, coll: 'content' },
      documentKey: { _id: 1 },
      fullDocument: { _id: 1, title: 'a', n: 1 },
    });
    expect(insert.clusterTime._bsontype).toBe('Timestamp');
    expect(update.updateDescription).toEqual({
      updatedFields: { title: 'b' },
      removedFields: ['n'],
      truncatedArrays: [],
    });
    // updateLookup reads the document as it is when the event is read (as on mongod): by then deleted.
    expect(update.fullDocument).toBeNull();
    expect(replace.fullDocument).toEqual({ _id: 1, title: 'c' });
    expect(remove.documentKey).toEqual({ _id: 1 });
    expect(stream.closed).toBe(true);
    // Resumed after the update: the rest, once each.
    const resumed = coll.watch([], { resumeAfter: update._id, maxAwaitTimeMS: 100 });
    const rest = [];
    for (let i = 0; i < 4; i++) rest.push((await resumed.next()).operationType);
    expect(rest).toEqual(['replace', 'delete', 'drop', 'invalidate']);
    await resumed.close();
    // After an invalidate, startAfter opens a new stream on the re-created collection.
    const after = coll.watch([], { startAfter: events[5]._id, maxAwaitTimeMS: 100 });
    await coll.insertOne({ _id: 2 });
    expect(await after.next()).toMatchObject({ operationType: 'insert', documentKey: { _id: 2 } });
    await after.close();
  });

  it('change streams: a $match after the stage filters events; a lost resume point and a standalone are refused', async () => {
    const name = rs.dbName('filtered');
    const coll = rs.client.db(name).collection<{ _id: number }>('content');
    const inserts = coll.watch([{ $match: { operationType: 'delete' } }], { maxAwaitTimeMS: 100 });
    expect(await inserts.tryNext()).toBeNull();
    await coll.insertOne({ _id: 1 });
    await coll.deleteOne({ _id: 1 });
    expect(await inserts.next()).toMatchObject({ operationType: 'delete', documentKey: { _id: 1 } });
    await inserts.close();
    // A token from before this oplog began: its history is gone (mongod: ChangeStreamHistoryLost, 286).
    const stale = coll.watch([], { resumeAfter: { _data: '820000000100000001' } });
    await expect(stale.next()).rejects.toMatchObject({ code: 286 });
    await stale.close();
    const standalone = server.client.db(dbName).collection('content').watch();
    await expect(standalone.next()).rejects.toMatchObject({ code: 40573 });
    await standalone.close();
  });

  it('change streams: pre-images of updates, replacements and deletes where the collection keeps them', async () => {
    const name = rs.dbName('preimages');
    const db = rs.client.db(name);
    await db.createCollection('children', { changeStreamPreAndPostImages: { enabled: true } });
    await db.createCollection('plain');
    const children = db.collection<{ _id: number; [field: string]: unknown }>('children');
    const plain = db.collection<{ _id: number; [field: string]: unknown }>('plain');
    const stream = db.watch([], { fullDocumentBeforeChange: 'whenAvailable', maxAwaitTimeMS: 100 });
    expect(await stream.tryNext()).toBeNull();
    await children.insertOne({ _id: 1, ref: 'a' });
    await children.updateOne({ _id: 1 }, { $set: { ref: 'b' } });
    await children.deleteOne({ _id: 1 });
    await plain.insertOne({ _id: 1 });
    await plain.deleteOne({ _id: 1 });
    const events = [];
    for (let i = 0; i < 5; i++) events.push(await stream.next());
    await stream.close();
    expect(events.map((e) => [e.operationType, (e as Document).fullDocumentBeforeChange])).toEqual([
      ['insert', undefined],
      ['update', { _id: 1, ref: 'a' }],
      ['delete', { _id: 1, ref: 'b' }],
      ['insert', undefined],
      ['delete', null],
    ]);
    // Switched on later with collMod, as an operator would for the watcher.
    await db.command({ collMod: 'plain', changeStreamPreAndPostImages: { enabled: true } });
    const required = plain.watch([], { fullDocumentBeforeChange: 'required', maxAwaitTimeMS: 100 });
    expect(await required.tryNext()).toBeNull();
    await plain.insertOne({ _id: 2, ref: 'c' });
    await plain.deleteOne({ _id: 2 });
    await required.next();
    expect(await required.next()).toMatchObject({
      operationType: 'delete',
      fullDocumentBeforeChange: { _id: 2, ref: 'c' },
    });
    await required.close();
  });

  it('change streams: post-images are the document as of each update (whenAvailable), updateLookup the document now', async () => {
    const db = rs.client.db(rs.dbName('postimages'));
    await db.createCollection('children', { changeStreamPreAndPostImages: { enabled: true } });
    const children = db.collection<{ _id: number; ref?: string }>('children');
    const asOfEvent = children.watch([], { fullDocument: 'whenAvailable', maxAwaitTimeMS: 100 });
    const lookup = children.watch([], { fullDocument: 'updateLookup', maxAwaitTimeMS: 100 });
    expect(await asOfEvent.tryNext()).toBeNull();
    expect(await lookup.tryNext()).toBeNull();
    await children.insertOne({ _id: 1, ref: 'a' });
    await children.updateOne({ _id: 1 }, { $set: { ref: 'b' } });
    await children.updateOne({ _id: 1 }, { $set: { ref: 'c' } });
    const seen = async (stream: typeof lookup) => {
      const events = [];
      for (let i = 0; i < 3; i++) events.push(await stream.next());
      await stream.close();
      return events.map((e) => (e as Document).fullDocument?.ref);
    };
    expect(await seen(asOfEvent)).toEqual(['a', 'b', 'c']);
    expect(await seen(lookup)).toEqual(['a', 'c', 'c']);
  });

  it('snapshot reads: atClusterTime is returned and kept for the session, which reads as of it after later writes', async () => {
    const db = rs.client.db(rs.dbName('snapshots'));
    const coll = db.collection<{ _id: number; n: number }>('things');
    await coll.insertMany([
      { _id: 1, n: 1 },
      { _id: 2, n: 2 },
    ]);
    const session = rs.client.startSession({ snapshot: true });
    try {
      expect(await coll.find({}, { session }).toArray()).toHaveLength(2);
      const at = (session as unknown as { snapshotTime?: Timestamp }).snapshotTime;
      expect(at).toBeInstanceOf(Timestamp);
      // A write after the snapshot: the session still reads as of its time, from the history.
      await coll.insertOne({ _id: 3, n: 3 });
      expect(await coll.find({}, { session }).toArray()).toHaveLength(2);
    } finally {
      await session.endSession();
    }
    // The aggregate form the watcher uses, with its time.
    const counting = rs.client.startSession({ snapshot: true });
    try {
      const [{ n }] = await coll.aggregate<{ n: number }>([{ $count: 'n' }], { session: counting }).toArray();
      expect(n).toBe(3);
      expect((counting as unknown as { snapshotTime?: Timestamp }).snapshotTime).toBeInstanceOf(Timestamp);
    } finally {
      await counting.endSession();
    }
    await expect(db.command({ find: 'things', readConcern: { level: 'eventual' } })).rejects.toMatchObject({
      code: 9,
    });
    // Index bounds on a snapshot read are honoured, not dropped.
    const bounded = await db.command({
      find: 'things',
      hint: { _id: 1 },
      min: { _id: 2 },
      readConcern: { level: 'snapshot' },
    });
    expect(bounded.cursor.firstBatch.map((d: { _id: number }) => d._id)).toEqual([2, 3]);
  });
});

describe('snapshot reads on a standalone', () => {
  let standalone: TestServer;
  beforeAll(async () => {
    // Sandbox only: the suite's server may be a real replica set.
    standalone = await startTestServer({ sandboxOnly: true });
  });
  afterAll(async () => standalone?.stop());

  it('are refused: readConcern snapshot needs a replica set', async () => {
    await expect(
      standalone.client.db('x').command({ find: 'content', readConcern: { level: 'snapshot' } }),
    ).rejects.toMatchObject({ code: 20 });
  });
});
