import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_FILE } from '../../src/cleanup/audit.ts';
import { readBackupFiles } from '../support/backups.ts';
import { OWNED_COLLECTIONS } from '../../src/store/access.ts';
import { documentKey, ExceptionsStore } from '../../src/store/exceptions.ts';
import { type CleanableDemo, freshDemo, scanAndClean } from '../support/cleanup-fixture.ts';
import { backedUp, missingFrom, snapshot } from '../support/invariants.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// What a cleanup leaves behind when its batches are kept or its disk fills: the manifest, the runs record
// and the audit line agree, and nothing is deleted that is not in the backup.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.stop());

function only(demo: CleanableDemo, name: string): CleanableDemo {
  return {
    ...demo,
    config: { ...demo.config, relations: demo.config.relations.filter((r) => r.name === name) },
  };
}

/** The recap sessions whose channel is gone: their `_id`s and their references' keys (lower-case hex). */
async function orphanedRecaps(demo: CleanableDemo): Promise<{ ids: ObjectId[]; keys: Set<string> }> {
  const channels = await server.client.db(demo.bayitDb).collection('live_channels').find().toArray();
  const live = new Set(channels.map((c) => String(c._id).toLowerCase()));
  const recaps = await server.client.db(demo.olorinDb).collection('recap_sessions').find().toArray();
  const orphans = recaps.filter(
    (r) => /^[0-9a-f]{24}$/i.test(String(r.channel_id)) && !live.has(String(r.channel_id).toLowerCase()),
  );
  return {
    ids: orphans.map((r) => r._id),
    keys: new Set(orphans.map((r) => String(r.channel_id).toLowerCase())),
  };
}

async function auditLines(root: string): Promise<Record<string, any>[]> {
  const text = await readFile(join(root, AUDIT_FILE), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

describe('exceptions added while a cleanup runs', () => {
  it('keeps a child whose expired exception was renewed before its batch', async () => {
    const demo = only(await freshDemo(server), 'recap_sessions');
    const olorin = server.client.db(demo.olorinDb);
    const store = new ExceptionsStore(olorin, { readOnly: false });
    const [orphan] = (await orphanedRecaps(demo)).ids;
    const entry = {
      relation: 'recap_sessions',
      kind: 'document' as const,
      value: orphan,
      valueKey: documentKey(orphan),
      reason: 'old hold',
      createdBy: 'test',
      createdAt: new Date(Date.now() - 60_000),
      expiresAt: new Date(Date.now() - 1000),
    };
    await store.add(entry);
    const { plan, result } = await scanAndClean(demo, {
      beforeBatch: async () => {
        const renewed = await store.add({
          ...entry,
          reason: 'hold renewed',
          createdAt: new Date(),
          expiresAt: undefined,
        });
        expect(renewed.outcome).toBe('renewed');
      },
    });
    // The scan saw an expired exception: the child was planned, then kept by the batch's re-check.
    expect(plan.relations[0].candidates.some((c) => String(c.id) === String(orphan))).toBe(true);
    expect(result.relations[0].skipped.excepted).toBe(1);
    expect(await olorin.collection('recap_sessions').countDocuments({ _id: orphan })).toBe(1);
  });
});

describe('a batch with no survivors', () => {
  it('counts its kept children the same in the manifest, the runs record and the audit line', async () => {
    const demo = only(await freshDemo(server), 'recap_sessions');
    const olorin = server.client.db(demo.olorinDb);
    const store = new ExceptionsStore(olorin, { readOnly: false });
    const { keys } = await orphanedRecaps(demo);
    const { plan, result } = await scanAndClean(demo, {
      beforeBatch: async () => {
        for (const key of keys)
          await store.add({
            relation: 'recap_sessions',
            kind: 'reference',
            value: new ObjectId(key),
            valueKey: key,
            reason: 'every one kept',
            createdBy: 'test',
            createdAt: new Date(),
          });
      },
    });
    expect(plan.relations[0].toDelete).toBe(32);
    const [outcome] = result.relations;
    expect([outcome.deleted, outcome.backedUp, outcome.skipped.excepted]).toEqual([0, 0, 32]);
    const manifest = (await readBackupFiles(result.runDir!)).manifest;
    expect(manifest.relations[0].skipped).toMatchObject({ excepted: 32 });
    const record = await olorin.collection(OWNED_COLLECTIONS.runs).findOne({ runId: result.runId });
    expect(record?.counts).toMatchObject({ excepted: 32, deleted: 0, backedUp: 0 });
    const audit = (await auditLines(demo.backupRoot)).find((line) => line.runId === result.runId)!;
    expect(audit.relations[0].skipped).toMatchObject({ excepted: 32 });
  });
});

describe('a full disk', () => {
  let mountPoint: string;
  beforeAll(async () => {
    mountPoint = await mkdtemp(join(tmpdir(), 'oc-tinyfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint]);
  });
  afterAll(() => {
    if (mountPoint) execFileSync('umount', [mountPoint]);
  });

  it('deletes nothing of the batch it could not back up, and says where and how much', async () => {
    const demo = {
      ...only(await freshDemo(server), 'content_embeddings'),
      backupRoot: join(mountPoint, 'backups'),
    };
    const embeddings = server.client.db(demo.olorinDb).collection('content_embeddings');
    const before = await snapshot(embeddings);
    const { result } = await scanAndClean(demo, {
      beforeBatch: async (_relation, batch) => {
        if (batch !== 2) return;
        // Leave room for the manifest and the audit line, not for a batch.
        const fs = await statfs(mountPoint);
        await writeFile(
          join(mountPoint, 'filler'),
          Buffer.alloc(Number(fs.bavail) * Number(fs.bsize) - 16 * 1024),
        );
      },
    });
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(
      new RegExp(
        `^backup ${result.runDir}: no space left on the device while writing batch 3 of content_embeddings \\(\\d+ bytes needed\\); that batch was not deleted$`,
      ),
    );
    const [outcome] = result.relations;
    expect([outcome.backedUp, outcome.deleted]).toEqual([200, 200]);
    const gone = missingFrom(before, await snapshot(embeddings));
    const backup = await backedUp(demo.backupRoot);
    expect(gone).toHaveLength(200);
    expect(gone.filter((id) => !backup.has(id))).toEqual([]);
    const manifest = (await readBackupFiles(result.runDir!)).manifest;
    expect([manifest.status, manifest.error]).toEqual(['failed', result.error]);
    expect(
      (await readdir(result.runDir!, { recursive: true })).filter((f) => String(f).endsWith('.tmp')),
    ).toEqual([]);
    const record = await server.client
      .db(demo.olorinDb)
      .collection(OWNED_COLLECTIONS.runs)
      .findOne({ runId: result.runId });
    expect(record?.outcome).toBe('failed');
    expect((await auditLines(demo.backupRoot)).at(-1)).toMatchObject({
      runId: result.runId,
      status: 'failed',
    });
  });
});
