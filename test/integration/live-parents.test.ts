import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal128, type Document, Double, Int32, Long } from 'bson';
import type { CreateCollectionOptions } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigFile } from '../../src/config/schema.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { documentKey } from '../../src/store/exceptions.ts';
import { scanAndClean } from '../support/cleanup-fixture.ts';
import { backedUp, missingFrom, snapshot } from '../support/invariants.ts';
import { configFor } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// The ways a live parent could be judged missing or inactive on a real server, with values another client
// writes (Decimal128, Int64, dates, collations, arrays). After each: no child of a live parent is deleted, and
// every deleted child is in a backup.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.stop());

const DAY = 86_400_000;
type RelationFile = ConfigFile['relations'][number];

interface Fixture {
  config: Awaited<ReturnType<typeof configFor>>;
  backupRoot: string;
  childDb: string;
  parentDb: string;
}

let fixtures = 0;
/** Parents and children in two databases, one relation `children.ref -> parents.<field>`, no grace period. */
async function twoDatabases(options: {
  parents: Document[];
  children: Document[];
  parent?: Partial<RelationFile['parent']>;
  keyMatch?: RelationFile['keyMatch'];
  parentIndex?: Document;
  createParents?: CreateCollectionOptions;
  maxOrphanRatio?: number;
}): Promise<Fixture> {
  const n = fixtures++;
  const childDb = server.dbName(`lp${n}c`);
  const parentDb = server.dbName(`lp${n}p`);
  const parents = server.client.db(parentDb);
  if (options.createParents) await parents.createCollection('parents', options.createParents);
  if (options.parentIndex) await parents.collection('parents').createIndex(options.parentIndex);
  if (options.parents.length) await parents.collection('parents').insertMany(options.parents);
  await server.client.db(childDb).collection('children').insertMany(options.children);
  const config = await configFor({
    sources: {
      child: { uri: server.uri, database: childDb },
      parent: { uri: server.uri, database: parentDb },
    },
    relations: [
      {
        name: 'rel',
        child: { source: 'child', collection: 'children', field: 'ref' },
        parent: { source: 'parent', collection: 'parents', field: '_id', ...options.parent },
        keyMatch: options.keyMatch ?? 'exact',
        graceDays: 0,
      },
    ],
    maxOrphanRatio: options.maxOrphanRatio ?? 0.9,
  });
  return { config, backupRoot: await mkdtemp(join(tmpdir(), 'oc-live-')), childDb, parentDb };
}

function childrenOf(fixture: Fixture) {
  return server.client.db(fixture.childDb).collection('children');
}

/** Cleans, then checks that exactly `expected` children (by `_id`) went, each into a backup. */
async function cleanExpectingDeleted(
  fixture: Fixture,
  expected: unknown[],
  options: Parameters<typeof scanAndClean>[1] = {},
) {
  const before = await snapshot(childrenOf(fixture));
  const outcome = await scanAndClean(fixture, options);
  const gone = missingFrom(before, await snapshot(childrenOf(fixture)));
  const backup = await backedUp(fixture.backupRoot);
  expect(gone.every((id) => backup.has(id))).toBe(true);
  expect(gone.sort()).toEqual(expected.map(documentKey).sort());
  return outcome;
}

