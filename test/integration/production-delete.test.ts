import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BSON, type Document, EJSON } from 'bson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackupFiles } from '../support/backups.ts';
import { listUnresolved } from '../../src/engine/list.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { documentKey } from '../../src/store/exceptions.ts';
import { restoreAll, scanAndClean } from '../support/cleanup-fixture.ts';
import { backedUp, missingFrom, snapshot } from '../support/invariants.ts';
import { childrenParentsFile, configFor } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 22, items 2 to 4: the delete path inside MongoDB's transaction limits, restore of the copy that was
// deleted, backups that keep the collection's options. A replica-set sandbox with a second port answering as
// its secondary; its fail points and transaction lifetime make mongod's limits reachable in seconds.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0', secondaryPort: 0, sandboxOnly: true });
});
afterAll(async () => server?.stop());

const admin = () => server.client.db('admin');
const failPointOff = () => admin().command({ configureFailPoint: 'failCommand', mode: 'off' });

let fixtures = 0;
/** 250 children of which every third has a parent; one relation children.ref -> parents._id, no grace. */
async function world(
  options: { childOptions?: Document; children?: Document[]; parents?: Document[]; parentUri?: string } = {},
) {
  const n = fixtures++;
  const childName = server.dbName(`del${n}c`);
  const parentName = server.dbName(`del${n}p`);
  const childDb = server.client.db(childName);
  await childDb.createCollection('children', options.childOptions ?? {});
  const children =
    options.children ?? Array.from({ length: 250 }, (_, i) => ({ _id: i, ref: `p${i}`, note: 'original' }));
  const parents = options.parents ?? children.filter((_, i) => i % 3 === 0).map((c) => ({ _id: c.ref }));
  await childDb.collection('children').insertMany(children as never);
  await server.client
    .db(parentName)
    .collection('parents')
    .insertMany(parents as never);
  return {
    config: await configFor(childrenParentsFile(server.uri, childName, parentName, options)),
    backupRoot: await mkdtemp(join(tmpdir(), 'oc-delete-')),
    childDb,
    children: childDb.collection('children'),
    orphanIds: children.filter((_, i) => i % 3 !== 0).map((c) => c._id),
  };
}

async function runDirOf(backupRoot: string): Promise<string> {
  const [run] = await readdir(backupRoot);
  return join(backupRoot, run);
}

describe('the transaction covers only re-read, comparison and delete', () => {
  it('deletes exactly the backed-up set when the re-check takes longer than the transaction lifetime', async () => {
    const w = await world();
    const before = await snapshot(w.children);
    await admin().command({ setParameter: 1, transactionLifetimeLimitSeconds: 1 });
    try {
      const { result } = await scanAndClean(w, {
        beforeBatch: async () => {
          // Every parent re-check now takes 1.3 s: longer than a transaction may live.
          await admin().command({
            configureFailPoint: 'failCommand',
            mode: 'alwaysOn',
            data: {
              failCommands: ['find'],
              blockConnection: true,
              blockTimeMS: 1300,
              namespace: `${w.config.sources.parent.database}.parents`,
            },
          });
        },
      });
      expect([result.status, result.error]).toEqual(['completed', undefined]);
    } finally {
      await failPointOff();
      await admin().command({ setParameter: 1, transactionLifetimeLimitSeconds: 60 });
    }
    const gone = missingFrom(before, await snapshot(w.children));
    const backup = await backedUp(w.backupRoot);
    expect(gone.every((id) => backup.has(id))).toBe(true);
    expect(gone.sort()).toEqual(w.orphanIds.map(documentKey).sort());
  });

  it('retries a batch whose commit fails transiently, and says how many times it tried when it keeps failing', async () => {
    const w = await world();
    await admin().command({
      configureFailPoint: 'failCommand',
      mode: { times: 1 },
      data: {
        failCommands: ['commitTransaction'],
        errorCode: 112,
        errorLabels: ['TransientTransactionError'],
      },
    });
    try {
      const { result } = await scanAndClean(w);
      expect([result.status, result.error]).toEqual(['completed', undefined]);
    } finally {
      await failPointOff();
    }
    expect(await w.children.countDocuments()).toBe(250 - w.orphanIds.length);

    const again = await world();
    await admin().command({
      configureFailPoint: 'failCommand',
      mode: 'alwaysOn',
      data: {
        failCommands: ['commitTransaction'],
        errorCode: 112,
        errorLabels: ['TransientTransactionError'],
      },
    });
    try {
      const { result } = await scanAndClean(again);
      expect(result.status).toBe('failed');
      expect(result.error).toMatch(
        /^a batch of rel was tried 3 times without being deleted, the last time because its commit failed \(.*\); that batch was not deleted, all of it is in the backup$/,
      );
    } finally {
      await failPointOff();
    }
    expect(await again.children.countDocuments()).toBe(250);
  });
});

