import { type ChangeStream, type ChangeStreamDocument, type Document, Long, MongoServerError } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';
import { serverError } from '../support/server-error.ts';

// Issue 23 item 6: features users and their tools hit — `let` variables, renameCollection (with its change
// event), serverStatus's sections (mongostat), listCommands, connectionStatus, getLog, fsync, killOp, indexes that
// differ only by collation — answered as mongod 7.0 answers them. What the sandbox does not implement (capped
// limits, validators, views, a unique index under a collation) it refuses at creation; against a real mongod
// (ORPHAN_CLEANUP_TEST_URI) the same tests check mongod's enforcement instead.
let server: TestServer;
let dbName: string;
beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0' });
  dbName = server.dbName('features');
});
afterAll(async () => server?.stop());

const db = () => server.client.db(dbName);
const admin = () => server.client.db('admin');

describe('let variables', () => {
  it('reach $expr in find, aggregate, update, delete and findAndModify', async () => {
    const items = db().collection('items');
    await items.insertMany([
      { _id: 1, k: 'a' },
      { _id: 2, k: 'b' },
      { _id: 3, k: 'c' },
    ] as Document[]);
    const wanted = { $expr: { $eq: ['$k', '$$wanted'] } };
    expect(await items.find(wanted, { let: { wanted: 'b' } }).toArray()).toEqual([{ _id: 2, k: 'b' }]);
    expect(
      await items
        .aggregate([{ $match: wanted }, { $project: { k: 1, tag: '$$tag' } }], {
          let: { wanted: 'a', tag: 't' },
        })
        .toArray(),
    ).toEqual([{ _id: 1, k: 'a', tag: 't' }]);
    // A let value is an expression, evaluated once.
    expect(
      await items.find({ $expr: { $eq: ['$_id', '$$n'] } }, { let: { n: { $add: [1, 2] } } }).toArray(),
    ).toEqual([{ _id: 3, k: 'c' }]);
    const updated = await items.updateOne(wanted, { $set: { seen: true } }, { let: { wanted: 'c' } });
    expect(updated.modifiedCount).toBe(1);
    const found = await items.findOneAndUpdate(
      wanted,
      { $set: { again: true } },
      { let: { wanted: 'c' }, returnDocument: 'after' },
    );
    expect(found).toEqual({ _id: 3, k: 'c', seen: true, again: true });
    const deleted = await items.deleteMany(wanted, { let: { wanted: 'a' } });
    expect(deleted.deletedCount).toBe(1);
    expect((await items.find().toArray()).map((doc) => doc._id)).toEqual([2, 3]);
  });
});

describe('$set and $unset', () => {
  it('create embedded documents, keep siblings, count only real changes, and leave snapshots as they were', async () => {
    const docs = db().collection('settable');
    await docs.insertOne({ _id: 1, a: { keep: 1, x: 1 }, list: [1, 2], gone: true } as Document);
    const before = (await admin().command({ hello: 1 })).operationTime;
    const changed = await docs.updateOne({ _id: 1 } as Document, {
      $set: { 'a.x': 2, 'b.c.d': 'new', list: [3] },
      $unset: { gone: '', 'missing.field': '' },
    });
    expect(changed.modifiedCount).toBe(1);
    expect(await docs.findOne({ _id: 1 } as Document)).toEqual({
      _id: 1,
      a: { keep: 1, x: 2 },
      list: [3],
      b: { c: { d: 'new' } },
    });
    // The same values again, and an unset of what is not there: matched, not modified.
    const same = await docs.updateOne({ _id: 1 } as Document, {
      $set: { 'a.x': 2, list: [3] },
      $unset: { gone: '' },
    });
    expect({ matched: same.matchedCount, modified: same.modifiedCount }).toEqual({ matched: 1, modified: 0 });
    // A snapshot from before the update still reads the old document, nested parts included.
    const old = await db().command({
      find: 'settable',
      filter: { _id: 1 },
      readConcern: { level: 'snapshot', atClusterTime: before },
    });
    expect(old.cursor.firstBatch[0]).toEqual({ _id: 1, a: { keep: 1, x: 1 }, list: [1, 2], gone: true });
    // A path through a non-document is mongod's error, not a silent overwrite.
    const notViable = await serverError(docs.updateOne({ _id: 1 } as Document, { $set: { 'list.x.y': 1 } }));
    expect(notViable.code).toBe(28);
    expect(notViable.message).toBe("Cannot create field 'x' in element {list: [ 3 ]}");
    const upserted = await docs.updateOne({ _id: 2 } as Document, { $set: { 'p.q': 1 } }, { upsert: true });
    expect(upserted.upsertedId).toBe(2);
    expect(await docs.findOne({ _id: 2 } as Document)).toEqual({ _id: 2, p: { q: 1 } });
  });
});

