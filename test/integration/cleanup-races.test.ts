import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BSON, type Document } from 'bson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackupFiles } from '../support/backups.ts';
import { OWNED_COLLECTIONS } from '../../src/store/access.ts';
import { type CleanableDemo, freshDemo, scanAndClean } from '../support/cleanup-fixture.ts';
import { backedUp, missingFrom, snapshot } from '../support/invariants.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// What happens when the world moves during a cleanup: a child changes between backup and delete, the lease is
// taken over, a server hangs (SIGSTOP), a majority cannot be reached, secondaries lag. Always the sandbox (a
// replica set for the child data, a second process for the parents): the faults need its processes and fail
// points. After each: nothing deleted that is not in a backup, and the run ends within its documented bound.
let server: TestServer;
let parents: TestServer;

beforeAll(async () => {
  [server, parents] = await Promise.all([
    startTestServer({ replicaSet: 'rs0', sandboxOnly: true }),
    startTestServer({ sandboxOnly: true }),
  ]);
});
afterAll(async () => {
  await server?.stop();
  await parents?.stop();
});

/** Demo data with the Olorin side on the replica set and Bayit+ on the second process; short, documented bounds. */
async function demoAcrossTwoServers(): Promise<CleanableDemo> {
  const demo = await freshDemo(server, { parentServer: parents });
  const bounded = (uri: string) =>
    `${uri}${uri.includes('?') ? '&' : '?'}socketTimeoutMS=1500&serverSelectionTimeoutMS=1500&connectTimeoutMS=1500`;
  const sources = Object.fromEntries(
    Object.entries(demo.config.sources).map(([name, source]) => [
      name,
      { ...source, uri: bounded(source.uri) },
    ]),
  );
  const relations = demo.config.relations.filter((r) => r.name === 'content_embeddings');
  return { ...demo, config: { ...demo.config, sources, relations, maxTimeMS: 1000 } };
}

async function expectEveryDeletedBackedUp(demo: CleanableDemo, before: Map<string, Buffer>) {
  const after = await snapshot(server.client.db(demo.olorinDb).collection('content_embeddings'));
  const gone = missingFrom(before, after);
  const backup = await backedUp(demo.backupRoot);
  expect(gone.filter((id) => !backup.has(id))).toEqual([]);
  return gone;
}

const embeddingsOf = (demo: CleanableDemo) =>
  server.client.db(demo.olorinDb).collection('content_embeddings');

describe('a child that changes during its batch', () => {
  it('aborts the transaction on the write conflict and retries it, so the deleted version is the one backed up', async () => {
    const demo = await demoAcrossTwoServers();
    const embeddings = embeddingsOf(demo);
    const before = await snapshot(embeddings);
    let changed: unknown;
    const { result } = await scanAndClean(demo, {
      beforeDelete: async (_relation, backupBatch) => {
        if (backupBatch !== 0 || changed !== undefined) return;
        // Another writer touches a child after this batch read and backed it up, before its delete.
        const [first] = await backupDocs(await latestRun(demo.backupRoot));
        changed = first._id;
        await embeddings.updateOne({ _id: first._id }, { $set: { embedding_type: 'edited meanwhile' } });
      },
    });
    expect(result.status).toBe('completed');
    expect(changed).toBeDefined();
    await expectEveryDeletedBackedUp(demo, before);
    // The backup holds the version that was deleted (read again after the conflict), not only the old one.
    const versions = (await backupDocs(result.runDir!)).filter((d) => String(d._id) === String(changed));
    expect(versions.map((d) => d.embedding_type)).toContain('edited meanwhile');
    expect(await embeddings.countDocuments({ _id: changed as never })).toBe(0);
  });
});

describe('the lease', () => {
  it('a run whose lease was taken over deletes nothing more: the fencing token is checked before each delete', async () => {
    const demo = await demoAcrossTwoServers();
    const embeddings = embeddingsOf(demo);
    const before = await snapshot(embeddings);
    const locks = server.client.db(demo.olorinDb).collection<{ _id: string }>(OWNED_COLLECTIONS.locks);
    const { result } = await scanAndClean(demo, {
      beforeBatch: async (_relation, batch) => {
        // As if the lease had expired and another run had taken it over.
        if (batch === 2) await locks.updateOne({ _id: 'content_embeddings' }, { $inc: { fence: 1 } });
      },
    });
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/lost the lock on content_embeddings/);
    const gone = await expectEveryDeletedBackedUp(demo, before);
    expect(gone.length).toBe(200);
  });
});

