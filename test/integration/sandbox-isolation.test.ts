import type { Document, Timestamp } from 'bson';
import type { Collection, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 23, items 1 and 2: transactions isolated as on mongod (snapshot reads, first writer wins, a failed
// statement or an expired lifetime aborts, nothing committed is ever lost) and snapshot reads at any time in
// the history window. Cases written from MongoDB's documented behaviour (the transactions and
// snapshot-reads specifications); they run unchanged against a real replica set (ORPHAN_CLEANUP_TEST_URI).
let server: TestServer;
let client: MongoClient;
beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0' });
  client = server.client;
});
afterAll(async () => server?.stop());

type Doc = { _id: number; v?: number; n?: number };
let collections = 0;
async function freshCollection(): Promise<Collection<Doc>> {
  const db = client.db(server.dbName(`iso${collections++}`));
  const coll = db.collection<Doc>('c');
  await coll.insertMany([
    { _id: 1, v: 1 },
    { _id: 2, v: 1 },
    { _id: 3, v: 1 },
  ]);
  return coll;
}

const TXN = { readConcern: { level: 'snapshot' as const }, writeConcern: { w: 'majority' as const } };

describe('transactions are isolated', () => {
  it('hides uncommitted writes from everyone else, and a transaction reads its snapshot', async () => {
    const coll = await freshCollection();
    const a = client.startSession();
    const b = client.startSession();
    try {
      a.startTransaction(TXN);
      await coll.updateOne({ _id: 1 }, { $set: { v: 2 } }, { session: a });
      await coll.insertOne({ _id: 9, v: 9 }, { session: a });
      // Outside: neither the update nor the insert.
      expect(await coll.findOne({ _id: 1 })).toEqual({ _id: 1, v: 1 });
      expect(await coll.countDocuments()).toBe(3);
      expect(await coll.find({ v: 9 }).toArray()).toEqual([]);
      // Inside: its own writes.
      expect(await coll.findOne({ _id: 1 }, { session: a })).toEqual({ _id: 1, v: 2 });
      b.startTransaction(TXN);
      expect(await coll.findOne({ _id: 1 }, { session: b })).toEqual({ _id: 1, v: 1 });
      await a.commitTransaction();
      expect(await coll.findOne({ _id: 1 })).toEqual({ _id: 1, v: 2 });
      // b's snapshot predates the commit.
      expect(await coll.find({}, { session: b }).sort({ _id: 1 }).toArray()).toEqual([
        { _id: 1, v: 1 },
        { _id: 2, v: 1 },
        { _id: 3, v: 1 },
      ]);
      await b.commitTransaction();
    } finally {
      await a.endSession();
      await b.endSession();
    }
  });

  it('lets the first writer win: the second gets a WriteConflict and its transaction is aborted', async () => {
    const coll = await freshCollection();
    const a = client.startSession();
    const b = client.startSession();
    try {
      a.startTransaction(TXN);
      b.startTransaction(TXN);
      await coll.updateOne({ _id: 1 }, { $set: { v: 10 } }, { session: a });
      const conflict = await coll.updateOne({ _id: 1 }, { $set: { v: 20 } }, { session: b }).catch((e) => e);
      expect([conflict.code, conflict.hasErrorLabel?.('TransientTransactionError')]).toEqual([112, true]);
      const after = await coll.findOne({ _id: 2 }, { session: b }).catch((e) => e);
      expect(after.code).toBe(251);
      await b.abortTransaction().catch(() => undefined);
      await a.commitTransaction();
      // The loser's abort took back nothing of the winner's commit.
      expect(await coll.findOne({ _id: 1 })).toEqual({ _id: 1, v: 10 });
    } finally {
      await a.endSession();
      await b.endSession();
    }
  });

  it('conflicts with a write committed after its snapshot', async () => {
    const coll = await freshCollection();
    const a = client.startSession();
    try {
      a.startTransaction(TXN);
      expect(await coll.findOne({ _id: 2 }, { session: a })).toEqual({ _id: 2, v: 1 });
      await coll.updateOne({ _id: 2 }, { $set: { v: 5 } });
      const conflict = await coll.updateOne({ _id: 2 }, { $inc: { v: 1 } }, { session: a }).catch((e) => e);
      expect(conflict.code).toBe(112);
      await a.abortTransaction().catch(() => undefined);
      expect(await coll.findOne({ _id: 2 })).toEqual({ _id: 2, v: 5 });
    } finally {
      await a.endSession();
    }
  });

  it('makes a write outside any transaction wait for the transaction holding its document', async () => {
    const coll = await freshCollection();
    const a = client.startSession();
    try {
      a.startTransaction(TXN);
      await coll.updateOne({ _id: 3 }, { $inc: { v: 100 } }, { session: a });
      let done = false;
      const outside = coll.updateOne({ _id: 3 }, { $inc: { v: 1 } }).then(() => {
        done = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(done).toBe(false);
      await a.commitTransaction();
      await outside;
      // Applied after the commit, on top of it: nothing lost.
      expect(await coll.findOne({ _id: 3 })).toEqual({ _id: 3, v: 102 });
    } finally {
      await a.endSession();
    }
  });

  it('refuses count inside a transaction', async () => {
    const coll = await freshCollection();
    const a = client.startSession();
    try {
      a.startTransaction(TXN);
      const refused = await coll.db.command({ count: coll.collectionName }, { session: a }).catch((e) => e);
      expect(refused.code).toBe(263);
      await a.abortTransaction().catch(() => undefined);
    } finally {
      await a.endSession();
    }
  });
});

describe('transactionLifetimeLimitSeconds', () => {
  it('aborts a transaction open longer than the limit and takes its writes back', async () => {
    const coll = await freshCollection();
    const admin = client.db('admin');
    await admin.command({ setParameter: 1, transactionLifetimeLimitSeconds: 1 });
    const a = client.startSession();
    try {
      a.startTransaction(TXN);
      await coll.updateOne({ _id: 1 }, { $set: { v: 99 } }, { session: a });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const late = await coll.updateOne({ _id: 2 }, { $set: { v: 99 } }, { session: a }).catch((e) => e);
      expect([late.code, late.hasErrorLabel?.('TransientTransactionError')]).toEqual([251, true]);
      expect(await coll.findOne({ _id: 1 })).toEqual({ _id: 1, v: 1 });
    } finally {
      await admin.command({ setParameter: 1, transactionLifetimeLimitSeconds: 60 });
      await a.endSession();
    }
  });
});

describe('snapshot reads keep history', () => {
  async function snapshotTimeNow(coll: Collection<Doc>): Promise<Timestamp> {
    const reply = await coll.db.command({
      find: coll.collectionName,
      filter: {},
      readConcern: { level: 'snapshot' },
    });
    return reply.cursor.atClusterTime as Timestamp;
  }

  it('answers find, aggregate, count and distinct as of an earlier time, after later writes', async () => {
    const coll = await freshCollection();
    const at = await snapshotTimeNow(coll);
    await coll.updateOne({ _id: 1 }, { $set: { v: 7 } });
    await coll.deleteOne({ _id: 2 });
    await coll.insertOne({ _id: 4, v: 4 });
    const readConcern = { level: 'snapshot', atClusterTime: at };
    const found = await coll.db.command({
      find: coll.collectionName,
      filter: {},
      sort: { _id: 1 },
      readConcern,
    });
    expect(found.cursor.firstBatch).toEqual([
      { _id: 1, v: 1 },
      { _id: 2, v: 1 },
      { _id: 3, v: 1 },
    ]);
    const byId = await coll.db.command({
      find: coll.collectionName,
      filter: { _id: { $in: [1, 2, 4] } },
      readConcern,
    });
    expect(byId.cursor.firstBatch.map((d: Document) => d._id).sort()).toEqual([1, 2]);
    const grouped = await coll.db.command({
      aggregate: coll.collectionName,
      pipeline: [{ $match: { v: 1 } }, { $group: { _id: null, n: { $sum: 1 } } }],
      cursor: {},
      readConcern,
    });
    expect(grouped.cursor.firstBatch).toEqual([{ _id: null, n: 3 }]);
    expect((await coll.db.command({ count: coll.collectionName, readConcern })).n).toBe(3);
    expect((await coll.db.command({ distinct: coll.collectionName, key: 'v', readConcern })).values).toEqual([
      1,
    ]);
    // And now, without a time: the present.
    expect((await coll.db.command({ count: coll.collectionName })).n).toBe(3);
    expect(await coll.findOne({ _id: 1 })).toEqual({ _id: 1, v: 7 });
  });

  it('fails with SnapshotTooOld for a time before the history window', async () => {
    const coll = await freshCollection();
    const admin = client.db('admin');
    await admin.command({ setParameter: 1, minSnapshotHistoryWindowInSeconds: 1 });
    try {
      const at = await snapshotTimeNow(coll);
      await coll.updateOne({ _id: 1 }, { $set: { v: 2 } });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await coll.updateOne({ _id: 1 }, { $set: { v: 3 } });
      const old = await coll.db
        .command({
          find: coll.collectionName,
          filter: {},
          readConcern: { level: 'snapshot', atClusterTime: at },
        })
        .catch((e) => e);
      expect(old.code).toBe(239);
    } finally {
      await admin.command({ setParameter: 1, minSnapshotHistoryWindowInSeconds: 300 });
    }
  });
});

describe('replication lag (sandbox only: a real set lags by itself)', () => {
  let lagging: TestServer;
  beforeAll(async () => {
    lagging = await startTestServer({
      replicaSet: 'rs0',
      secondaryPort: 0,
      sandboxOnly: true,
      majorityLagMs: 400,
      secondaryLagMs: 400,
    });
  });
  afterAll(async () => lagging?.stop());

  it('keeps the majority commit point behind the last write: w:majority waits, majority and snapshot reads and change streams trail', async () => {
    const db = lagging.client.db(lagging.dbName('lag'));
    const coll = db.collection<Doc>('c');
    await coll.insertOne({ _id: 0 }, { writeConcern: { w: 'majority' } });
    const stream = coll.watch([], { maxAwaitTimeMS: 100 });
    expect(await stream.tryNext()).toBeNull();

    let started = performance.now();
    await coll.insertOne({ _id: 1 }, { writeConcern: { w: 1 } });
    const unacknowledged = performance.now() - started;
    // Not majority-committed yet: a majority read and a snapshot read do not see it, a local read does.
    expect(await coll.findOne({ _id: 1 }, { readConcern: { level: 'majority' } })).toBeNull();
    const snapshot = await db.command({ find: 'c', filter: { _id: 1 }, readConcern: { level: 'snapshot' } });
    expect(snapshot.cursor.firstBatch).toEqual([]);
    expect(await coll.findOne({ _id: 1 })).toEqual({ _id: 1 });
    expect(await stream.tryNext()).toBeNull();

    started = performance.now();
    await coll.insertOne({ _id: 2 }, { writeConcern: { w: 'majority' } });
    const majority = performance.now() - started;
    expect(unacknowledged).toBeLessThan(300);
    expect(majority).toBeGreaterThanOrEqual(350);
    // Now both are majority-committed: the stream delivers them in order.
    const events = [await stream.next(), await stream.next()];
    expect(events.map((e) => (e as { documentKey: { _id: number } }).documentKey._id)).toEqual([1, 2]);
    await stream.close();
  });

  it('serves secondary reads from data that trails the primary', async () => {
    const name = lagging.dbName('secondarylag');
    const hello = await lagging.client.db('admin').command({ hello: 1 });
    const secondaryHost = hello.hosts.find((host: string) => host !== hello.primary);
    const { MongoClient } = await import('mongodb');
    const direct = new MongoClient(
      `mongodb://${secondaryHost}/?directConnection=true&readPreference=secondary`,
    );
    try {
      await lagging.client
        .db(name)
        .collection<Doc>('c')
        .insertOne({ _id: 1 }, { writeConcern: { w: 1 } });
      const read = () => direct.db(name).collection<Doc>('c').findOne({ _id: 1 });
      expect(await read()).toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await read()).toEqual({ _id: 1 });
    } finally {
      await direct.close();
    }
  });
});
