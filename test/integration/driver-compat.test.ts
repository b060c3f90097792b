import { type Db, Long, MongoClient, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';
import { serverError } from '../support/server-error.ts';

// Test documents use plain numbers and strings as _id.
type Loose = any;

let server: TestServer;
let db: Db;

beforeAll(async () => {
  server = await startTestServer();
  db = server.client.db(server.dbName('compat'));
});
afterAll(async () => server?.stop());

describe('handshake', () => {
  it('answers hello with the limits drivers rely on', async () => {
    const hello = await db.admin().command({ hello: 1, helloOk: true });
    expect(hello.isWritablePrimary).toBe(true);
    expect(hello.helloOk).toBe(true);
    expect(hello.maxBsonObjectSize).toBe(16 * 1024 * 1024);
    expect(hello.maxMessageSizeBytes).toBe(48_000_000);
    expect(hello.maxWriteBatchSize).toBe(100_000);
    expect(hello.maxWireVersion).toBeGreaterThanOrEqual(21);
    expect(hello.localTime).toBeInstanceOf(Date);
    expect(typeof hello.connectionId).toBe('number');
    const legacy = await db.admin().command({ isMaster: 1 });
    expect(legacy.ismaster).toBe(true);
  });

  it('answers ping and buildInfo', async () => {
    expect((await db.admin().command({ ping: 1 })).ok).toBe(1);
    const info = await db.admin().command({ buildInfo: 1 });
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.versionArray).toHaveLength(4);
  });

  it('refuses an unknown command with CommandNotFound', async () => {
    const error = await serverError(db.command({ frobnicate: 1 }));
    expect(error.code).toBe(59);
    expect(error.codeName).toBe('CommandNotFound');
  });
});

describe('inserts and cursors', () => {
  it('inserts 100k documents in kind-1 sequences and drains them across many getMores', async () => {
    const coll = db.collection<Loose>('big');
    const docs = Array.from({ length: 100_000 }, (_, n) => ({ _id: n, n, tag: `t${n % 7}` }));
    const result = await coll.insertMany(docs);
    expect(result.insertedCount).toBe(100_000);
    expect(await coll.countDocuments()).toBe(100_000);
    expect(await coll.estimatedDocumentCount()).toBe(100_000);
    const seen = new Set<number>();
    for await (const doc of coll.find({}, { batchSize: 997 })) seen.add(doc._id as unknown as number);
    expect(seen.size).toBe(100_000);
    const firstBatch = await db.command({ find: 'big', filter: {} });
    expect(firstBatch.cursor.firstBatch).toHaveLength(101);
    expect(Number(firstBatch.cursor.id)).toBeGreaterThan(2 ** 32);
    await db.command({ killCursors: 'big', cursors: [firstBatch.cursor.id] });
  });

  it('says CursorNotFound for an unknown or killed cursor', async () => {
    const error = await serverError(db.command({ getMore: Long.fromNumber(123456789), collection: 'big' }));
    expect(error.code).toBe(43);
    const opened = await db.command({ find: 'big', filter: {}, batchSize: 2 });
    const killed = await db.command({ killCursors: 'big', cursors: [opened.cursor.id] });
    expect(killed.cursorsKilled).toHaveLength(1);
    expect((await serverError(db.command({ getMore: opened.cursor.id, collection: 'big' }))).code).toBe(43);
  });

  it('honours filter, projection, sort, skip, limit and singleBatch', async () => {
    const coll = db.collection<Loose>('big');
    const page = await coll
      .find({ tag: 't3' }, { projection: { n: 1 } })
      .sort({ n: -1 })
      .skip(2)
      .limit(3)
      .toArray();
    // n % 7 === 3, descending from 99,998: skip 99,998 and 99,991.
    expect(page.map((d) => d.n)).toEqual([99_984, 99_977, 99_970]);
    expect(page.every((d) => Object.keys(d).join() === '_id,n')).toBe(true);
    const single = await db.command({ find: 'big', filter: {}, batchSize: 5, singleBatch: true });
    expect(single.cursor.firstBatch).toHaveLength(5);
    expect(Number(single.cursor.id)).toBe(0);
  });

  it('keeps the stored field order in projections and exclusions', async () => {
    const coll = db.collection<Loose>('order');
    await coll.insertOne({ _id: 1, z: 1, a: 2, m: { y: 1, b: 2 }, k: 3 });
    const included = await coll.findOne({ _id: 1 }, { projection: { k: 1, z: 1, 'm.b': 1 } });
    expect(Object.keys(included!)).toEqual(['_id', 'z', 'm', 'k']);
    expect(included!.m).toEqual({ b: 2 });
    const excluded = await coll.findOne({ _id: 1 }, { projection: { a: 0, _id: 0 } });
    expect(Object.keys(excluded!)).toEqual(['z', 'm', 'k']);
  });

  it('sorts mixed types in BSON comparison order and never equates a string with an ObjectId', async () => {
    const coll = db.collection<Loose>('mixed');
    const oid = new ObjectId('507f1f77bcf86cd799439011');
    await coll.insertMany([
      { _id: 1, v: oid },
      { _id: 2, v: '507f1f77bcf86cd799439011' },
      { _id: 3, v: 10 },
      { _id: 4, v: null },
      { _id: 5, v: true },
      { _id: 6, v: new Date(0) },
      { _id: 7, v: { a: 1 } },
      { _id: 8 },
      { _id: 9, v: 2.5 },
    ]);
    const order = (await coll.find({}).sort({ v: 1, _id: 1 }).toArray()).map((d) => d._id);
    expect(order).toEqual([4, 8, 9, 3, 2, 7, 1, 5, 6]);
    expect((await coll.find({ v: oid }).toArray()).map((d) => d._id)).toEqual([1]);
    expect((await coll.find({ v: '507f1f77bcf86cd799439011' }).toArray()).map((d) => d._id)).toEqual([2]);
    expect((await coll.find({ v: { $in: [oid] } }).toArray()).map((d) => d._id)).toEqual([1]);
  });
});

