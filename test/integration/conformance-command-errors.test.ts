import { type Document, Long, MongoClient, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';
import { serverError } from '../support/server-error.ts';

// Issue 23 item 5: commands answer bad input with mongod's codes and messages — an unknown field is refused
// (40415, as mongod's IDL parser refuses it) rather than ignored, a duplicate key names the collection and prints
// the key as mongod does, a bad locale is BadValue, a bad `_id` is refused as mongod refuses it. Written from
// mongod 7.0's documented behaviour; runs against a real server too (ORPHAN_CLEANUP_TEST_URI), except the block
// that needs the sandbox's secondary port.
let server: TestServer;
let dbName: string;
beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0' });
  dbName = server.dbName('errors');
  await server.client.db(dbName).collection('u').createIndex({ k: 1 }, { unique: true });
  await server.client
    .db(dbName)
    .collection('u')
    .insertOne({ _id: new ObjectId('65a000000000000000000001'), k: 'a' });
});
afterAll(async () => server?.stop());

const db = () => server.client.db(dbName);

describe('unknown fields', () => {
  it('are refused by the commands drivers send most, naming the command and the field', async () => {
    const commands: Document[] = [
      { find: 'u', filter: {} },
      { aggregate: 'u', pipeline: [], cursor: {} },
      { count: 'u' },
      { distinct: 'u', key: 'k' },
      { insert: 'u', documents: [{ k: 'fresh' }] },
      { update: 'u', updates: [{ q: { k: 'nobody' }, u: { $set: { x: 1 } } }] },
      { delete: 'u', deletes: [{ q: { k: 'nobody' }, limit: 1 }] },
      { findAndModify: 'u', query: { k: 'nobody' }, update: { $set: { x: 1 } } },
      { getMore: Long.fromNumber(12345), collection: 'u' },
    ];
    for (const command of commands) {
      const name = Object.keys(command)[0];
      const error = await serverError(db().command({ ...command, bogusOption: 1 }));
      expect(error.code, name).toBe(40415);
      expect(error.message, name).toBe(`BSON field '${name}.bogusOption' is an unknown field.`);
    }
    // Nothing was written by the refused insert.
    expect(await db().collection('u').countDocuments({ k: 'fresh' })).toBe(0);
  });

  it('never include the generic arguments every command takes', async () => {
    const generic = { comment: 'conformance', maxTimeMS: 10_000, $readPreference: { mode: 'primary' } };
    await db().command({ find: 'u', filter: {}, ...generic });
    await db().command({ count: 'u', ...generic });
    await db().command({ distinct: 'u', key: 'k', ...generic });
    await db().command({ aggregate: 'u', pipeline: [], cursor: {}, ...generic });
    const deleted = await db().command({
      delete: 'u',
      deletes: [{ q: { k: 'nobody' }, limit: 1 }],
      ...generic,
    });
    expect(deleted.ok).toBe(1);
  });
});

describe('duplicate keys', () => {
  it('say E11000 with the collection, the index and the key printed as mongod prints it', async () => {
    const onIndex = await serverError(db().collection('u').insertOne({ k: 'a' }));
    expect(onIndex.code).toBe(11000);
    expect(onIndex.message).toBe(
      `E11000 duplicate key error collection: ${dbName}.u index: k_1 dup key: { k: "a" }`,
    );
    expect(onIndex.keyPattern).toEqual({ k: 1 });
    expect(onIndex.keyValue).toEqual({ k: 'a' });
    const onId = await serverError(
      db()
        .collection('u')
        .insertOne({ _id: new ObjectId('65a000000000000000000001'), k: 'other' }),
    );
    expect(onId.message).toBe(
      `E11000 duplicate key error collection: ${dbName}.u index: _id_ dup key: { _id: ObjectId('65a000000000000000000001') }`,
    );
  });

  it('print a compound key field by field', async () => {
    const pairs = db().collection('pairs');
    await pairs.createIndex({ a: 1, b: 1 }, { unique: true });
    await pairs.insertOne({ a: 1, b: 'x' });
    const error = await serverError(pairs.insertOne({ a: 1, b: 'x' }));
    expect(error.message).toBe(
      `E11000 duplicate key error collection: ${dbName}.pairs index: a_1_b_1 dup key: { a: 1, b: "x" }`,
    );
  });
});

describe('collation locales', () => {
  it('take MongoDB locale ids (en_US, fr_CA, zh_Hant) and refuse an unknown one with BadValue', async () => {
    const names = db().collection('names');
    await names.insertMany([{ n: 'ami' }, { n: 'AMI' }, { n: 'other' }]);
    for (const locale of ['en_US', 'fr_CA', 'zh_Hant']) {
      const found = await names.find({ n: 'ami' }, { collation: { locale, strength: 2 } }).toArray();
      expect(found.map((doc) => doc.n).sort(), locale).toEqual(['AMI', 'ami']);
    }
    const error = await serverError(names.find({ n: 'ami' }, { collation: { locale: 'xx_YY' } }).toArray());
    expect(error.code).toBe(2);
    expect(error.codeName).toBe('BadValue');
    expect(error.message).toBe(`Field 'locale' is invalid in: { locale: "xx_YY" }`);
  });
});

describe('_id values mongod refuses', () => {
  it('refuses $-prefixed fields inside _id (52) and an array _id (53), and takes a null _id by upsert', async () => {
    const ids = db().collection('ids');
    const dollar = await serverError(ids.insertOne({ _id: { $x: 1 } } as Document));
    expect(dollar.code).toBe(52);
    expect(dollar.message).toBe(
      "_id fields may not contain '$'-prefixed fields: $x is not valid for storage.",
    );
    const array = await serverError(ids.insertOne({ _id: [1, 2] } as Document));
    expect(array.code).toBe(53);
    expect(array.message).toBe("The '_id' value cannot be of type array");
    expect(await ids.countDocuments()).toBe(0);
    const upsert = await ids.updateOne({ _id: null } as Document, { $set: { a: 1 } }, { upsert: true });
    expect(upsert.upsertedCount).toBe(1);
    expect(upsert.upsertedId).toBeNull();
    expect(await ids.find({ _id: null } as Document).toArray()).toEqual([{ _id: null, a: 1 }]);
  });
});

describe('a write sent to a secondary (sandbox: its secondary port)', () => {
  let set: TestServer;
  beforeAll(async () => {
    set = await startTestServer({ replicaSet: 'rs1', secondaryPort: 0, sandboxOnly: true });
  });
  afterAll(async () => set?.stop());

  it('fails with NotWritablePrimary (10107), named as mongod names it', async () => {
    const hello = await set.client.db('admin').command({ hello: 1 });
    const secondary = (hello.hosts as string[]).find((host) => host !== hello.primary);
    const direct = new MongoClient(`mongodb://${secondary}/?directConnection=true`);
    try {
      const error = await serverError(direct.db(set.dbName('direct')).collection('c').insertOne({ a: 1 }));
      expect(error.code).toBe(10107);
      expect(error.codeName).toBe('NotWritablePrimary');
      // Every write command, not only CRUD: a collMod, a rename, an applyOps.
      const db = set.dbName('direct');
      for (const command of [
        { collMod: 'c' },
        { renameCollection: `${db}.c`, to: `${db}.d` },
        { applyOps: [{ op: 'i', ns: `${db}.c`, o: { _id: 1 } }] },
      ]) {
        const refused = await serverError(
          direct.db(command.renameCollection ? 'admin' : db).command(command),
        );
        expect(refused.code, Object.keys(command)[0]).toBe(10107);
      }
    } finally {
      await direct.close();
    }
  });
});
