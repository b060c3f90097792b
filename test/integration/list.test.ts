import { EJSON } from 'bson';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listUnresolved } from '../../src/engine/list.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { ExceptionsStore, exceptionKey } from '../../src/store/exceptions.ts';
import { runCli } from '../support/cli.ts';
import { configFor, embeddingsConfigFile, writeConfigFile } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

/**
 * Every orphan reachable, not only samples: after one complete scan, `scan --list` pages through all 10,000
 * orphaned children (and finds them by reference) from the first-seen state plus queries on the child
 * collection, without a rescan.
 */
let server: TestServer;
let childDb: string;
let parentDb: string;
let configPath: string;
const ORPHANS = 10_000;
const missing = Array.from({ length: 2500 }, () => new ObjectId());
const inactive = new ObjectId();
const excepted = new ObjectId();

const file = () => embeddingsConfigFile(server.uri, childDb, parentDb, { softDeleteField: 'deleted_at' });

/** `scan --config … --list embeddings` with more arguments, as an operator types it. */
const list = (...args: string[]) => runCli(['scan', '--config', configPath, '--list', 'embeddings', ...args]);

beforeAll(async () => {
  server = await startTestServer();
  childDb = server.dbName('listchild');
  parentDb = server.dbName('listparent');
  const live = new ObjectId();
  await server.client
    .db(parentDb)
    .collection('content')
    .insertMany([{ _id: live }, { _id: inactive, deleted_at: new Date('2026-01-01') }]);
  const children = server.client.db(childDb).collection('embeddings');
  await children.createIndex({ content_id: 1 });
  // Four children per missing parent, half of them holding the reference as a hex string.
  await children.insertMany(
    Array.from({ length: ORPHANS }, (_, i) => {
      const parent = missing[i % missing.length];
      return { content_id: i % 2 ? parent : parent.toHexString(), n: i };
    }),
  );
  await children.insertMany([
    ...Array.from({ length: 300 }, () => ({ content_id: live })),
    ...Array.from({ length: 7 }, () => ({ content_id: inactive })),
    ...Array.from({ length: 5 }, () => ({ content_id: excepted })),
  ]);
  const config = await configFor(file());
  const pool = new SourcePool(config.sources);
  try {
    await new ExceptionsStore(await pool.db('child'), { readOnly: false }).add({
      relation: 'embeddings',
      kind: 'reference',
      value: excepted,
      valueKey: exceptionKey('reference', excepted, 'objectid-or-hex'),
      reason: 'kept on purpose',
      createdBy: 'test',
      createdAt: new Date(),
    });
    const [scanned] = (await runScan({ config, pool, access: { readOnly: false } })).relations;
    expect(scanned).toMatchObject({ orphans: ORPHANS, parentInactive: 7, excepted: 5, ok: 300 });
  } finally {
    await pool.close();
  }
  configPath = await writeConfigFile(file());
});
afterAll(async () => server?.stop());

describe('scan --list', () => {
  it('streams every orphaned child once, without a rescan, as JSON lines', async () => {
    const result = await list('--category', 'orphans', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => EJSON.parse(line, { relaxed: false }));
    expect(lines).toHaveLength(ORPHANS);
    expect(new Set(lines.map((line) => String(line._id))).size).toBe(ORPHANS);
    expect(new Set(lines.map((line) => line.category))).toEqual(new Set(['orphans']));
    // The scan never ran again: still one scan in the history.
    expect(
      await server.client.db(childDb).collection('orphan_cleanup_runs').countDocuments({ kind: 'scan' }),
    ).toBe(1);
  });

  it('lists inactive parents apart, and leaves excepted children out', async () => {
    const result = await list('--category', 'parentInactive');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`ObjectId(${inactive.toHexString()})`);
    expect(result.stdout).toContain('7 children');
    expect(result.stdout).not.toContain(excepted.toHexString());
    const all = await list();
    expect(all.stdout).toContain(`${(ORPHANS + 7).toLocaleString('en-US')} children`);
  });

  it('finds the children of one reference, in either form, and says so when a reference has none', async () => {
    const wanted = missing[17];
    const result = await list('--ref', wanted.toHexString(), '--json');
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => EJSON.parse(line));
    expect(lines).toHaveLength(4);
    expect(lines.every((line) => String(line.reference).toLowerCase().includes(wanted.toHexString()))).toBe(
      true,
    );
    const none = await list('--ref', new ObjectId().toHexString());
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no child of embeddings points at it/);
  });

  it('pages through all orphans from the engine, a page of references at a time', async () => {
    const config = await configFor(file());
    const pool = new SourcePool(config.sources);
    try {
      const listing = await listUnresolved({
        config,
        pool,
        relation: config.relations[0],
        category: 'orphans',
      });
      let count = 0;
      for await (const child of listing.children) {
        count++;
        expect(child.pastGrace).toBe(false);
      }
      expect(count).toBe(ORPHANS);
      expect(listing.asOf?.kind).toBe('scan');
    } finally {
      await pool.close();
    }
  });

  it('holds no server cursor between the reads of a consumer that pauses (the console waits for key presses)', async () => {
    const config = await configFor(file());
    const pool = new SourcePool(config.sources);
    const admin = server.client.db('admin');
    // mongod kills a cursor idle for cursorTimeoutMillis (10 minutes); shortened here.
    await admin.command({ setParameter: 1, cursorTimeoutMillis: 300 });
    try {
      const listing = await listUnresolved({
        config,
        pool,
        relation: config.relations[0],
        category: 'orphans',
      });
      let count = 0;
      for await (const _child of listing.children) {
        // An operator reads the first screen, goes for coffee, then pages on.
        if (++count === 1) await new Promise((resolve) => setTimeout(resolve, 800));
      }
      expect(count).toBe(ORPHANS);
    } finally {
      await admin.command({ setParameter: 1, cursorTimeoutMillis: 600_000 });
      await pool.close();
    }
  });

  it('refuses without an index on the child field, naming the index to create', async () => {
    await server.client.db(childDb).collection('embeddings').dropIndex('content_id_1');
    try {
      const result = await list();
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/needs an index on embeddings\.content_id; create it with .*createIndex/);
    } finally {
      await server.client.db(childDb).collection('embeddings').createIndex({ content_id: 1 });
    }
  });

  it('refuses a category the scan does not store, and --ref without --list', async () => {
    const bad = await list('--category', 'ok');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--category ok: listable categories are orphans and parentInactive/);
    const stray = await runCli(['scan', '--config', configPath, '--ref', 'x']);
    expect(stray.code).toBe(2);
  });
});
