import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Binary, Decimal128, type Document, Double, Int32, Long, ObjectId } from 'bson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigFile } from '../../src/config/schema.ts';
import { diagnose } from '../../src/engine/doctor.ts';
import { listUnresolved } from '../../src/engine/list.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import type { Category, CategoryCounts } from '../../src/engine/scan.ts';
import { type LiveCounts, watchRelations } from '../../src/engine/watch.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { documentKey } from '../../src/store/exceptions.ts';
import { scanAndClean } from '../support/cleanup-fixture.ts';
import { backedUp, missingFrom, snapshot } from '../support/invariants.ts';
import { childrenParentsFile, configFor } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 22, items 1 and 6: one classifier for every key type mongod distinguishes, the same in the scan, the
// delete's re-check, `scan --list` and the watcher; and a parent probe that fails fails the scan.
let server: TestServer;
beforeAll(async () => {
  // The watcher needs change streams: a replica set.
  server = await startTestServer({ replicaSet: 'rs0' });
});
afterAll(async () => server?.stop());

const MISSING = Symbol('missing');
type Row = [id: string, reference: unknown, expected: Category];

const X = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const A = new ObjectId();
const B = new ObjectId();
/** An ObjectId whose hex has letters (every random one does, almost always): forced here. */
const withLetters = () => {
  for (;;) {
    const id = new ObjectId();
    if (/[a-f]/.test(id.toHexString())) return id;
  }
};
const P1 = withLetters();
const P2 = withLetters();
const P3 = withLetters();
const Q = withLetters();

/** keyMatch exact: parents keyed by _id of every type, children referencing them in every form. */
const EXACT_PARENTS: Document[] = [
  { _id: A },
  { _id: new Binary(X, 3) },
  { _id: new Int32(7) },
  { _id: Long.fromNumber(8) },
  { _id: new Double(9.5) },
  { _id: Decimal128.fromString('10') },
  { _id: 'abc' },
];
const EXACT_CHILDREN: Row[] = [
  ['e01', A, 'ok'],
  ['e02', B, 'orphans'],
  // In _id order the subtype-4 child comes first: a scan that drops the subtype probes with it.
  ['e03a', new Binary(X, 4), 'orphans'],
  ['e03b', new Binary(X, 3), 'ok'],
  ['e03c', new Binary(X, 0), 'orphans'],
  ['e04', Long.fromNumber(7), 'ok'],
  ['e05', new Double(7), 'ok'],
  ['e06', Decimal128.fromString('7'), 'ok'],
  ['e07', new Int32(8), 'ok'],
  ['e08', new Double(9.5), 'ok'],
  // A fractional Decimal128 has no exact form the tool can match: reported, never deleted.
  ['e09', Decimal128.fromString('9.5'), 'invalidReference'],
  ['e10', new Int32(10), 'ok'],
  ['e11', new Double(11), 'orphans'],
  ['e12', [A], 'invalidReference'],
  ['e13', [B], 'invalidReference'],
  ['e14', null, 'invalidReference'],
  ['e15', MISSING, 'invalidReference'],
  ['e16', 'abc', 'ok'],
  ['e17', 'ABC', 'orphans'],
];

/** keyMatch objectid-or-hex: parents keyed as ObjectId, upper-case hex and lower-case hex. */
const HEX_PARENTS: Document[] = [
  { _id: 1, key: P1 },
  { _id: 2, key: P2.toHexString().toUpperCase() },
  { _id: 3, key: P3.toHexString() },
];
const HEX_CHILDREN: Row[] = [
  ['h01', P1, 'ok'],
  ['h02', P1.toHexString(), 'ok'],
  ['h03', P1.toHexString().toUpperCase(), 'ok'],
  // The parent is stored as upper-case hex: found only if the probe sends that form too.
  ['h04', P2, 'ok'],
  ['h05', P2.toHexString(), 'ok'],
  ['h06', P3, 'ok'],
  ['h07', P3.toHexString().toUpperCase(), 'ok'],
  ['h08', Q, 'orphans'],
  ['h09', Q.toHexString(), 'orphans'],
  ['h10', 'not-hex', 'invalidReference'],
  ['h11', [P1], 'invalidReference'],
  ['h12', { nested: P1 }, 'invalidReference'],
  ['h13', null, 'invalidReference'],
];

function expectedCounts(rows: Row[]): CategoryCounts {
  const counts: CategoryCounts = { ok: 0, orphans: 0, parentInactive: 0, invalidReference: 0, excepted: 0 };
  for (const [, , category] of rows) counts[category]++;
  return counts;
}