describe('restore after a retried batch', () => {
  it('holds each try of the batch, marks which one was deleted, and restores that one', async () => {
    const w = await world();
    let edited: unknown;
    const { result } = await scanAndClean(w, {
      beforeDelete: async () => {
        if (edited !== undefined) return;
        // Another writer changes an orphan after it was backed up, before its delete.
        const [first] = (await readBackupFiles(await runDirOf(w.backupRoot))).files.values().next()
          .value!.documents;
        edited = BSON.deserialize(first)._id;
        await w.children.updateOne({ _id: edited } as never, { $set: { note: 'edited meanwhile' } });
      },
    });
    expect(result.status).toBe('completed');
    const backup = await readBackupFiles(result.runDir!);
    const [relation] = backup.manifest.relations;
    // The first try was written and abandoned; the second deleted.
    expect(relation.batches.slice(0, 2).map((b) => [b.attempt, b.retried ?? false, b.deleted])).toEqual([
      [1, true, 0],
      [2, false, 100],
    ]);
    const copies = [...backup.files.values()][0].documents
      .map((raw) => BSON.deserialize(raw))
      .filter((doc) => doc._id === edited);
    expect(copies.map((d) => d.note)).toEqual(['original', 'edited meanwhile']);
    expect(await w.children.countDocuments({ _id: edited } as never)).toBe(0);

    await restoreAll(result.runDir!, w.config);
    expect(await w.children.findOne({ _id: edited } as never)).toMatchObject({ note: 'edited meanwhile' });
    expect(await w.children.countDocuments()).toBe(250);
  });
});

describe('collations and members', () => {
  it("reads and deletes children by their exact bytes, whatever the child collection's default collation", async () => {
    const w = await world({
      childOptions: { collation: { locale: 'en', strength: 2 } },
      children: [
        { _id: 'c1', ref: 'gone' },
        { _id: 'C1', ref: 'GONE' },
      ],
      parents: [{ _id: 'GONE' }],
    });
    await scanAndClean(w);
    // "C1" is the child of a live parent: the collection's collation calls its _id and reference equal to c1's.
    expect(await w.children.find().toArray()).toEqual([{ _id: 'C1', ref: 'GONE' }]);
  });

  it('refuses a cleanup whose parent source is a direct connection to a secondary', async () => {
    const hello = await admin().command({ hello: 1 });
    const secondary = hello.hosts.find((host: string) => host !== hello.primary);
    const w = await world({ parentUri: `mongodb://${secondary}/?directConnection=true` });
    await expect(scanAndClean(w)).rejects.toThrow(
      /source parent is connected to a member that is not the primary .*; nothing was deleted/,
    );
    expect(await w.children.countDocuments()).toBe(250);
  });
});

describe('backups keep the collection as mongodump describes it', () => {
  it("records the child collection's options and UUID in its metadata.json", async () => {
    const w = await world({
      childOptions: {
        collation: { locale: 'fr', strength: 1 },
        changeStreamPreAndPostImages: { enabled: true },
      },
    });
    const { result } = await scanAndClean(w);
    const metadata = EJSON.parse(
      await readFile(join(result.runDir!, w.childDb.databaseName, 'children.metadata.json'), 'utf8'),
    ) as Document;
    const [info] = await w.childDb.listCollections({ name: 'children' }).toArray();
    expect(metadata.options).toMatchObject({
      collation: { locale: 'fr', strength: 1 },
      changeStreamPreAndPostImages: { enabled: true },
    });
    expect(metadata.uuid).toBe(Buffer.from((info as Document).info.uuid.buffer).toString('hex'));
  });
});

describe("the tool's own state", () => {
  it('is read from the primary right after it is written, whatever the read preference (a secondary lags)', async () => {
    // A set whose secondary trails by 3 s: secondaryPreferred reads go there, and see the past.
    const lagging = await startTestServer({
      replicaSet: 'rs0',
      secondaryPort: 0,
      sandboxOnly: true,
      secondaryLagMs: 3000,
      majorityLagMs: 0,
    });
    try {
      const childName = lagging.dbName('state_c');
      const parentName = lagging.dbName('state_p');
      await lagging.client
        .db(childName)
        .collection('children')
        .insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: i, ref: `gone${i}` })) as never, {
          writeConcern: { w: 'majority' },
        });
      await lagging.client.db(childName).collection('children').createIndex({ ref: 1 });
      await lagging.client
        .db(parentName)
        .collection('parents')
        .insertOne({ _id: 'here' } as never, { writeConcern: { w: 'majority' } });
      await new Promise((resolve) => setTimeout(resolve, 3200));
      const config = await configFor(childrenParentsFile(lagging.uri, childName, parentName));
      const pool = new SourcePool(config.sources);
      try {
        const [scanned] = (await runScan({ config, pool, access: { readOnly: false } })).relations;
        expect(scanned.orphans).toBe(50);
        // At once: the first sightings the scan just confirmed on the primary.
        const listing = await listUnresolved({ config, pool, relation: config.relations[0] });
        let listed = 0;
        for await (const _child of listing.children) listed++;
        expect(listed).toBe(50);
        expect(listing.asOf?.runId).toBe(scanned.runId);
      } finally {
        await pool.close();
      }
    } finally {
      await lagging.stop();
    }
  });
});