describe('indexes', () => {
  it('enforces unique indexes with E11000 and lists and drops them', async () => {
    const coll = db.collection<Loose>('uniq');
    await coll.createIndex({ email: 1 }, { unique: true });
    await coll.insertOne({ email: 'a@x' });
    const error = await serverError(coll.insertOne({ email: 'a@x' }));
    expect(error.code).toBe(11000);
    const unordered = await coll
      .insertMany([{ email: 'b@x' }, { email: 'a@x' }, { email: 'c@x' }], { ordered: false })
      .catch((e) => e);
    expect(unordered.code).toBe(11000);
    expect(await coll.countDocuments()).toBe(3);
    const names = (await coll.listIndexes().toArray()).map((i) => i.name);
    expect(names).toEqual(['_id_', 'email_1']);
    const idDup = await serverError(coll.insertOne({ _id: (await coll.findOne({}))!._id, email: 'z@x' }));
    expect(idDup.code).toBe(11000);
    await coll.dropIndex('email_1');
    await coll.insertOne({ email: 'a@x' });
    expect(await coll.countDocuments({ email: 'a@x' })).toBe(2);
  });

  it('answers $in lookups on _id and on an indexed field', async () => {
    const coll = db.collection<Loose>('big');
    const ids = Array.from({ length: 1000 }, (_, i) => i * 50);
    const found = await coll.find({ _id: { $in: ids } }, { projection: { _id: 1 } }).toArray();
    expect(found).toHaveLength(1000);
    await coll.createIndex({ n: 1 });
    expect(await coll.countDocuments({ n: { $in: [5, 6, 7, 100_000_000] } })).toBe(3);
  });
});

