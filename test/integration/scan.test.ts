import { BSON, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prefetchedBatches } from '../../src/engine/raw-batches.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { OLORIN_DEMO_COUNTS } from '../../src/sandbox/seed/olorin.ts';
import { OWNED_COLLECTIONS } from '../../src/store/access.ts';
import { documentKey, ExceptionsStore } from '../../src/store/exceptions.ts';
import {
  configFor,
  embeddingsConfigFile,
  loadOlorinDemo,
  type OlorinFixture,
} from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

const DAY = 86_400_000;
let server: TestServer;
let demo: OlorinFixture;

beforeAll(async () => {
  server = await startTestServer();
  demo = await loadOlorinDemo(server);
});
afterAll(async () => server?.stop());

async function scan(
  config = demo.config,
  options: { readOnly?: boolean; now?: Date; candidateLimit?: number } = {},
) {
  const pool = new SourcePool(config.sources);
  try {
    return await runScan({
      config,
      pool,
      access: { readOnly: options.readOnly ?? false },
      now: options.now,
      candidateLimit: options.candidateLimit,
    });
  } finally {
    await pool.close();
  }
}

/** Sources `child` and `parent`: two databases of the suite's server. */
function childAndParent(childDb: string, parentDb: string) {
  return {
    child: { uri: server.uri, database: childDb },
    parent: { uri: server.uri, database: parentDb },
  };
}

