import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BSON, Double, Long, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackupFiles } from '../support/backups.ts';
import { executeCleanup } from '../../src/cleanup/execute.ts';
import { RelationLock } from '../../src/cleanup/lock.ts';
import { buildPlan, PLAN_SAMPLE_SIZE } from '../../src/cleanup/plan.ts';
import { restoreBackup, verifyBackup } from '../../src/cleanup/restore.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import { RuntimeError } from '../../src/errors.ts';
import { successRatio } from '../../src/metrics/prometheus.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { OWNED_COLLECTIONS, ReadOnlyError } from '../../src/store/access.ts';
import { documentKey, ExceptionsStore } from '../../src/store/exceptions.ts';
import { freshDemo, restoreAll, scanAndClean } from '../support/cleanup-fixture.ts';
import { backedUp, missingFrom, snapshot } from '../support/invariants.ts';
import type { OlorinFixture } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.stop());

const CHILD_COLLECTIONS = ['content_embeddings', 'recap_sessions', 'dubbing_sessions'];

async function snapshots(demo: OlorinFixture) {
  const db = server.client.db(demo.olorinDb);
  return Object.fromEntries(
    await Promise.all(
      CHILD_COLLECTIONS.map(async (name) => [name, await snapshot(db.collection(name))] as const),
    ),
  );
}