describe('writes', () => {
  it('updates with multi, upsert and arrayFilters', async () => {
    const coll = db.collection<Loose>('upd');
    await coll.insertMany([
      { _id: 1, g: 'a', grades: [80, 95, 100] },
      { _id: 2, g: 'a', grades: [60] },
      { _id: 3, g: 'b', grades: [] },
    ]);
    const many = await coll.updateMany({ g: 'a' }, { $set: { seen: true } });
    expect([many.matchedCount, many.modifiedCount]).toEqual([2, 2]);
    const up = await coll.updateOne(
      { _id: 9 },
      { $set: { g: 'z' }, $setOnInsert: { created: 1 } },
      { upsert: true },
    );
    expect(up.upsertedId).toBe(9);
    expect(await coll.findOne({ _id: 9 })).toEqual({ _id: 9, g: 'z', created: 1 });
    await coll.updateOne(
      { _id: 1 },
      { $set: { 'grades.$[high]': 0 } },
      { arrayFilters: [{ high: { $gte: 95 } }] },
    );
    expect((await coll.findOne({ _id: 1 }))!.grades).toEqual([80, 0, 0]);
    const replaced = await coll.replaceOne({ _id: 3 }, { g: 'c' });
    expect(replaced.modifiedCount).toBe(1);
    expect(await coll.findOne({ _id: 3 })).toEqual({ _id: 3, g: 'c' });
  });

  it('deletes one or many and runs findAndModify', async () => {
    const coll = db.collection<Loose>('del');
    await coll.insertMany(Array.from({ length: 10 }, (_, i) => ({ _id: i, even: i % 2 === 0 })));
    expect((await coll.deleteOne({ even: true })).deletedCount).toBe(1);
    expect((await coll.deleteMany({ even: true })).deletedCount).toBe(4);
    const before = await coll.findOneAndUpdate(
      { _id: 1 },
      { $inc: { hits: 1 } },
      { returnDocument: 'before' },
    );
    expect(before).toEqual({ _id: 1, even: false });
    const after = await coll.findOneAndUpdate({ _id: 1 }, { $inc: { hits: 1 } }, { returnDocument: 'after' });
    expect(after!.hits).toBe(2);
    const removed = await coll.findOneAndDelete({ _id: 3 });
    expect(removed!._id).toBe(3);
    expect(await coll.countDocuments()).toBe(4);
  });
});

describe('aggregation and counting', () => {
  it('runs $match, $group, $sort, $project, $unwind, $count and $lookup', async () => {
    const orders = db.collection<Loose>('orders');
    const items = db.collection<Loose>('items');
    await items.insertMany([
      { _id: 'pen', price: 2 },
      { _id: 'ink', price: 5 },
    ]);
    await orders.insertMany([
      { _id: 1, who: 'ann', lines: ['pen', 'ink'] },
      { _id: 2, who: 'bob', lines: ['pen'] },
      { _id: 3, who: 'ann', lines: ['ink'] },
    ]);
    const perPerson = await orders
      .aggregate([{ $unwind: '$lines' }, { $group: { _id: '$who', n: { $sum: 1 } } }, { $sort: { _id: 1 } }])
      .toArray();
    expect(perPerson).toEqual([
      { _id: 'ann', n: 3 },
      { _id: 'bob', n: 1 },
    ]);
    const joined = await orders
      .aggregate([
        { $match: { _id: 2 } },
        { $lookup: { from: 'items', localField: 'lines', foreignField: '_id', as: 'priced' } },
        { $project: { _id: 0, priced: 1 } },
      ])
      .toArray();
    expect(joined).toEqual([{ priced: [{ _id: 'pen', price: 2 }] }]);
    const counted = await orders.aggregate([{ $match: { who: 'ann' } }, { $count: 'n' }]).toArray();
    expect(counted).toEqual([{ n: 2 }]);
  });

  it('samples without replacement', async () => {
    const sample = await db
      .collection<Loose>('big')
      .aggregate([{ $sample: { size: 500 } }])
      .toArray();
    expect(sample).toHaveLength(500);
    expect(new Set(sample.map((d) => d._id)).size).toBe(500);
  });

  it('counts and distincts, and refuses distinct results over 16 MB', async () => {
    const coll = db.collection<Loose>('big');
    expect(await coll.countDocuments({ tag: 't1' })).toBe(14_286);
    expect((await coll.distinct('tag')).sort()).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
    const wide = db.collection<Loose>('wide');
    const blob = 'x'.repeat(1000);
    for (let batch = 0; batch < 4; batch++) {
      await wide.insertMany(Array.from({ length: 5000 }, (_, i) => ({ v: `${batch}-${i}-${blob}` })));
    }
    const error = await serverError(wide.distinct('v'));
    expect(error.code).toBe(17217);
  });
});

