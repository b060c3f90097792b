import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BSON } from 'bson';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandboxProcess } from '../../src/sandbox/process.ts';
import { exchange, opMsg, opQuery, parseReply, wireHeader } from '../support/raw-wire.ts';

// These tests are about the sandbox's own robustness, so they always run against a sandbox process.
// Test documents use plain numbers and strings as _id.
type Loose = any;

let server: { uri: string; client: MongoClient; dbName(name: string): string; stop(): Promise<void> };

beforeAll(async () => {
  const sandbox = await startSandboxProcess();
  const client = await new MongoClient(sandbox.uri).connect();
  server = {
    uri: sandbox.uri,
    client,
    dbName: (name) => name,
    stop: async () => {
      await client.close();
      await sandbox.stop();
    },
  };
});
afterAll(async () => server?.stop());

async function stillServing(): Promise<void> {
  expect((await server.client.db('admin').command({ ping: 1 })).ok).toBe(1);
}

describe('raw wire protocol', () => {
  it('answers the legacy OP_QUERY handshake that older drivers open with', async () => {
    const { reply } = await exchange(
      server.uri,
      opQuery('admin.$cmd', { isMaster: 1, client: { driver: { name: 'legacy' } } }, 7),
    );
    const { opCode, responseTo, doc } = parseReply(reply);
    expect(opCode).toBe(1);
    expect(responseTo).toBe(7);
    expect(doc.ismaster).toBe(true);
    expect(doc.maxWireVersion).toBeGreaterThanOrEqual(21);
    expect(reply.readInt32LE(0)).toBe(reply.length);
  });

  it('answers OP_MSG with exact lengths, no checksum and an int64 cursor id', async () => {
    const db = server.dbName('raw');
    await server.client
      .db(db)
      .collection<Loose>('c')
      .insertMany(Array.from({ length: 5 }, (_, i) => ({ i })));
    const { reply } = await exchange(server.uri, opMsg({ find: 'c', batchSize: 2, $db: db }, 11));
    expect(reply.readInt32LE(0)).toBe(reply.length);
    expect(reply.readUInt32LE(16) & 1).toBe(0);
    const size = reply.readInt32LE(21);
    const doc = BSON.deserialize(reply.subarray(21, 21 + size), { promoteLongs: false });
    expect(doc.cursor.firstBatch).toHaveLength(2);
    expect(doc.cursor.id._bsontype).toBe('Long');
  });

  it('survives truncated, garbage and oversized frames', async () => {
    const truncated = opMsg({ ping: 1, $db: 'admin' }).subarray(0, 20);
    expect((await exchange(server.uri, truncated, 200)).reply.length).toBe(0);
    await stillServing();

    const garbageBody = Buffer.concat([
      wireHeader(16 + 4 + 1 + 8, 3, 2013),
      Buffer.alloc(4),
      Buffer.from([0]),
      Buffer.from([8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
    ]);
    const garbage = await exchange(server.uri, garbageBody);
    expect(parseReply(garbage.reply).doc.ok).toBe(0);
    await stillServing();

    const oversized = wireHeader(60_000_000, 4, 2013);
    const big = await exchange(server.uri, oversized);
    expect(big.closed).toBe(true);
    expect(parseReply(big.reply).doc.errmsg).toMatch(/maxMessageSizeBytes/);
    await stillServing();

    expect((await exchange(server.uri, wireHeader(3, 5, 2013))).closed).toBe(true);
    expect(parseReply((await exchange(server.uri, wireHeader(16, 6, 9999))).reply).doc.ok).toBe(0);
    await stillServing();
  });

  it('sends no reply for moreToCome', async () => {
    const msg = opMsg({ ping: 1, $db: 'admin' });
    msg.writeUInt32LE(2, 16);
    expect((await exchange(server.uri, msg, 200)).reply.length).toBe(0);
  });
});

describe('sandbox persistence', () => {
  it('keeps data in mongodump layout between runs with --data-dir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-sandbox-'));
    try {
      const first = await startSandboxProcess({ dataDir: dir });
      const a = new MongoClient(first.uri);
      await a
        .db('keep')
        .collection<Loose>('things')
        .insertMany([
          { _id: 1, v: 'one' },
          { _id: 2, v: 'two' },
        ]);
      await a.db('keep').collection<Loose>('things').createIndex({ v: 1 }, { unique: true });
      await a.close();
      await first.stop();

      const second = await startSandboxProcess({ dataDir: dir });
      const b = new MongoClient(second.uri);
      expect(await b.db('keep').collection<Loose>('things').find().toArray()).toEqual([
        { _id: 1, v: 'one' },
        { _id: 2, v: 'two' },
      ]);
      const error = await b
        .db('keep')
        .collection<Loose>('things')
        .insertOne({ v: 'one' })
        .catch((e) => e);
      expect(error.code).toBe(11000);
      await b.close();
      await second.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('errors while a batch is built', () => {
  it('answers a failing projection with an error and keeps the connection', async () => {
    const db = server.client.db(server.dbName('projfail'));
    await db.collection('c').insertOne({ a: 1 });
    const error = await db
      .collection('c')
      .find({}, { projection: { a: { $nosuchoperator: 1 } } })
      .toArray()
      .catch((e: { code?: number }) => e);
    expect((error as { code?: number }).code).toBeDefined();
    expect((await db.command({ ping: 1 })).ok).toBe(1);
    const sized = await db
      .collection('c')
      .findOne({}, { projection: { a: 1, size: { $bsonSize: '$$ROOT' } } });
    expect(sized).toMatchObject({ a: 1, size: 29 });
  });
});