describe('soft delete means what it says', () => {
  it('reads only a date or true as deleted; false, 0, "", null and absence as live', async () => {
    const deletedAt = new Date(Date.now() - 30 * DAY);
    const fixture = await twoDatabases({
      parents: [
        { _id: 1, deleted_at: false },
        { _id: 2, deleted_at: 0 },
        { _id: 3, deleted_at: '' },
        { _id: 4, deleted_at: null },
        { _id: 5 },
        { _id: 6, deleted_at: deletedAt },
        { _id: 7, deleted_at: true },
        { _id: 8, deleted_at: new Long(0) },
        { _id: 9, deleted_at: Decimal128.fromString('0') },
      ],
      children: [1, 2, 3, 4, 5, 6, 7, 8, 9].map((ref) => ({ _id: `c${ref}`, ref })),
      parent: { softDeleteField: 'deleted_at' },
    });
    const { report } = await cleanExpectingDeleted(fixture, ['c6', 'c7']);
    const [rel] = report.relations;
    expect([rel.ok, rel.parentInactive, rel.orphans]).toEqual([7, 2, 0]);
    expect(rel.safe).toBe(true);
  });

  it('calls any other value ambiguous: unsafe, with its type and an example, and never deleted', async () => {
    const fixture = await twoDatabases({
      parents: [
        { _id: 1, deleted_at: 5 },
        { _id: 2, deleted_at: 'yes' },
        { _id: 3, deleted_at: { by: 'someone' } },
        { _id: 4, deleted_at: new Date(Date.now() - 30 * DAY) },
      ],
      children: [1, 2, 3, 4].map((ref) => ({ _id: `c${ref}`, ref })),
      parent: { softDeleteField: 'deleted_at' },
    });
    await expect(scanAndClean(fixture)).rejects.toThrow(
      /cleanup refused: rel is unsafe: parents\.deleted_at holds a (number|string|object) \(e\.g\. parent _id \d\): only a date or true marks a deleted parent/,
    );
    expect(await childrenOf(fixture).countDocuments()).toBe(4);
    // Overridden, only the child of the parent with a date goes; the ambiguous ones count as live.
    const { report } = await cleanExpectingDeleted(fixture, ['c4'], { allowUnsafe: true });
    expect(report.relations[0].ok).toBe(3);
  });
});

describe('the server decides activeFilter', () => {
  it('compares Decimal128, Int64 beyond 2^53, Int32 and doubles as mongod does', async () => {
    const fixture = await twoDatabases({
      parents: [
        { _id: 1, score: Decimal128.fromString('10') },
        { _id: 2, score: Long.fromString('1152921504606846976') },
        { _id: 3, score: new Int32(3) },
        { _id: 4, score: new Double(7.5) },
        { _id: 5 },
        { _id: 6, score: Decimal128.fromString('5.0') },
        { _id: 7, score: '9' },
      ],
      children: [1, 2, 3, 4, 5, 6, 7].map((ref) => ({ _id: `c${ref}`, ref })),
      parent: { activeFilter: { score: { $gt: 5 } } },
    });
    // Live: 10, 2^60 and 7.5. Inactive: 3, no score, 5.0, and the string "9" (a string is never > a number).
    const { report } = await cleanExpectingDeleted(fixture, ['c3', 'c5', 'c6', 'c7']);
    expect([report.relations[0].ok, report.relations[0].parentInactive]).toEqual([3, 4]);
  });
});

describe('keys the tool cannot match fail closed', () => {
  it('refuses a parent collection whose default collation makes "alpha" the same key as "Alpha"', async () => {
    const fixture = await twoDatabases({
      createParents: { collation: { locale: 'en', strength: 2 } },
      parentIndex: { code: 1 },
      parents: [
        { _id: 1, code: 'Alpha' },
        { _id: 2, code: 'Beta' },
      ],
      children: [
        { _id: 'c1', ref: 'alpha' },
        { _id: 'c2', ref: 'Beta' },
        { _id: 'c3', ref: 'gamma' },
      ],
      parent: { field: 'code' },
    });
    // The server returned "Alpha" for "alpha": a key the tool cannot map back stops the scan, never "missing",
    // and a failed scan stops the cleanup whatever the overrides.
    await expect(scanAndClean(fixture, { allowUnsafe: true })).rejects.toThrow(
      /scan of rel failed: .*code \("Alpha"\) matches none of them: the server compares keys differently.*; nothing was deleted$/,
    );
    expect(await childrenOf(fixture).countDocuments()).toBe(3);
    // The collation itself is a reason the relation is unsafe, said by the scan.
    const pool = new SourcePool(fixture.config.sources);
    try {
      const [rel] = (await runScan({ config: fixture.config, pool, access: { readOnly: true } })).relations;
      expect(rel.unsafeReasons.join('; ')).toMatch(
        /default collation .*"strength":2.*keyMatch exact cannot follow/,
      );
    } finally {
      await pool.close();
    }
  });

  it('matches every element of a parent key inside an array of subdocuments', async () => {
    const fixture = await twoDatabases({
      parentIndex: { 'aliases.id': 1 },
      parents: [
        { _id: 1, aliases: [{ id: 'a1' }, { id: 'a2' }] },
        { _id: 2, aliases: [{ id: 'b1' }] },
      ],
      children: ['a1', 'a2', 'b1', 'zz'].map((ref) => ({ _id: `c-${ref}`, ref })),
      parent: { field: 'aliases.id' },
    });
    const { report } = await cleanExpectingDeleted(fixture, ['c-zz']);
    expect([report.relations[0].ok, report.relations[0].orphans]).toEqual([3, 1]);
  });
});