const idsOf = (rows: Row[], category: Category) =>
  rows
    .filter(([, , c]) => c === category)
    .map(([id]) => id)
    .sort();

async function keyWorld(name: string) {
  const childName = server.dbName(`${name}_child`);
  const parentName = server.dbName(`${name}_parent`);
  const childDb = server.client.db(childName);
  const parentDb = server.client.db(parentName);
  const images = { changeStreamPreAndPostImages: { enabled: true } };
  for (const [coll, rows] of [
    ['exact_children', EXACT_CHILDREN],
    ['hex_children', HEX_CHILDREN],
  ] as const) {
    await childDb.createCollection(coll, images);
    await childDb.collection(coll).createIndex({ ref: 1 });
    await childDb
      .collection(coll)
      .insertMany(rows.map(([_id, ref]) => (ref === MISSING ? { _id } : { _id, ref })) as Document[]);
  }
  for (const [coll, docs] of [
    ['exact_parents', EXACT_PARENTS],
    ['hex_parents', HEX_PARENTS],
  ] as const) {
    await parentDb.createCollection(coll, images);
    await parentDb.collection(coll).insertMany(docs);
  }
  await parentDb.collection('hex_parents').createIndex({ key: 1 }, { unique: true });
  const file: ConfigFile = {
    sources: {
      child: { uri: server.uri, database: childName },
      parent: { uri: server.uri, database: parentName },
    },
    relations: [
      {
        name: 'exact',
        child: { source: 'child', collection: 'exact_children', field: 'ref' },
        parent: { source: 'parent', collection: 'exact_parents', field: '_id' },
        keyMatch: 'exact',
        graceDays: 0,
      },
      {
        name: 'hex',
        child: { source: 'child', collection: 'hex_children', field: 'ref' },
        parent: { source: 'parent', collection: 'hex_parents', field: 'key' },
        keyMatch: 'objectid-or-hex',
        graceDays: 0,
      },
    ],
    maxOrphanRatio: 1,
    sampleSize: 100,
  } as ConfigFile;
  return {
    config: await configFor(file),
    backupRoot: await mkdtemp(join(tmpdir(), 'oc-keys-')),
    childDb,
  };
}

let worlds = 0;