describe('clean --execute', () => {
  it('backs up exactly what it deletes, and restore puts every document back byte for byte', async () => {
    const demo = await freshDemo(server);
    const before = await snapshots(demo);
    const { result, plan } = await scanAndClean(demo);
    expect(result.status).toBe('completed');
    expect(plan.relations.map((r) => [r.name, r.toDelete])).toEqual([
      ['content_embeddings', 600],
      ['recap_sessions', 32],
      ['dubbing_sessions', 56],
    ]);
    expect(result.relations.map((r) => [r.name, r.backedUp, r.deleted, r.mismatch])).toEqual([
      ['content_embeddings', 600, 600, 0],
      ['recap_sessions', 32, 32, 0],
      ['dubbing_sessions', 56, 56, 0],
    ]);
    const after = await snapshots(demo);
    const backups = await backedUp(demo.backupRoot);
    for (const name of CHILD_COLLECTIONS) {
      for (const key of missingFrom(before[name], after[name]))
        expect(backups.get(key)?.equals(before[name].get(key)!)).toBe(true);
    }
    expect(backups.size).toBe(688);

    const pool = new SourcePool(demo.config.sources);
    try {
      const verified = await verifyBackup(result.runDir!, { config: demo.config, pool });
      expect(verified.relations.map((r) => [r.name, r.present, r.absent])).toEqual([
        ['content_embeddings', 0, 600],
        ['recap_sessions', 0, 32],
        ['dubbing_sessions', 0, 56],
      ]);
      const restored = await restoreBackup(result.runDir!, {
        config: demo.config,
        pool,
        access: { readOnly: false },
        selection: {},
        dryRun: false,
      });
      expect(restored.relations.map((r) => r.inserted)).toEqual([600, 32, 56]);
    } finally {
      await pool.close();
    }
    const again = await snapshots(demo);
    for (const name of CHILD_COLLECTIONS) {
      expect(again[name].size).toBe(before[name].size);
      for (const [key, raw] of before[name]) expect(again[name].get(key)?.equals(raw)).toBe(true);
    }
    const runs = await server.client
      .db(demo.olorinDb)
      .collection(OWNED_COLLECTIONS.runs)
      .find({ kind: { $in: ['clean', 'restore'] } })
      .toArray();
    expect(runs.map((r) => r.kind).sort()).toEqual([
      'clean',
      'clean',
      'clean',
      'restore',
      'restore',
      'restore',
    ]);
    expect(await readFile(join(demo.backupRoot, 'audit.jsonl'), 'utf8')).toMatch(
      /"kind":"clean".*\n.*"kind":"restore"/,
    );
  });

  it('backs up and restores documents holding int64, whole doubles and -0.0 byte for byte as they were written', async () => {
    // A backup is only as faithful as what the server returns: on mongod an int64 or a 1.0 in an embedding stays
    // what it was; the sandbox used to hand them back as int32, so a restore wrote back another type.
    const demo = await freshDemo(server);
    const embeddings = server.client.db(demo.olorinDb).collection('content_embeddings');
    const written = [0, 1, 2].map((i) => ({
      _id: new ObjectId(),
      content_id: new ObjectId().toHexString(),
      embedding_type: 'title',
      tokens: Long.fromNumber(1000 + i),
      embedding: [new Double(1), -0, 0.5, new Double(0)],
      version: new Double(2),
    }));
    await embeddings.insertMany(written);
    const { result } = await scanAndClean(demo);
    expect(result.status).toBe('completed');
    const backups = await backedUp(demo.backupRoot);
    for (const doc of written)
      expect(backups.get(documentKey(doc._id))?.equals(Buffer.from(BSON.serialize(doc)))).toBe(true);
    await restoreAll(result.runDir!, demo.config);
    for (const doc of written) {
      const [raw] = (await embeddings.find({ _id: doc._id }, { raw: true }).toArray()) as unknown as Buffer[];
      expect(Buffer.from(raw).equals(Buffer.from(BSON.serialize(doc)))).toBe(true);
    }
  });

  it('re-checks every batch: a parent back, a changed reference and a new exception are not deleted', async () => {
    const demo = await freshDemo(server);
    const olorin = server.client.db(demo.olorinDb);
    const pool = new SourcePool(demo.config.sources);
    const config = {
      ...demo.config,
      relations: demo.config.relations.filter((r) => r.name === 'recap_sessions'),
    };
    const report = await runScan({
      config,
      pool,
      access: { readOnly: false },
      candidateLimit: Number.POSITIVE_INFINITY,
    });
    const plan = await buildPlan(report, config, pool, {
      backupRoot: demo.backupRoot,
      deleteBatchSize: 1000,
    });
    const [first, second, third] = plan.relations[0].candidates.filter(
      (c, i, all) => all.findIndex((o) => o.key === c.key) === i,
    );
    const live = await server.client.db(demo.bayitDb).collection('live_channels').findOne({});
    try {
      const result = await executeCleanup({
        plan,
        config,
        pool,
        access: { readOnly: false },
        beforeBatch: async () => {
          await server.client
            .db(demo.bayitDb)
            .collection('live_channels')
            .insertOne({ _id: new ObjectId(first.key), name: 'restored channel' });
          await olorin
            .collection('recap_sessions')
            .updateOne({ _id: second.id as ObjectId }, { $set: { channel_id: live!._id } });
          await new ExceptionsStore(olorin, { readOnly: false }).add({
            relation: 'recap_sessions',
            kind: 'document',
            value: third.id,
            valueKey: documentKey(third.id),
            reason: 'added while the plan was shown',
            createdBy: 'test',
            createdAt: new Date(),
          });
        },
      });
      const [outcome] = result.relations;
      // Four recaps point at each deleted channel.
      expect(outcome.skipped).toEqual({
        gone: 0,
        referenceChanged: 1,
        excepted: 1,
        parentBack: 4,
        inGrace: 0,
      });
      expect(outcome.deleted).toBe(32 - 6);
      expect(successRatio(outcome)).toBeCloseTo(26 / 32);
      // The parents are re-checked after the backup is on disk, right before the delete: the four children
      // of the restored channel are in the backup but not deleted; the changed and excepted ones are not backed up.
      expect(outcome.backedUp).toBe(30);
      for (const kept of [second, third])
        expect(await olorin.collection('recap_sessions').countDocuments({ _id: kept.id as ObjectId })).toBe(
          1,
        );
      expect(
        await olorin.collection('recap_sessions').countDocuments({ channel_id: new ObjectId(first.key) }),
      ).toBe(4);
    } finally {
      await pool.close();
    }
  });

  it('deletes the oldest orphans first under --max-deletes and defers the rest', async () => {
    const demo = await freshDemo(server);
    const { plan, result } = await scanAndClean(demo, { maxDeletes: 100 });
    expect(plan.relations.map((r) => [r.toDelete, r.deferred])).toEqual([
      [100, 500],
      [0, 32],
      [0, 56],
    ]);
    const sinces = plan.relations[0].candidates.map((c) => c.since.getTime());
    expect(sinces).toEqual([...sinces].sort((a, b) => a - b));
    expect(result.relations.map((r) => r.deleted)).toEqual([100]);
  });

  it('plans a dry run from a sample of the candidates (memory independent of the backlog), and will not execute it', async () => {
    const demo = await freshDemo(server);
    const pool = new SourcePool(demo.config.sources);
    try {
      const report = await runScan({
        config: demo.config,
        pool,
        access: { readOnly: false },
        candidateLimit: PLAN_SAMPLE_SIZE,
      });
      expect(report.relations.map((r) => r.candidates.length)).toEqual([20, 20, 20]);
      const plan = await buildPlan(report, demo.config, pool, {
        backupRoot: demo.backupRoot,
        deleteBatchSize: 1000,
      });
      expect(plan.relations.map((r) => [r.toDelete, r.sampled])).toEqual([
        [600, true],
        [32, true],
        [56, true],
      ]);
      expect(plan.relations[0].estimatedBackupBytes).toBeGreaterThan(0);
      await expect(
        executeCleanup({ plan, config: demo.config, pool, access: { readOnly: false } }),
      ).rejects.toThrow(/holds a sample of its candidates \(a dry run's\)/);
      expect((await snapshots(demo)).content_embeddings.size).toBe(6620);
    } finally {
      await pool.close();
    }
  });

  it('refuses while another run holds the relation, and says who', async () => {
    const demo = await freshDemo(server);
    const db = server.client.db(demo.olorinDb);
    const holder = await RelationLock.acquire(
      db,
      'content_embeddings',
      { runId: 'other-run', operator: 'alice', host: 'box-1', pid: 4242 },
      { readOnly: false },
    );
    try {
      const before = await snapshots(demo);
      const config = {
        ...demo.config,
        relations: demo.config.relations.filter((r) => r.name === 'content_embeddings'),
      };
      const { result } = await scanAndClean(demo, { config });
      expect(result.status).toBe('failed');
      expect(result.error).toMatch(
        /^relation content_embeddings is locked by alice on box-1 \(pid 4242, run other-run\) since /,
      );
      expect((await snapshots(demo)).content_embeddings.size).toBe(before.content_embeddings.size);
    } finally {
      await holder.release();
    }
  });

  it('enforces read-only mode where the writes happen', async () => {
    const demo = await freshDemo(server);
    const pool = new SourcePool(demo.config.sources);
    try {
      const report = await runScan({
        config: demo.config,
        pool,
        access: { readOnly: true },
        candidateLimit: Number.POSITIVE_INFINITY,
      });
      const plan = await buildPlan(report, demo.config, pool, {
        backupRoot: demo.backupRoot,
        deleteBatchSize: 100,
      });
      await expect(
        executeCleanup({ plan, config: demo.config, pool, access: { readOnly: true } }),
      ).rejects.toThrow(ReadOnlyError);
      await expect(
        new ExceptionsStore(server.client.db(demo.olorinDb), { readOnly: true }).add({
          relation: 'x',
          kind: 'document',
          value: 1,
          valueKey: '1',
          reason: 'r',
          createdBy: 't',
          createdAt: new Date(),
        }),
      ).rejects.toThrow(ReadOnlyError);
    } finally {
      await pool.close();
    }
    expect((await snapshots(demo)).content_embeddings.size).toBe(6620);
  });

  it('refuses unsafe relations unless overridden, and everything when separation is switched off', async () => {
    const demo = await freshDemo(server, { extra: { maxOrphanRatio: 0.01 } });
    await expect(scanAndClean(demo)).rejects.toThrow(
      /cleanup refused: content_embeddings is unsafe: orphan ratio 0\.09 \(orphans and children of inactive parents\) is above maxOrphanRatio 0\.01/,
    );
    expect((await snapshots(demo)).content_embeddings.size).toBe(6620);
    const { result } = await scanAndClean(demo, { allowUnsafe: true });
    expect(result.status).toBe('completed');

    const off = await freshDemo(server, { env: { OLORIN_USE_SEPARATE_DATABASE: 'false' } });
    await expect(scanAndClean(off, { allowUnsafe: true })).rejects.toThrow(
      new RuntimeError(
        'cleanup refused: OLORIN_USE_SEPARATE_DATABASE=false: the design note requires separate databases before any cleanup; set OLORIN_USE_SEPARATE_DATABASE=true once the Olorin and Bayit+ data live in separate databases; nothing was deleted',
      ),
    );
    expect((await snapshots(off)).content_embeddings.size).toBe(6620);
    // Unset fails closed too: only an explicit true allows deletes, and no override reaches past it.
    const unset = await freshDemo(server, { env: { OLORIN_USE_SEPARATE_DATABASE: '' } });
    await expect(scanAndClean(unset, { allowUnsafe: true })).rejects.toThrow(
      new RuntimeError(
        'cleanup refused: OLORIN_USE_SEPARATE_DATABASE is not set: deletes need it; set OLORIN_USE_SEPARATE_DATABASE=true once the Olorin and Bayit+ data live in separate databases; nothing was deleted',
      ),
    );
    expect((await snapshots(unset)).content_embeddings.size).toBe(6620);
  });
});

describe('restore from a damaged backup', () => {
  it('refuses a corrupted or truncated backup and inserts nothing', async () => {
    const demo = await freshDemo(server);
    const config = {
      ...demo.config,
      relations: demo.config.relations.filter((r) => r.name === 'recap_sessions'),
    };
    const { result } = await scanAndClean(demo, { config });
    const file = join(result.runDir!, (await readBackupFiles(result.runDir!)).manifest.files[0].path);
    const pool = new SourcePool(demo.config.sources);
    const restore = () =>
      restoreBackup(result.runDir!, {
        config: demo.config,
        pool,
        access: { readOnly: false },
        selection: {},
        dryRun: false,
      });
    try {
      const original = await readFile(file);
      const corrupted = Buffer.from(original);
      corrupted[100] ^= 0xff;
      await writeFile(file, corrupted);
      await expect(restore()).rejects.toThrow(/checksum mismatch \(corrupted backup\)/);
      await truncate(file, original.length - 10);
      await expect(restore()).rejects.toThrow(/truncated backup/);
      await writeFile(join(result.runDir!, 'manifest.json'), '{"not": "a manifest"');
      await expect(restore()).rejects.toThrow(/unreadable backup manifest/);
      expect(await server.client.db(demo.olorinDb).collection('recap_sessions').countDocuments()).toBe(
        435 - 32,
      );
    } finally {
      await pool.close();
    }
  });
});