describe('renameCollection', () => {
  it('moves the documents and indexes, refuses an existing target unless dropTarget, and is a rename event', async () => {
    const from = db().collection('before');
    await from.insertMany([{ n: 1 }, { n: 2 }]);
    await from.createIndex({ n: 1 }, { name: 'by_n' });
    const events: ChangeStreamDocument[] = [];
    const stream = from.watch();
    stream.on('change', (event) => events.push(event));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await admin().command({ renameCollection: `${dbName}.before`, to: `${dbName}.after` });
    const to = db().collection('after');
    expect(
      await to
        .find({}, { projection: { _id: 0 } })
        .sort({ n: 1 })
        .toArray(),
    ).toEqual([{ n: 1 }, { n: 2 }]);
    expect((await to.indexes()).map((index) => index.name)).toEqual(['_id_', 'by_n']);
    expect(await db().listCollections({ name: 'before' }).toArray()).toEqual([]);
    const deadline = Date.now() + 10_000;
    while (events.length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await stream.close();
    expect(events.map((event) => event.operationType)).toEqual(['rename', 'invalidate']);
    expect((events[0] as { to: unknown }).to).toEqual({ db: dbName, coll: 'after' });

    await db().collection('other').insertOne({ other: true });
    const exists = await serverError(
      admin().command({ renameCollection: `${dbName}.after`, to: `${dbName}.other` }),
    );
    expect(exists.code).toBe(48);
    await admin().command({ renameCollection: `${dbName}.after`, to: `${dbName}.other`, dropTarget: true });
    expect(await db().collection('other').countDocuments()).toBe(2);
    const missing = await serverError(
      admin().command({ renameCollection: `${dbName}.gone`, to: `${dbName}.x` }),
    );
    expect(missing.code).toBe(26);
  });
});

describe("what a server tells about itself (mongostat, mongosh's helpers)", () => {
  it('serverStatus counts operations, bytes and connections, and names the replica set', async () => {
    const before = await admin().command({ serverStatus: 1 });
    await db()
      .collection('counted')
      .insertMany([{ a: 1 }, { a: 2 }, { a: 3 }]);
    await db().collection('counted').find({}).toArray();
    const after = await admin().command({ serverStatus: 1 });
    expect(after.opcounters.insert - before.opcounters.insert).toBe(3);
    expect(after.opcounters.query - before.opcounters.query).toBeGreaterThanOrEqual(1);
    expect(after.network.bytesIn).toBeGreaterThan(before.network.bytesIn);
    expect(after.network.numRequests).toBeGreaterThan(before.network.numRequests);
    expect(after.connections.current).toBeGreaterThan(0);
    expect(after.connections.totalCreated).toBeGreaterThanOrEqual(after.connections.current);
    expect(after.repl.setName).toBe((await admin().command({ hello: 1 })).setName);
    expect(after.repl.isWritablePrimary).toBe(true);
    for (const section of ['opcountersRepl', 'mem', 'globalLock']) expect(after).toHaveProperty(section);
  });

  it('listCommands, connectionStatus, getLog and fsync answer in mongod shapes', async () => {
    const { commands } = await admin().command({ listCommands: 1 });
    for (const name of ['find', 'aggregate', 'renameCollection', 'listCommands', 'killOp'])
      expect(commands, name).toHaveProperty(name);
    const status = await admin().command({ connectionStatus: 1 });
    expect(status.authInfo.authenticatedUsers).toEqual([]);
    const logs = await admin().command({ getLog: '*' });
    expect(logs.names).toEqual(expect.arrayContaining(['global', 'startupWarnings']));
    expect(Array.isArray((await admin().command({ getLog: 'global' })).log)).toBe(true);
    expect((await admin().command({ fsync: 1 })).ok).toBe(1);
  });

  it('killOp stops a running command with Interrupted (11601)', async () => {
    const big = db().collection('big');
    await big.insertMany(Array.from({ length: 20_000 }, (_, i) => ({ i })));
    // A filter that sums 2,000 numbers per document: seconds of work on mongod, far more on the sandbox.
    const heavy = {
      $expr: {
        $lt: [
          { $reduce: { input: { $range: [0, 2000] }, initialValue: 0, in: { $add: ['$$value', '$$this'] } } },
          0,
        ],
      },
    };
    const slow = big
      .find(heavy, { comment: 'kill me', maxTimeMS: 120_000 })
      .toArray()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    let opid: unknown;
    const deadline = Date.now() + 10_000;
    while (opid === undefined && Date.now() < deadline) {
      const ops = await admin()
        .aggregate([{ $currentOp: {} }, { $match: { 'command.comment': 'kill me' } }])
        .toArray();
      opid = ops[0]?.opid;
    }
    expect(opid).toBeDefined();
    await admin().command({ killOp: 1, op: opid });
    const error = (await slow) as MongoServerError;
    expect(error).toBeInstanceOf(MongoServerError);
    expect(error.code).toBe(11601);
  });
});

describe('$out', () => {
  it('replaces the target with the results, keeping its indexes; a result without _id gets one', async () => {
    const source = db().collection('out_source');
    await source.insertMany([
      { _id: 1, k: 'a', n: 1 },
      { _id: 2, k: 'b', n: 2 },
      { _id: 3, k: 'c', n: 3 },
    ] as Document[]);
    const target = db().collection('out_target');
    await target.insertMany([{ _id: 'old', k: 'z' }] as Document[]);
    await target.createIndex({ k: 1 }, { unique: true, name: 'k_unique' });
    const reply = await source.aggregate([{ $match: { n: { $gte: 2 } } }, { $out: 'out_target' }]).toArray();
    expect(reply).toEqual([]);
    expect(await target.find().sort({ _id: 1 }).toArray()).toEqual([
      { _id: 2, k: 'b', n: 2 },
      { _id: 3, k: 'c', n: 3 },
    ]);
    expect((await target.indexes()).map((index) => index.name)).toContain('k_unique');
    // Into another database, by { db, coll }, and without _id in the results.
    const otherDb = server.client.db(`${dbName}_out`);
    await source
      .aggregate([{ $project: { _id: 0, k: 1 } }, { $out: { db: otherDb.databaseName, coll: 'copied' } }])
      .toArray();
    const copied = await otherDb.collection('copied').find().toArray();
    expect(copied.map((doc) => doc.k).sort()).toEqual(['a', 'b', 'c']);
    expect(copied.every((doc) => doc._id?._bsontype === 'ObjectId')).toBe(true);
    await otherDb.dropDatabase();
  });

  it('fails on a result that breaks the target index, leaving the target as it was; must be the last stage', async () => {
    const source = db().collection('out_dupes');
    await source.insertMany([
      { _id: 1, k: 'same' },
      { _id: 2, k: 'same' },
    ] as Document[]);
    const target = db().collection('out_kept');
    await target.insertOne({ _id: 'kept', k: 'x' } as Document);
    await target.createIndex({ k: 1 }, { unique: true });
    expect(await serverError(source.aggregate([{ $out: 'out_kept' }]).toArray())).toMatchObject({
      code: 11000,
    });
    expect(await target.find().toArray()).toEqual([{ _id: 'kept', k: 'x' }]);
    expect(
      await serverError(source.aggregate([{ $out: 'out_kept' }, { $match: {} }]).toArray()),
    ).toMatchObject({ code: 40601 });
    // No temporary collection is left behind.
    const names = (await db().listCollections().toArray()).map((c) => c.name);
    expect(names.filter((name) => name.startsWith('tmp.agg_out'))).toEqual([]);
  });
});

describe('$merge', () => {
  const seed = async (name: string, docs: Document[]) => {
    const coll = db().collection(name);
    await coll.insertMany(docs);
    return coll;
  };

  it('merges into matching documents by _id and inserts the rest, by default', async () => {
    const source = await seed('merge_src', [
      { _id: 1, a: 2 },
      { _id: 2, a: 3 },
    ]);
    const target = await seed('merge_dst', [{ _id: 1, a: 1, keep: true }]);
    expect(await source.aggregate([{ $merge: 'merge_dst' }]).toArray()).toEqual([]);
    expect(await target.find().sort({ _id: 1 }).toArray()).toEqual([
      { _id: 1, a: 2, keep: true },
      { _id: 2, a: 3 },
    ]);
  });

  it('replaces, keeps, discards or fails as whenMatched and whenNotMatched say', async () => {
    const source = await seed('merge_modes', [
      { _id: 1, a: 'new' },
      { _id: 2, a: 'new' },
    ]);
    const run = (whenMatched: string, whenNotMatched: string) =>
      source.aggregate([{ $merge: { into: 'merge_modes_dst', whenMatched, whenNotMatched } }]).toArray();
    const target = await seed('merge_modes_dst', [{ _id: 1, a: 'old', b: 1 }]);
    await run('replace', 'discard');
    expect(await target.find().toArray()).toEqual([{ _id: 1, a: 'new' }]);
    await target.replaceOne({ _id: 1 } as Document, { a: 'old' });
    await run('keepExisting', 'insert');
    expect(await target.find().sort({ _id: 1 }).toArray()).toEqual([
      { _id: 1, a: 'old' },
      { _id: 2, a: 'new' },
    ]);
    expect(await serverError(run('fail', 'insert'))).toMatchObject({ code: 11000 });
    await target.deleteMany({});
    expect(await serverError(run('merge', 'fail'))).toMatchObject({ code: 13113 });
  });

  it("matches on other fields only through a unique index on them, keeping the target's _id", async () => {
    const source = await seed('merge_on', [{ _id: 'src', k: 'x', v: 2 }]);
    const target = await seed('merge_on_dst', [{ _id: 'dst', k: 'x', v: 1 }]);
    const merge = { $merge: { into: 'merge_on_dst', on: 'k' } };
    expect(await serverError(source.aggregate([merge]).toArray())).toMatchObject({ code: 51183 });
    // A partial unique index does not make the join fields unique either.
    await target.createIndex(
      { k: 1 },
      { unique: true, name: 'k_partial', partialFilterExpression: { v: { $gt: 0 } } },
    );
    expect(await serverError(source.aggregate([merge]).toArray())).toMatchObject({ code: 51183 });
    await target.dropIndex('k_partial');
    await target.createIndex({ k: 1 }, { unique: true });
    // Never under a snapshot read (mongod refuses; nothing is written).
    await serverError(source.aggregate([merge], { readConcern: { level: 'snapshot' } }).toArray());
    expect(await target.find().toArray()).toEqual([{ _id: 'dst', k: 'x', v: 1 }]);
    await source.aggregate([{ $project: { _id: 0 } }, merge]).toArray();
    expect(await target.find().toArray()).toEqual([{ _id: 'dst', k: 'x', v: 2 }]);
    expect(await serverError(source.aggregate([merge, { $match: {} }]).toArray())).toMatchObject({
      code: 40601,
    });
  });
});

describe('database-level aggregate', () => {
  it('runs a pipeline over $documents', async () => {
    const docs = await db()
      .aggregate([
        { $documents: [{ x: 1 }, { x: 2 }, { x: 3 }] },
        { $match: { x: { $gte: 2 } } },
        { $project: { y: { $multiply: ['$x', 10] } } },
      ])
      .toArray();
    expect(docs).toEqual([{ y: 20 }, { y: 30 }]);
  });
});

describe('change streams with showExpandedEvents', () => {
  /** The events a stream delivers until `count` have come (10 s at most). */
  async function take(stream: ChangeStream, count: number): Promise<Document[]> {
    const events: Document[] = [];
    const deadline = Date.now() + 10_000;
    while (events.length < count && Date.now() < deadline) {
      const event = await stream.tryNext();
      if (event) events.push(event);
    }
    return events;
  }

  it('report create, createIndexes, dropIndexes and modify with the collection UUID; without it, none of them', async () => {
    const name = 'ddl_events';
    const expanded = db().watch([], { showExpandedEvents: true });
    const plain = db().watch([]);
    try {
      await expanded.tryNext();
      await plain.tryNext();
      await db().createCollection(name);
      const coll = db().collection(name);
      await coll.createIndex({ a: 1 }, { name: 'a_1' });
      await coll.insertOne({ a: 1 });
      await coll.dropIndex('a_1');
      await db().command({ collMod: name, changeStreamPreAndPostImages: { enabled: true } });
      await coll.insertOne({ a: 2 });
      const events = await take(expanded, 6);
      expect(events.map((e) => e.operationType)).toEqual([
        'create',
        'createIndexes',
        'insert',
        'dropIndexes',
        'modify',
        'insert',
      ]);
      for (const event of events) expect(event.ns).toEqual({ db: dbName, coll: name });
      expect(events[1].operationDescription.indexes[0]).toMatchObject({ name: 'a_1', key: { a: 1 } });
      expect(events[3].operationDescription.indexes[0]).toMatchObject({ name: 'a_1' });
      expect(events[4].operationDescription).toMatchObject({
        changeStreamPreAndPostImages: { enabled: true },
      });
      const uuid = events[2].collectionUUID;
      expect(uuid).toBeDefined();
      expect(events.every((e) => e.collectionUUID?.toHexString() === uuid.toHexString())).toBe(true);
      // Without the option: the two inserts only, no collectionUUID.
      const plainEvents = await take(plain, 2);
      expect(plainEvents.map((e) => e.operationType)).toEqual(['insert', 'insert']);
      expect(plainEvents[0].collectionUUID).toBeUndefined();
    } finally {
      await expanded.close();
      await plain.close();
    }
  });
});

describe('top, rs.status() and rs.conf() (mongotop, mongosh)', () => {
  it('top counts time and operations per collection under its lock, on admin only', async () => {
    const ns = `${dbName}.topped`;
    const before = (await admin().command({ top: 1 })).totals[ns];
    await db()
      .collection('topped')
      .insertMany([{ a: 1 }, { a: 2 }]);
    await db().collection('topped').find({ a: 1 }).toArray();
    await db()
      .collection('topped')
      .updateOne({ a: 1 }, { $set: { b: 1 } });
    await db().collection('topped').deleteOne({ a: 2 });
    const { totals } = await admin().command({ top: 1 });
    expect(totals.note).toBe('all times in microseconds');
    const usage = totals[ns];
    const grew = (field: string) => usage[field].count - (before?.[field].count ?? 0);
    expect(grew('insert')).toBe(1);
    expect(grew('queries')).toBeGreaterThanOrEqual(1);
    expect(grew('update')).toBe(1);
    expect(grew('remove')).toBe(1);
    expect(grew('writeLock')).toBeGreaterThanOrEqual(3);
    expect(grew('total')).toBeGreaterThanOrEqual(4);
    for (const field of [
      'total',
      'readLock',
      'writeLock',
      'queries',
      'getmore',
      'insert',
      'update',
      'remove',
      'commands',
    ])
      expect(Number(usage[field].time), field).toBeGreaterThanOrEqual(0);
    expect(await serverError(db().command({ top: 1 }))).toMatchObject({ code: 13 });
  });

  it("rs.status() gives the term and optimes: the last write applied, the commit point at or past a majority write's time", async () => {
    const session = server.client.startSession();
    try {
      await db()
        .collection('optimes')
        .insertOne({ a: 1 }, { session, writeConcern: { w: 'majority' } });
      const written = session.operationTime!;
      const status = await admin().command({ replSetGetStatus: 1 });
      expect(Number(status.term)).toBeGreaterThanOrEqual(1);
      const { appliedOpTime, lastCommittedOpTime, durableOpTime } = status.optimes;
      expect(appliedOpTime.ts.compare(written)).toBeGreaterThanOrEqual(0);
      expect(lastCommittedOpTime.ts.compare(written)).toBeGreaterThanOrEqual(0);
      expect(lastCommittedOpTime.ts.compare(appliedOpTime.ts)).toBeLessThanOrEqual(0);
      expect(durableOpTime.ts.compare(written)).toBeGreaterThanOrEqual(0);
      expect(Number(appliedOpTime.t)).toBe(Number(status.term));
      expect(status.optimes.lastAppliedWallTime).toBeInstanceOf(Date);
      const primary = status.members.find((m: Document) => m.stateStr === 'PRIMARY');
      expect(primary.optime.ts.compare(written)).toBeGreaterThanOrEqual(0);
      expect(primary.optimeDate).toBeInstanceOf(Date);
      expect(status.majorityVoteCount).toBeLessThanOrEqual(status.votingMembersCount);
    } finally {
      await session.endSession();
    }
  });

  it('local.system.replset holds the set configuration rs.conf() returns', async () => {
    const { config } = await admin().command({ replSetGetConfig: 1 });
    const [stored] = await server.client.db('local').collection('system.replset').find({}).toArray();
    expect(stored._id).toBe(config._id);
    expect(stored.members.map((m: Document) => m.host)).toEqual(config.members.map((m: Document) => m.host));
    expect(stored.version).toBe(config.version);
  });
});

describe('indexes and collation', () => {
  it('allows two indexes on one key that differ only by collation', async () => {
    const coll = db().collection('twice');
    await coll.createIndex({ name: 1 }, { name: 'name_simple' });
    await coll.createIndex({ name: 1 }, { name: 'name_en', collation: { locale: 'en', strength: 2 } });
    expect((await coll.indexes()).map((index) => index.name)).toEqual(['_id_', 'name_simple', 'name_en']);
  });

  it('a unique index under a case-insensitive collation: enforced by mongod, refused by the sandbox', async () => {
    const coll = db().collection('unique_ci');
    const creating = coll.createIndex(
      { name: 1 },
      { unique: true, collation: { locale: 'en', strength: 2 } },
    );
    if (server.isSandbox) {
      expect((await serverError(creating)).code).toBe(238);
      return;
    }
    await creating;
    await coll.insertOne({ name: 'ami' });
    expect((await serverError(coll.insertOne({ name: 'AMI' }))).code).toBe(11000);
  });
});

describe('collections the sandbox does not implement', () => {
  it('capped limits, validators and views: enforced by mongod, refused at creation by the sandbox', async () => {
    const attempts: [string, Document, () => Promise<void>][] = [
      [
        'capped',
        { capped: true, size: 4096, max: 2 },
        async () => {
          const capped = db().collection('capped');
          await capped.insertMany([{ n: 1 }, { n: 2 }, { n: 3 }]);
          expect(await capped.countDocuments()).toBe(2);
        },
      ],
      [
        'validated',
        { validator: { $jsonSchema: { required: ['a'] } } },
        async () => {
          expect((await serverError(db().collection('validated').insertOne({ b: 1 }))).code).toBe(121);
        },
      ],
      [
        'view',
        { viewOn: 'capped', pipeline: [{ $match: { n: 3 } }] },
        async () => {
          expect(await db().collection('view').countDocuments()).toBe(1);
        },
      ],
    ];
    for (const [name, options, enforced] of attempts) {
      const creating = db().createCollection(name, options);
      if (server.isSandbox) {
        const error = await serverError(creating);
        expect(error.code, name).toBe(238);
        expect(await db().listCollections({ name }).toArray(), name).toEqual([]);
      } else {
        await creating;
        await enforced();
      }
    }
  });
});

describe('the sandbox oplog, capped by sandboxOplogEntries (sandbox only)', () => {
  let own: TestServer;
  beforeAll(async () => {
    own = await startTestServer({ replicaSet: 'rs2', sandboxOnly: true });
  });
  afterAll(async () => own?.stop());

  it('keeps exactly the newest entries as writes roll the oldest off, in order', async () => {
    const oplog = own.client.db('local').collection('oplog.rs');
    await own.client.db('admin').command({ setParameter: 1, sandboxOplogEntries: 1000 });
    const coll = own.client.db(own.dbName('rolling')).collection('writes');
    for (let done = 0; done < 2500; done += 500)
      await coll.insertMany(Array.from({ length: 500 }, (_, i) => ({ n: done + i })));
    const entries = await oplog.find({ op: 'i', ns: coll.namespace }).toArray();
    const kept = await oplog.countDocuments({});
    expect(kept).toBe(1000);
    // The newest 1,000 writes, oldest first (a few entries of the set-up may be among them).
    const numbers = entries.map((entry) => entry.o.n as number);
    expect(numbers.at(-1)).toBe(2499);
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => 2500 - numbers.length + i));
    expect(numbers.length).toBeGreaterThan(990);
  });
});