describe('one classifier for every key type (scan, delete re-check, scan --list, watcher)', () => {
  it('puts every child in the category mongod equality gives, and deletes exactly the orphans', async () => {
    const world = await keyWorld(`keys${worlds++}`);
    const tables: Record<string, Row[]> = { exact: EXACT_CHILDREN, hex: HEX_CHILDREN };
    const pool = new SourcePool(world.config.sources);
    try {
      // The scan: counts and, per child, its category (every child is a sample here).
      const report = await runScan({ config: world.config, pool, access: { readOnly: false } });
      for (const relation of report.relations) {
        expect(relation.error).toBeUndefined();
        const rows = tables[relation.name];
        for (const category of ['ok', 'orphans', 'invalidReference'] as const)
          expect([
            relation.name,
            category,
            relation.samples[category].map((s) => String(s.id)).sort(),
          ]).toEqual([relation.name, category, idsOf(rows, category)]);
        expect(relation.safe).toBe(true);
      }
      // scan --list: the orphans, found by reference from the first-seen state.
      for (const relation of world.config.relations) {
        const listing = await listUnresolved({ config: world.config, pool, relation, category: 'orphans' });
        const listed: string[] = [];
        for await (const child of listing.children) listed.push(String(child.id));
        expect([relation.name, listed.sort()]).toEqual([
          relation.name,
          idsOf(tables[relation.name], 'orphans'),
        ]);
      }
    } finally {
      await pool.close();
    }

    // The watcher's start: the same five figures.
    const watchPool = new SourcePool(world.config.sources);
    const controller = new AbortController();
    const latest: Record<string, LiveCounts> = {};
    const done = watchRelations({
      config: world.config,
      pool: watchPool,
      access: { readOnly: false },
      signal: controller.signal,
      onCounts: (live) => {
        latest[live.relation] = live;
      },
      onNotice: () => undefined,
    });
    try {
      const deadline = Date.now() + 30_000;
      while (!(latest.exact && latest.hex) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(latest.exact?.counts).toEqual(expectedCounts(EXACT_CHILDREN));
      expect(latest.hex?.counts).toEqual(expectedCounts(HEX_CHILDREN));
    } finally {
      controller.abort();
      await done;
      await watchPool.close();
    }

    // The delete path: exactly the orphans go, each into the backup; the child of the live BinData(3) parent stays.
    const before = {
      exact: await snapshot(world.childDb.collection('exact_children')),
      hex: await snapshot(world.childDb.collection('hex_children')),
    };
    await scanAndClean(world, { batchSize: 100 });
    const backup = await backedUp(world.backupRoot);
    for (const [name, coll] of [
      ['exact', 'exact_children'],
      ['hex', 'hex_children'],
    ] as const) {
      const gone = missingFrom(before[name], await snapshot(world.childDb.collection(coll)));
      expect(gone.every((id) => backup.has(id))).toBe(true);
      expect([name, gone.sort()]).toEqual([name, idsOf(tables[name], 'orphans').map(documentKey).sort()]);
    }
  });
});

describe('hex in mixed case cannot be enumerated', () => {
  it('makes the relation unsafe, from a parent or a child, and doctor names it', async () => {
    const world = await keyWorld(`keys${worlds++}`);
    /** A 24-hex string with both cases: its first letter upper-cased, another left lower-case. */
    const mixed = () => {
      for (;;) {
        const hex = new ObjectId().toHexString();
        if ((hex.match(/[a-f]/g) ?? []).length < 2) continue;
        const at = hex.search(/[a-f]/);
        return `${hex.slice(0, at)}${hex[at].toUpperCase()}${hex.slice(at + 1)}`;
      }
    };
    const pool = new SourcePool(world.config.sources);
    try {
      const hexOf = async () =>
        (
          await runScan({ config: world.config, pool, access: { readOnly: true }, record: false })
        ).relations.find((r) => r.name === 'hex')!;
      expect((await hexOf()).safe).toBe(true);

      await world.childDb.collection('hex_children').insertOne({ _id: 'h99', ref: mixed() } as never);
      let hex = await hexOf();
      expect(hex.safe).toBe(false);
      expect(hex.unsafeReasons.join('; ')).toMatch(
        /1 children of hex_children reference their parent by hex in mixed case/,
      );
      await world.childDb.collection('hex_children').deleteOne({ _id: 'h99' } as never);

      const parentName = world.config.sources.parent.database;
      await server.client
        .db(parentName)
        .collection('hex_parents')
        .insertOne({ _id: 9, key: mixed() } as never);
      hex = await hexOf();
      expect(hex.safe).toBe(false);
      expect(hex.unsafeReasons.join('; ')).toMatch(/has a key in mixed-case hex/);

      const diagnosis = await diagnose(pool, world.config.relations);
      const messages = JSON.stringify(diagnosis);
      expect(messages).toMatch(/parent key hex_parents\.key holds hex in mixed case/);
    } finally {
      await pool.close();
    }
    // A cleanup refuses it without the override.
    await expect(scanAndClean(world)).rejects.toThrow(/hex is unsafe: .*mixed-case hex/);
  });
});

describe('a parent probe that fails', () => {
  it('fails the scan, even when fewer probes than the in-flight limit were outstanding', async () => {
    const childName = server.dbName('probefail_child');
    const parentName = server.dbName('probefail_parent');
    const parents = Array.from({ length: 1000 }, (_, i) => ({ _id: `p${i}` }));
    await server.client
      .db(parentName)
      .collection('parents')
      .insertMany(parents as never);
    // 1,000 distinct references (two probes of 500) in the first batch of children, then 29,000 more children
    // of a known reference: the second probe fails while the scan reads on, with only two probes ever in flight.
    await server.client
      .db(childName)
      .collection('children')
      .insertMany(
        Array.from({ length: 30_000 }, (_, i) => ({ _id: i, ref: `p${i < 1000 ? i : 0}` })) as never,
      );
    const config = await configFor(
      childrenParentsFile(server.uri, childName, parentName, { relation: { batchSize: 500, graceDays: 30 } }),
    );
    const admin = server.client.db('admin');
    // The second probe fails with MaxTimeMSExpired, as a probe under a short maxTimeMS would.
    await admin.command({
      configureFailPoint: 'failCommand',
      mode: { skip: 1, times: 1 },
      data: { failCommands: ['find'], errorCode: 50, namespace: `${parentName}.parents` },
    });
    const pool = new SourcePool(config.sources);
    try {
      const report = await runScan({ config, pool, access: { readOnly: false } });
      const [rel] = report.relations;
      expect(rel.error).toMatch(/failCommand|MaxTimeMS|exceeded time limit/i);
      expect(rel.complete).toBe(false);
      expect(rel.safe).toBe(false);
      // Nothing from the partial view became first-seen state.
      const firstSeen = await server.client
        .db(childName)
        .collection('orphan_cleanup_first_seen')
        .countDocuments({ pending: { $ne: true } });
      expect(firstSeen).toBe(0);
    } finally {
      await admin.command({ configureFailPoint: 'failCommand', mode: 'off' });
      await pool.close();
    }
  });
});