describe('guards', () => {
  it('calls a relation whose parents are all soft-deleted unsafe, whatever the ratio limit', async () => {
    const fixture = await twoDatabases({
      parents: [1, 2].map((_id) => ({ _id, deleted_at: new Date(Date.now() - 30 * DAY) })),
      children: [1, 2, 2].map((ref, i) => ({ _id: i, ref })),
      parent: { softDeleteField: 'deleted_at' },
      maxOrphanRatio: 1,
    });
    await expect(scanAndClean(fixture)).rejects.toThrow(/no child has an active parent/);
    expect(await childrenOf(fixture).countDocuments()).toBe(3);
  });

  it('refuses a parent key without an index, with the createIndex to run, unless collection scans are allowed', async () => {
    const fixture = await twoDatabases({
      parents: [{ _id: 1, code: 'x' }],
      children: [
        { _id: 1, ref: 'x' },
        { _id: 2, ref: 'y' },
      ],
      parent: { field: 'code' },
    });
    await expect(scanAndClean(fixture, { allowUnsafe: true })).rejects.toThrow(
      `scan of rel failed: no index on parent key ${fixture.parentDb}.parents.code: every probe would scan the whole parent collection; create it with db.getSiblingDB("${fixture.parentDb}").getCollection("parents").createIndex({ "code": 1 }) or pass --allow-collection-scan; nothing was deleted`,
    );
    expect(await childrenOf(fixture).countDocuments()).toBe(2);
    await cleanExpectingDeleted(fixture, [2], { config: { ...fixture.config, allowCollectionScan: true } });
  });

  it('names the missing privilege when listIndexes is refused, and calls the relation unsafe', async () => {
    const fixture = await twoDatabases({
      parentIndex: { code: 1 },
      parents: [{ _id: 1, code: 'x' }],
      children: [{ _id: 1, ref: 'y' }],
      parent: { field: 'code' },
    });
    await server.client.db('admin').command({
      configureFailPoint: 'failCommand',
      mode: { times: 1 },
      data: { failCommands: ['listIndexes'], errorCode: 13 },
    });
    await expect(scanAndClean(fixture)).rejects.toThrow(
      /cannot check for an index on .*parents\.code \(listIndexes refused: the user needs the listIndexes privilege/,
    );
    expect(await childrenOf(fixture).countDocuments()).toBe(1);
  });
});

describe('read preference', () => {
  it("follows the URI's mode, tags and maxStalenessSeconds, else the config's, else secondaryPreferred", async () => {
    const base = server.uri.includes('?') ? `${server.uri}&` : `${server.uri}?`;
    const config = await configFor({
      sources: {
        tagged: {
          uri: `${base}readPreference=secondaryPreferred&readPreferenceTags=nodeType:ANALYTICS&maxStalenessSeconds=120`,
          database: 'a',
        },
        configured: { uri: server.uri, database: 'b', readPreference: 'nearest' },
        plain: { uri: server.uri, database: 'c' },
      },
      relations: [
        {
          name: 'r1',
          child: { source: 'tagged', collection: 'x', field: 'y' },
          parent: { source: 'configured', collection: 'x' },
        },
        {
          name: 'r2',
          child: { source: 'plain', collection: 'x', field: 'y' },
          parent: { source: 'plain', collection: 'x' },
        },
      ],
    });
    const pool = new SourcePool(config.sources);
    try {
      const tagged = (await pool.db('tagged')).readPreference;
      expect([tagged.mode, tagged.tags, tagged.maxStalenessSeconds]).toEqual([
        'secondaryPreferred',
        [{ nodeType: 'ANALYTICS' }],
        120,
      ]);
      expect((await pool.db('configured')).readPreference.mode).toBe('nearest');
      expect((await pool.db('plain')).readPreference.mode).toBe('secondaryPreferred');
    } finally {
      await pool.close();
    }
  });
});