describe('bounded waits', () => {
  it('a hung parent cluster (SIGSTOP) fails the run within its bound, everything deleted backed up', async () => {
    const demo = await demoAcrossTwoServers();
    const before = await snapshot(embeddingsOf(demo));
    const started = performance.now();
    try {
      const { result } = await scanAndClean(demo, {
        beforeBatch: async (_relation, batch) => {
          if (batch === 1) parents.pause();
        },
      });
      expect(result.status).toBe('failed');
      expect(result.error).toMatch(/timed out|timeout/i);
    } finally {
      parents.resume();
    }
    // socketTimeoutMS 1.5 s, a retried read and server selection 1.5 s: well under 15 s.
    expect(performance.now() - started).toBeLessThan(15_000);
    expect((await expectEveryDeletedBackedUp(demo, before)).length).toBe(100);
  });

  it('a hung child cluster (SIGSTOP) fails the run within its bound, everything deleted backed up', async () => {
    const demo = await demoAcrossTwoServers();
    const before = await snapshot(embeddingsOf(demo));
    const started = performance.now();
    let outcome: Awaited<ReturnType<typeof scanAndClean>> | undefined;
    try {
      outcome = await scanAndClean(demo, {
        beforeBatch: async (_relation, batch) => {
          if (batch === 1) server.pause();
        },
      });
    } finally {
      server.resume();
    }
    expect(outcome?.result.status).toBe('failed');
    // The run record and the lock release wait too, each bounded the same way.
    expect(performance.now() - started).toBeLessThan(30_000);
    expect((await expectEveryDeletedBackedUp(demo, before)).length).toBe(100);
  });

  it('a majority that cannot be reached fails the run after the write timeout, the batch already backed up', async () => {
    const demo = await demoAcrossTwoServers();
    const before = await snapshot(embeddingsOf(demo));
    const admin = server.client.db('admin');
    const started = performance.now();
    try {
      const { result } = await scanAndClean(demo, {
        beforeBatch: async (_relation, batch) => {
          if (batch === 1)
            await admin.command({ configureFailPoint: 'sandboxMajorityUnreachable', mode: 'alwaysOn' });
        },
      });
      expect(result.status).toBe('failed');
      expect(result.error).toMatch(/waiting for replication timed out/);
    } finally {
      await admin.command({ configureFailPoint: 'sandboxMajorityUnreachable', mode: 'off' });
    }
    expect(performance.now() - started).toBeLessThan(15_000);
    // The first batch was deleted; the second's commit never got its majority: whatever went is backed up.
    const gone = await expectEveryDeletedBackedUp(demo, before);
    expect(gone.length).toBeGreaterThanOrEqual(100);
  });
});

describe('replication lag', () => {
  const setLag = (data: object | undefined) =>
    server.client
      .db('admin')
      .command(
        data
          ? { configureFailPoint: 'sandboxReplicationLag', mode: 'alwaysOn', data }
          : { configureFailPoint: 'sandboxReplicationLag', mode: 'off' },
      );

  it('ignores hidden, delayed and non-voting (analytics) members', async () => {
    const demo = await demoAcrossTwoServers();
    const notices: string[] = [];
    try {
      for (const member of [{ hidden: true }, { delaySecs: 3600 }, { votes: 0 }]) {
        await setLag({ seconds: 3600, ...member });
        const { result } = await scanAndClean(demo, {
          maxLagSeconds: 5,
          maxLagWaitMs: 2000,
          onNotice: (m) => notices.push(m),
          maxDeletes: 200,
        });
        expect(result.status).toBe('completed');
      }
    } finally {
      await setLag(undefined);
    }
    expect(notices.filter((n) => n.startsWith('paused'))).toEqual([]);
  });

  it('gives up waiting after its bound with one line, having deleted only backed-up batches', async () => {
    const demo = await demoAcrossTwoServers();
    const before = await snapshot(embeddingsOf(demo));
    await setLag({ seconds: 3600 });
    try {
      const { result } = await scanAndClean(demo, { maxLagSeconds: 5, maxLagWaitMs: 1500 });
      expect(result.status).toBe('failed');
      expect(result.error).toMatch(
        /^--max-lag-seconds: a secondary still lags 3600 s after waiting 2 s; stopped before the next batch$/,
      );
    } finally {
      await setLag(undefined);
    }
    expect((await expectEveryDeletedBackedUp(demo, before)).length).toBe(100);
  });
});

/** The documents of a backup run, every version it holds. */
async function backupDocs(runDir: string): Promise<Document[]> {
  const backup = await readBackupFiles(runDir);
  return [...backup.files.values()].flatMap((file) =>
    [...file.documents, ...file.unrecorded].map((raw) => BSON.deserialize(raw)),
  );
}

async function latestRun(root: string): Promise<string> {
  const runs = (await readdir(root, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  return join(root, runs.sort().at(-1)!);
}