describe('limits and refusals', () => {
  it('refuses transactions as a standalone mongod does', async () => {
    const session = server.client.startSession();
    try {
      session.startTransaction();
      const error = await db
        .collection<Loose>('txn')
        .insertOne({ a: 1 }, { session })
        .then(
          () => undefined,
          (e: unknown) => e as Error & { originalError?: { code?: number; codeName?: string } },
        );
      expect(error).toBeDefined();
      expect(error!.message).toMatch(/retryable writes|Transaction numbers/);
      expect(error!.originalError?.code).toBe(20);
      expect(error!.originalError?.codeName).toBe('IllegalOperation');
    } finally {
      await session.endSession();
    }
    expect(await db.collection<Loose>('txn').countDocuments()).toBe(0);
  });

  it('stops a command at maxTimeMS with code 50', async () => {
    const error = await serverError(
      db
        .collection<Loose>('big')
        .find({ tag: { $regex: '^t[0-6]$' } })
        .sort({ tag: 1, n: -1 })
        .maxTimeMS(1)
        .toArray(),
    );
    expect(error.code).toBe(50);
  });

  it('lists databases and collections, drops and creates', async () => {
    const { databases } = await db.admin().listDatabases();
    expect(databases.map((d) => d.name)).toContain(db.databaseName);
    await db.createCollection('made');
    expect((await serverError(db.createCollection('made'))).code).toBe(48);
    const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
    expect(names).toContain('made');
    await db.dropCollection('made');
    expect((await db.listCollections({ name: 'made' }).toArray()).length).toBe(0);
    const stats = await db.command({ collStats: 'order' });
    expect(stats.count).toBe(1);
    expect(stats.size).toBeGreaterThan(0);
  });

  it('answers other connections while a long command runs', async () => {
    const other = new MongoClient(server.uri);
    await other.connect();
    try {
      const finished: string[] = [];
      const slow = db
        .collection<Loose>('big')
        .find({ n: { $gte: 0 } })
        .sort({ tag: -1, n: 1 })
        .toArray()
        .then(() => finished.push('sort'));
      await new Promise((resolve) => setTimeout(resolve, 5));
      await other.db('admin').command({ ping: 1 });
      finished.push('ping');
      await slow;
      expect(finished).toEqual(['ping', 'sort']);
    } finally {
      await other.close();
    }
  });
});

describe('fault injection (failCommand)', () => {
  const failPoint = (mode: unknown, data: Record<string, unknown>) =>
    db.admin().command({ configureFailPoint: 'failCommand', mode, data });

  it('fails the Nth command with a given code', async () => {
    const coll = db.collection<Loose>('faults');
    await failPoint({ skip: 1, times: 1 }, { failCommands: ['insert'], errorCode: 91 });
    await coll.insertOne({ n: 1 });
    const error = await serverError(coll.insertOne({ n: 2 }));
    expect(error.code).toBe(91);
    await coll.insertOne({ n: 3 });
    expect(await coll.countDocuments()).toBe(2);
  });

  it('delays replies and drops connections', async () => {
    const coll = db.collection<Loose>('faults');
    await failPoint({ times: 1 }, { failCommands: ['find'], blockConnection: true, blockTimeMS: 300 });
    const started = Date.now();
    await coll.findOne({});
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await failPoint({ times: 1 }, { failCommands: ['find'], closeConnection: true });
    const noRetry = new MongoClient(server.uri, { retryReads: false });
    try {
      const dropped = await noRetry
        .db(db.databaseName)
        .collection<Loose>('faults')
        .findOne({})
        .then(
          () => 'answered',
          (e: Error) => e.name,
        );
      expect(dropped).toBe('MongoNetworkError');
      expect(await noRetry.db(db.databaseName).collection<Loose>('faults').countDocuments()).toBe(2);
    } finally {
      await noRetry.close();
    }
    await failPoint('off', {});
  });
});