describe('scan of the Olorin demo data', () => {
  it('gives the same counts read as 4 _id ranges at once as read whole', async () => {
    const pool = new SourcePool(demo.config.sources);
    try {
      const run = (parallel: number) =>
        runScan({ config: demo.config, pool, access: { readOnly: true }, parallel });
      const counts = (report: Awaited<ReturnType<typeof run>>) =>
        report.relations.map(
          ({ name, scanned, ok, orphans, parentInactive, invalidReference, excepted }) => ({
            name,
            scanned,
            ok,
            orphans,
            parentInactive,
            invalidReference,
            excepted,
          }),
        );
      const whole = counts(await run(1));
      expect(counts(await run(4))).toEqual(whole);
      expect(whole.every((r) => r.scanned > 0)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('puts every child in exactly the documented category', async () => {
    const report = await scan(demo.config, { readOnly: true });
    for (const relation of report.relations) {
      const expected = OLORIN_DEMO_COUNTS[relation.name as keyof typeof OLORIN_DEMO_COUNTS];
      expect({
        scanned: relation.scanned,
        ok: relation.ok,
        orphans: relation.orphans,
        parentInactive: relation.parentInactive,
        invalidReference: relation.invalidReference,
      }).toEqual({
        scanned: expected.scanned,
        ok: expected.ok,
        orphans: expected.orphans,
        parentInactive: expected.parentInactive,
        invalidReference: expected.invalidReference,
      });
      expect(relation.excepted).toBe(0);
      expect(relation.safe).toBe(true);
    }
    const embeddings = report.relations[0];
    // First scan: orphans are first seen now (in grace); soft-deleted content counts from deleted_at.
    expect(embeddings.deletable).toBe(OLORIN_DEMO_COUNTS.content_embeddings.inactivePastGrace);
    expect(embeddings.inGrace).toBe(300 + 300 - OLORIN_DEMO_COUNTS.content_embeddings.inactivePastGrace);
  });

  it('needs few round trips: one probe per 1,000 distinct keys', async () => {
    const report = await scan(demo.config, { readOnly: true });
    const embeddings = report.relations[0];
    // 2,200 distinct valid content keys -> 3 probes of at most 1,000 keys.
    expect(embeddings.roundTrips.parentProbes).toBeLessThanOrEqual(3);
  });

  it('records first-seen state on a complete scan, so orphans become deletable after the grace period', async () => {
    const first = await scan();
    expect(first.relations[1].deletable).toBe(0);
    const later = await scan(demo.config, {
      now: new Date(Date.now() + 8 * DAY),
      candidateLimit: Number.POSITIVE_INFINITY,
    });
    const recaps = later.relations[1];
    expect(recaps.orphans).toBe(32);
    expect(recaps.deletable).toBe(32);
    expect(recaps.candidates).toHaveLength(32);
    expect(recaps.changeSincePrevious).toBe(0);
    const stored = await server.client
      .db(demo.olorinDb)
      .collection(OWNED_COLLECTIONS.firstSeen)
      .countDocuments({ relation: 'recap_sessions' });
    expect(stored).toBe(8);
  });

  it('writes nothing in read-only mode', async () => {
    const db = server.client.db(demo.olorinDb);
    const runsBefore = await db.collection(OWNED_COLLECTIONS.runs).countDocuments();
    await scan(demo.config, { readOnly: true });
    expect(await db.collection(OWNED_COLLECTIONS.runs).countDocuments()).toBe(runsBefore);
  });
});

describe('reading the child collection', () => {
  it('takes each batch in place from the reply: the same documents, bytes and order the driver hands out', async () => {
    const coll = server.client.db(server.dbName('batches')).collection<any>('children');
    await coll.insertMany(
      Array.from({ length: 12_345 }, (_, i) => ({
        _id: i,
        ref: i % 3 ? new ObjectId() : `s${i}`,
        pad: 'x'.repeat(i % 50),
      })),
    );
    const expected = (await coll.find({}, { raw: true, sort: { _id: 1 } }).toArray()) as unknown as Buffer[];
    const seen: Buffer[] = [];
    const cursor = coll.find({}, { raw: true, sort: { _id: 1 }, batchSize: 5000 });
    let batches = 0;
    for await (const batch of prefetchedBatches(cursor)) {
      batches++;
      // In place: a driver upgrade that changes its buffered reply falls back to copying; this says so.
      expect(batch.inPlace).toBe(true);
      for (const at of batch.offsets) {
        const length = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset + at, 4).readInt32LE(0);
        seen.push(Buffer.from(batch.bytes.subarray(at, at + length)));
      }
    }
    expect(batches).toBe(3);
    expect(seen.length).toBe(expected.length);
    expect(seen.every((doc, i) => doc.equals(expected[i]))).toBe(true);
  });

  it('stops cleanly when the caller stops early, with the next batch already asked for', async () => {
    const coll = server.client.db(server.dbName('batches')).collection<any>('children');
    const cursor = coll.find({}, { raw: true, batchSize: 1000 });
    let taken = 0;
    for await (const batch of prefetchedBatches(cursor)) {
      taken += batch.offsets.length;
      if (taken >= 2000) break;
    }
    await cursor.close();
    expect(taken).toBe(2000);
    // The cursor was still open on the server (12,345 documents): closing it sent killCursors.
    expect(cursor.killed).toBe(true);
  });
});

describe('stopping a scan', () => {
  it('stops at the next batch after the signal, records the run as aborted with a checkpoint, and confirms no first-seen state', async () => {
    const childDb = server.dbName('abortchild');
    const parentDb = server.dbName('abortparent');
    await server.client.db(parentDb).collection('content').insertOne({ _id: new ObjectId() });
    const children = server.client.db(childDb).collection('embeddings');
    for (let i = 0; i < 3; i++)
      await children.insertMany(Array.from({ length: 10_000 }, () => ({ content_id: new ObjectId() })));
    const config = await configFor(embeddingsConfigFile(server.uri, childDb, parentDb));
    const controller = new AbortController();
    const pool = new SourcePool(config.sources);
    let report: Awaited<ReturnType<typeof runScan>>;
    try {
      report = await runScan({
        config,
        pool,
        access: { readOnly: false },
        signal: controller.signal,
        onProgress: (progress) => {
          if (progress.scanned > 0) controller.abort();
        },
      });
    } finally {
      await pool.close();
    }
    const [relation] = report.relations;
    expect(relation.complete).toBe(false);
    expect(relation.scanned).toBeGreaterThan(0);
    expect(relation.scanned).toBeLessThan(30_000);
    const db = server.client.db(childDb);
    // What it staged stays pending for `--resume`: no first sighting anyone may count from.
    expect(await db.collection(OWNED_COLLECTIONS.firstSeen).countDocuments({ pending: { $ne: true } })).toBe(
      0,
    );
    expect(await db.collection(OWNED_COLLECTIONS.runs).findOne({ kind: 'scan' })).toMatchObject({
      outcome: 'aborted',
      complete: false,
      checkpoint: { scanned: relation.scanned, partitions: [{ done: false }] },
    });
  });
});

describe('categories on mixed references', () => {
  let config: Awaited<ReturnType<typeof configFor>>;
  const live = new ObjectId();
  const deleted = new ObjectId();
  const soft = new ObjectId();
  const partnerOid = new ObjectId();

  beforeAll(async () => {
    const childDb = server.dbName('mixchild');
    const parentDb = server.dbName('mixparent');
    const parents = server.client.db(parentDb);
    await parents.collection('content').insertMany([
      { _id: live, deleted_at: null },
      { _id: soft, deleted_at: new Date(Date.now() - 30 * DAY) },
    ]);
    await parents.collection('partners').insertMany([
      { partner_id: 'p-1', status: 'active' },
      { partner_id: 'p-2', status: 'suspended' },
      { partner_id: 7, status: 'active' },
      { partner_id: partnerOid, status: 'active' },
    ]);
    await parents.collection('partners').createIndex({ partner_id: 1 });
    const children = server.client.db(childDb);
    await children
      .collection<any>('embeddings')
      .insertMany([
        { _id: 1, content_id: live.toHexString() },
        { _id: 2, content_id: live },
        { _id: 3, content_id: live.toHexString().toUpperCase() },
        { _id: 4, content_id: live.toHexString() },
        { _id: 5, content_id: deleted.toHexString() },
        { _id: 6, content_id: deleted },
        { _id: 7, content_id: soft.toHexString() },
        { _id: 8, content_id: null },
        { _id: 9 },
        { _id: 10, content_id: '' },
        { _id: 11, content_id: 'not-a-hex-id' },
        { _id: 12, content_id: 12345 },
        { _id: 13, content_id: { nested: live } },
        { _id: 'string-id', content_id: deleted.toHexString() },
      ]);
    await children.collection<any>('sessions').insertMany([
      { _id: 1, partner_id: 'p-1' },
      { _id: 2, partner_id: 'p-2' },
      { _id: 3, partner_id: 'p-3' },
      { _id: 4, partner_id: 7 },
      { _id: 5, partner_id: '7' },
      { _id: 6, partner_id: 7.0 },
      { _id: 7, partner_id: null },
      { _id: 8, partner_id: partnerOid },
      { _id: 9, partner_id: partnerOid.toHexString() },
      { _id: 10, partner_id: new ObjectId() },
    ]);
    config = await configFor({
      sources: childAndParent(childDb, parentDb),
      relations: [
        {
          name: 'embeddings',
          child: { source: 'child', collection: 'embeddings', field: 'content_id' },
          parent: { source: 'parent', collection: 'content', softDeleteField: 'deleted_at' },
          keyMatch: 'objectid-or-hex',
          graceDays: 0,
        },
        {
          name: 'sessions',
          child: { source: 'child', collection: 'sessions', field: 'partner_id' },
          parent: {
            source: 'parent',
            collection: 'partners',
            field: 'partner_id',
            activeFilter: { status: 'active' },
          },
          keyMatch: 'exact',
          graceDays: 0,
        },
      ],
      maxOrphanRatio: 1,
    });
  });

  it('matches hex strings and ObjectIds both ways, and reports invalid references', async () => {
    const [embeddings] = (await scan(config, { readOnly: true, candidateLimit: Number.POSITIVE_INFINITY }))
      .relations;
    expect(embeddings.ok).toBe(4);
    expect(embeddings.orphans).toBe(3);
    expect(embeddings.parentInactive).toBe(1);
    expect(embeddings.invalidReference).toBe(6);
    expect(embeddings.deletable).toBe(4);
    expect(embeddings.candidates.map((c) => c.id).sort((a, b) => String(a).localeCompare(String(b)))).toEqual(
      [5, 6, 7, 'string-id'],
    );
    expect(embeddings.samples.invalidReference.map((s) => s.id)).toEqual([8, 9, 10, 11, 12, 13]);
  });

  it("reports the orphaned and inactive children's stored size, summed by the server", async () => {
    const [embeddings] = (await scan(config, { readOnly: true })).relations;
    const unresolved = await server.client
      .db(config.sources.child.database)
      .collection<any>('embeddings')
      .find({ _id: { $in: [5, 6, 7, 'string-id'] } })
      .toArray();
    expect(unresolved).toHaveLength(4);
    expect(embeddings.orphanBytes).toBe(
      unresolved.reduce((sum, doc) => sum + BSON.calculateObjectSize(doc), 0),
    );
  });

  it('is type-sensitive with exact matching (an ObjectId is not its hex string), numbers equal across types, and applies activeFilter', async () => {
    const [, sessions] = (await scan(config, { readOnly: true })).relations;
    expect({
      ok: sessions.ok,
      orphans: sessions.orphans,
      parentInactive: sessions.parentInactive,
      invalid: sessions.invalidReference,
    }).toEqual({
      ok: 4,
      orphans: 4,
      parentInactive: 1,
      invalid: 1,
    });
  });

  it('puts allow-listed documents and references in excepted, ahead of any other category', async () => {
    const childDb = server.client.db(config.sources.child.database);
    const store = new ExceptionsStore(childDb, { readOnly: false });
    const base = { relation: 'embeddings', reason: 'test', createdBy: 'test', createdAt: new Date() };
    await store.add({ ...base, kind: 'document', value: 8, valueKey: documentKey(8) });
    await store.add({ ...base, kind: 'reference', value: deleted, valueKey: deleted.toHexString() });
    await store.add({
      ...base,
      kind: 'document',
      value: 1,
      valueKey: documentKey(1),
      expiresAt: new Date(Date.now() - 1000),
    });
    const [embeddings] = (await scan(config, { readOnly: true })).relations;
    expect(embeddings.excepted).toBe(4);
    expect(embeddings.orphans).toBe(0);
    expect(embeddings.invalidReference).toBe(5);
    expect(embeddings.ok).toBe(4);
    expect(embeddings.samples.excepted.map((s) => s.id)).toEqual([5, 6, 8, 'string-id']);
  });
});

describe('safety guards', () => {
  it('marks a relation unsafe when its parent collection is empty or the orphan ratio is too high', async () => {
    const childDb = server.dbName('guardchild');
    const parentDb = server.dbName('guardparent');
    await server.client
      .db(childDb)
      .collection('kids')
      .insertMany([{ ref: 'a' }, { ref: 'b' }]);
    const config = await configFor({
      sources: { c: { uri: server.uri, database: childDb }, p: { uri: server.uri, database: parentDb } },
      relations: [
        {
          name: 'kids',
          child: { source: 'c', collection: 'kids', field: 'ref' },
          parent: { source: 'p', collection: 'moms', field: 'name' },
        },
      ],
    });
    const [kids] = (await scan(config, { readOnly: true })).relations;
    expect(kids.safe).toBe(false);
    expect(kids.unsafeReasons.join('; ')).toMatch(/moms is empty/);
    expect(kids.unsafeReasons.join('; ')).toMatch(
      /orphan ratio 1\.00 \(orphans and children of inactive parents\) is above maxOrphanRatio 0\.5/,
    );
  });

  it('marks a relation unsafe when child and parent are one database, or separation is switched off', async () => {
    const dbName = server.dbName('samedb');
    await server.client.db(dbName).collection('kids').insertOne({ ref: 'a' });
    await server.client.db(dbName).collection('moms').insertOne({ name: 'a' });
    await server.client.db(dbName).collection('moms').createIndex({ name: 1 });
    const file = {
      sources: { c: { uri: server.uri, database: dbName }, p: { uri: server.uri, database: dbName } },
      relations: [
        {
          name: 'kids',
          child: { source: 'c', collection: 'kids', field: 'ref' },
          parent: { source: 'p', collection: 'moms', field: 'name' },
        },
      ],
    };
    const [same] = (await scan(await configFor(file), { readOnly: true })).relations;
    expect(same.ok).toBe(1);
    expect(same.unsafeReasons).toEqual([
      `child and parent are the same database (${dbName}) but separate databases are required`,
    ]);
    const allowed = await configFor(
      { ...file, requireSeparateDatabases: false },
      { OLORIN_USE_SEPARATE_DATABASE: 'false' },
    );
    const [off] = (await scan(allowed, { readOnly: true })).relations;
    expect(off.unsafeReasons).toEqual(['OLORIN_USE_SEPARATE_DATABASE=false: database separation is off']);
  });
});
