import {
  type Collection,
  Decimal128,
  type Document,
  Double,
  type FindOptions,
  Int32,
  Long,
  MongoServerError,
  ObjectId,
  Timestamp,
} from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// What mongod answers for values another client writes: numeric comparison across types, $type, collations.
// The same assertions hold against a real server (ORPHAN_CLEANUP_TEST_URI); the sandbox must match them or
// refuse loudly, never answer differently.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.stop());

/** The `_id`s of the documents a filter matches, in `_id` order. */
async function matching(
  coll: Collection<any>,
  filter: Document,
  options: FindOptions = {},
): Promise<unknown[]> {
  return (await coll.find(filter, options).sort({ _id: 1 }).toArray()).map((d) => d._id);
}

describe('numbers across int32, int64, double and decimal128', () => {
  it('compares and sorts by exact value, and a string is never a number', async () => {
    const coll = server.client.db(server.dbName('num')).collection<{ _id: number; v: unknown }>('values');
    await coll.insertMany([
      { _id: 1, v: new Int32(3) },
      { _id: 2, v: Long.fromString('1152921504606846976') },
      { _id: 3, v: Decimal128.fromString('10') },
      { _id: 4, v: new Double(7.5) },
      { _id: 5, v: '9' },
      { _id: 6, v: Decimal128.fromString('0.1') },
      { _id: 7, v: new Double(0.1) },
      { _id: 8, v: Long.fromString('1152921504606846977') },
    ]);
    expect(await matching(coll, { v: { $gt: 5 } })).toEqual([2, 3, 4, 8]);
    expect(await matching(coll, { v: { $gt: Long.fromString('1152921504606846976') } })).toEqual([8]);
    // 0.1 as a double is not the decimal 0.1.
    expect(await matching(coll, { v: Decimal128.fromString('0.1') })).toEqual([6]);
    expect(await matching(coll, { v: { $in: [Decimal128.fromString('3'), 10] } })).toEqual([1, 3]);
    const byValue = await coll
      .find({ v: { $type: 'number' } })
      .sort({ v: 1 })
      .toArray();
    expect(byValue.map((d) => d._id)).toEqual([6, 7, 1, 4, 3, 2, 8]);
  });
});

describe('Timestamps', () => {
  it('compare by seconds, then increment: $gt and sort see the increment (mongodump --oplog relies on it)', async () => {
    const coll = server.client
      .db(server.dbName('semantics'))
      .collection<{ _id: number; ts: Timestamp }>('timestamps');
    const at = (t: number, i: number) => new Timestamp({ t, i });
    await coll.insertMany([
      { _id: 1, ts: at(1_800_000_000, 1) },
      { _id: 2, ts: at(1_800_000_000, 2) },
      { _id: 3, ts: at(1_800_000_000, 3) },
      { _id: 4, ts: at(1_799_999_999, 9) },
    ]);
    expect(await matching(coll, { ts: { $gt: at(1_800_000_000, 1) } })).toEqual([2, 3]);
    expect(await matching(coll, { ts: { $lte: at(1_800_000_000, 2) } })).toEqual([1, 2, 4]);
    const sorted = await coll.find({}).sort({ ts: -1 }).toArray();
    expect(sorted.map((d) => d._id)).toEqual([3, 2, 1, 4]);
  });
});

describe('$type', () => {
  it('matches ObjectIds by name and by number among mixed string and ObjectId references', async () => {
    const coll = server.client.db(server.dbName('types')).collection<{ _id: number; ref: unknown }>('refs');
    const oid = new ObjectId();
    await coll.insertMany([
      { _id: 1, ref: oid },
      { _id: 2, ref: oid.toHexString() },
      { _id: 3, ref: null },
      { _id: 4, ref: [oid] },
      { _id: 5, ref: new Date() },
    ]);
    expect(await matching(coll, { ref: { $type: 'objectId' } })).toEqual([1, 4]);
    expect(await matching(coll, { ref: { $type: 7 } })).toEqual([1, 4]);
    expect(await matching(coll, { ref: { $type: ['string', 'null'] } })).toEqual([2, 3]);
    expect(await matching(coll, { ref: { $type: 'array' } })).toEqual([4]);
    expect(await matching(coll, { ref: { $type: 'date' } })).toEqual([5]);
    await expect(coll.find({ ref: { $type: 'objectid' } }).toArray()).rejects.toThrow(
      /Unknown type name alias/,
    );
  });
});

describe('collations', () => {
  it("follows a collection's default collation for equality, $in and sort", async () => {
    const db = server.client.db(server.dbName('coll'));
    await db.createCollection('names', { collation: { locale: 'en', strength: 2 } });
    const names = db.collection<{ _id: number; name: string }>('names');
    await names.insertMany([
      { _id: 1, name: 'Alpha' },
      { _id: 2, name: 'beta' },
      { _id: 3, name: 'Gamma' },
      { _id: 4, name: 'alpha' },
    ]);
    expect(await matching(names, { name: 'ALPHA' })).toEqual([1, 4]);
    expect(await matching(names, { name: { $in: ['BETA', 'gamma'] } })).toEqual([2, 3]);
    expect(await names.countDocuments({ name: 'alpha' })).toBe(2);
    // A command's simple collation overrides the default.
    expect(await matching(names, { name: 'alpha' }, { collation: { locale: 'simple' } })).toEqual([4]);
    const sorted = await names.find({}).sort({ name: 1, _id: 1 }).toArray();
    expect(sorted.map((d) => d.name)).toEqual(['Alpha', 'alpha', 'beta', 'Gamma']);
  });

  it('takes a collation per command on a plain collection, and refuses an unknown locale', async () => {
    const coll = server.client.db(server.dbName('percmd')).collection<{ _id: number; w: string }>('words');
    await coll.insertMany([
      { _id: 1, w: 'b' },
      { _id: 2, w: 'A' },
      { _id: 3, w: 'a' },
    ]);
    expect((await coll.find({}).sort({ w: 1 }).toArray()).map((d) => d.w)).toEqual(['A', 'a', 'b']);
    const en = { locale: 'en', strength: 1 };
    expect(await matching(coll, { w: 'a' }, { collation: en })).toEqual([2, 3]);
    expect(await coll.deleteMany({ w: 'A' }, { collation: en })).toMatchObject({ deletedCount: 2 });
    const error = await coll
      .find({ w: 'b' }, { collation: { locale: 'no_such_locale' } })
      .toArray()
      .catch((e: MongoServerError) => e);
    expect(error).toBeInstanceOf(MongoServerError);
    expect((error as MongoServerError).message).toMatch(/locale/);
  });
});

describe('the sandbox refuses what it cannot answer as mongod would', () => {
  it('refuses collation strengths and options it does not implement', async () => {
    if (!server.isSandbox) return;
    const coll = server.client.db(server.dbName('refuse')).collection('c');
    await coll.insertOne({ w: 'x' });
    await expect(
      coll.find({ w: 'x' }, { collation: { locale: 'en', strength: 4 } }).toArray(),
    ).rejects.toThrow(/collation strength 4 is not supported by the sandbox/);
    await expect(
      coll.find({ w: { $regex: '^x' } }, { collation: { locale: 'en', strength: 2 } }).toArray(),
    ).rejects.toThrow(/does not apply a collation to \$regex/);
  });
});