// applyOps as mongod 7.0 runs it for mongorestore --oplogReplay (mongod's apply_ops.cpp and applyOperation_inlock,
// jstests apply_ops2.js and apply_ops_dups.js): one op at a time, not atomically.
describe('applyOps', () => {
  const ns = (name: string) => `${dbName}.${name}`;
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: MongoServerError) => ({ code: error.code, ...error.errorResponse }),
    );

  it('applies inserts (an existing _id replaced), $v: 2 diffs, upserts, deletes and no-ops, keeping types', async () => {
    const coll = db().collection<{ _id: number } & Document>('replayed');
    await coll.insertOne({ _id: 1, x: 'init' });
    const reply = await db().command({
      applyOps: [
        {
          op: 'i',
          ns: ns('replayed'),
          o: { _id: 2, x: 'new', n: Long.fromNumber(7), sub: { a: 1 }, arr: ['a'] },
        },
        { op: 'i', ns: ns('replayed'), o: { _id: 1, x: 'replaced' } },
        {
          op: 'u',
          ns: ns('replayed'),
          o2: { _id: 2 },
          o: {
            $v: 2,
            diff: { u: { x: 'diffed' }, i: { y: 1 }, ssub: { u: { a: 2 } }, sarr: { a: true, u1: 'b' } },
          },
        },
        { op: 'u', ns: ns('replayed'), o2: { _id: 3 }, o: { $v: 2, diff: { u: { x: 'upserted' } } } },
        { op: 'd', ns: ns('replayed'), o: { _id: 99 } },
        { op: 'n', ns: '', o: { msg: 'noop' } },
      ],
    });
    expect(reply).toMatchObject({ applied: 6, results: [true, true, true, true, true, true] });
    expect(await coll.find().sort({ _id: 1 }).toArray()).toEqual([
      { _id: 1, x: 'replaced' },
      { _id: 2, x: 'diffed', n: 7, sub: { a: 2 }, arr: ['a', 'b'], y: 1 },
      { _id: 3, x: 'upserted' },
    ]);
    const typed = await coll.findOne({ _id: 2 }, { promoteLongs: false });
    expect(((typed as Document).n as { _bsontype?: string })._bsontype).toBe('Long');
  });

  it('with alwaysUpsert false, an update of a missing document is false in results, the rest still applied', async () => {
    const coll = db().collection<{ _id: number } & Document>('no_upsert');
    await coll.insertOne({ _id: 1, x: 'init' });
    const error = await failure(
      db().command({
        applyOps: [
          { op: 'u', ns: ns('no_upsert'), o2: { _id: 1 }, o: { $v: 2, diff: { u: { x: 'a' } } } },
          { op: 'u', ns: ns('no_upsert'), o2: { _id: 50 }, o: { $v: 2, diff: { u: { x: 'b' } } } },
          { op: 'i', ns: ns('no_upsert'), o: { _id: 60 } },
        ],
        alwaysUpsert: false,
      }),
    );
    expect(error).toMatchObject({ code: 8, applied: 3, results: [true, false, true] });
    expect(await coll.find().sort({ _id: 1 }).toArray()).toEqual([{ _id: 1, x: 'a' }, { _id: 60 }]);
  });

  it('stops at an op that throws: a duplicate on another unique index, earlier ops applied', async () => {
    const coll = db().collection<{ _id: number } & Document>('dups');
    await coll.insertOne({ _id: 0, x: 1 });
    await coll.createIndex({ x: 1 }, { unique: true });
    const error = await failure(
      db().command({
        applyOps: [
          { op: 'i', ns: ns('dups'), o: { _id: 1, x: 0 } },
          { op: 'i', ns: ns('dups'), o: { _id: 2, x: 1 } },
          { op: 'i', ns: ns('dups'), o: { _id: 3, x: 3 } },
        ],
      }),
    );
    expect(error).toMatchObject({ code: 11000, applied: 2, results: [true, false] });
    expect((await coll.find().sort({ _id: 1 }).toArray()).map((d) => d._id)).toEqual([0, 1]);
  });

  it("applies command entries and a transaction's nested applyOps", async () => {
    const reply = await db().command({
      applyOps: [
        { op: 'c', ns: ns('$cmd'), o: { create: 'made' } },
        {
          op: 'c',
          ns: ns('$cmd'),
          o: { createIndexes: 'made', v: 2, key: { k: 1 }, name: 'k_1', unique: true },
        },
        { op: 'c', ns: ns('$cmd'), o: { applyOps: [{ op: 'i', ns: ns('made'), o: { _id: 1, k: 1 } }] } },
      ],
    });
    expect(reply).toMatchObject({ applied: 3, results: [true, true, true] });
    const made = db().collection('made');
    expect(await made.find().toArray()).toEqual([{ _id: 1, k: 1 }]);
    expect((await made.indexes()).find((index) => index.name === 'k_1')).toMatchObject({ unique: true });
  });
});
