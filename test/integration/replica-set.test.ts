import { MongoServerError } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagnose, diagnosisText } from '../../src/engine/doctor.ts';
import { probeCapabilities } from '../../src/mongo/capabilities.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { buildServer } from '../../src/serve/server.ts';
import { freshDemo, scanAndClean } from '../support/cleanup-fixture.ts';
import { backedUp, missingFrom, snapshot } from '../support/invariants.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// The cleanup's replica-set paths (a transaction per batch, waiting out secondary lag) against the sandbox
// acting as a one-member replica set. Always the sandbox: it simulates the lag a real set cannot be told to have.
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0', sandboxOnly: true });
});
afterAll(async () => server?.stop());

const admin = () => server.client.db('admin');
const setLag = (seconds: number) =>
  admin().command(
    seconds > 0
      ? { configureFailPoint: 'sandboxReplicationLag', mode: 'alwaysOn', data: { seconds } }
      : { configureFailPoint: 'sandboxReplicationLag', mode: 'off' },
  );

describe('the sandbox as a replica set', () => {
  it('says so in hello and replSetGetStatus, with the simulated lag', async () => {
    const hello = await admin().command({ hello: 1 });
    expect(hello.setName).toBe('rs0');
    expect(hello.hosts).toEqual([hello.me]);
    expect((await probeCapabilities(server.client)).transactions).toBe(true);
    await setLag(42);
    const status = await admin().command({ replSetGetStatus: 1 });
    const [primary, secondary] = status.members;
    expect([primary.stateStr, secondary.stateStr]).toEqual(['PRIMARY', 'SECONDARY']);
    expect(Math.round((primary.optimeDate - secondary.optimeDate) / 1000)).toBe(42);
    await setLag(0);
  });

  it('doctor shows the lag, or warns that --max-lag-seconds cannot read it', async () => {
    const demo = await freshDemo(server);
    const pool = new SourcePool(demo.config.sources);
    // Laid out wide: this test reads what doctor says, not how it wraps.
    const text = async () => diagnosisText(await diagnose(pool, demo.config.relations), (name) => name, 1000);
    try {
      await setLag(12);
      expect(await text()).toMatch(
        /^olorin: olorin {2}sandbox 7\.0\.0, replicaSet, transactions available, .*\n {2}info {2}secondaries lag 12 s$/m,
      );
      await setLag(0);
      await admin().command({
        configureFailPoint: 'failCommand',
        mode: { times: 2 },
        data: { failCommands: ['replSetGetStatus'], errorCode: 13 },
      });
      expect(await text()).toContain(
        'WARN  cannot read replication lag (replSetGetStatus needs the clusterMonitor role), so clean --max-lag-seconds refuses',
      );
    } finally {
      await admin().command({ configureFailPoint: 'failCommand', mode: 'off' });
      await pool.close();
    }
  });

  it('commits a transaction, and takes an aborted one back entirely', async () => {
    const coll = server.client.db(server.dbName('txn')).collection<{ _id: number; v?: number }>('c');
    await coll.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
    const session = server.client.startSession();
    try {
      await session.withTransaction(async () => {
        await coll.deleteMany({ _id: { $in: [1, 2] } }, { session });
      });
      expect(await coll.find().toArray()).toEqual([{ _id: 3 }]);
      session.startTransaction();
      await coll.deleteMany({}, { session });
      await coll.insertOne({ _id: 9 }, { session });
      await coll.updateOne({ _id: 9 }, { $set: { v: 1 } }, { session });
      await session.abortTransaction();
      expect(await coll.find().toArray()).toEqual([{ _id: 3 }]);
      // A statement after the abort names the transaction the server no longer has.
      const txnNumber = session.serverSession?.txnNumber;
      const error = await admin()
        .command({ commitTransaction: 1, lsid: session.id, txnNumber, autocommit: false })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MongoServerError);
      expect((error as MongoServerError).codeName).toBe('NoSuchTransaction');
    } finally {
      await session.endSession();
    }
  });
});

describe('clean --execute on a replica set', () => {
  it('deletes in transactions, each deleted document in the backup', async () => {
    const demo = await freshDemo(server);
    const embeddings = server.client.db(demo.olorinDb).collection('content_embeddings');
    const before = await snapshot(embeddings);
    const { result } = await scanAndClean(demo);
    expect(result.status).toBe('completed');
    const missing = missingFrom(before, await snapshot(embeddings));
    expect(missing.length).toBe(600);
    const backup = await backedUp(demo.backupRoot);
    for (const key of missing) expect(backup.get(key)?.equals(before.get(key)!)).toBe(true);
  });

  it('deletes nothing of a batch whose commit fails: the transaction is taken back, the backup stays', async () => {
    const demo = await freshDemo(server);
    const embeddings = server.client.db(demo.olorinDb).collection('content_embeddings');
    const before = await snapshot(embeddings);
    await admin().command({
      configureFailPoint: 'failCommand',
      mode: { times: 1 },
      data: { failCommands: ['commitTransaction'], errorCode: 8 },
    });
    const { result } = await scanAndClean(demo);
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/commitTransaction/);
    expect(result.relations[0].deleted).toBe(0);
    // The first batch was backed up, then its delete rolled back with the transaction.
    expect(result.relations[0].backedUp).toBe(100);
    expect(missingFrom(before, await snapshot(embeddings))).toEqual([]);
    // A later run finishes the job.
    const { result: again } = await scanAndClean(demo);
    expect(again.error).toBeUndefined();
    expect(again.status).toBe('completed');
    expect(missingFrom(before, await snapshot(embeddings)).length).toBe(600);
  });

  it('pauses between batches while a secondary lags more than --max-lag-seconds, and says so', async () => {
    const demo = await freshDemo(server);
    const notices: string[] = [];
    const batchesStarted: number[] = [];
    await setLag(30);
    const running = scanAndClean(demo, {
      maxLagSeconds: 5,
      onNotice: (message) => notices.push(message),
      beforeBatch: async (_relation, batch) => {
        batchesStarted.push(batch);
      },
    });
    while (!notices.some((n) => n.startsWith('paused'))) await new Promise((r) => setTimeout(r, 50));
    expect(notices[0]).toMatch(/a secondary lags 30 s \(more than --max-lag-seconds 5\)/);
    // Held before the second batch, and still held a while later.
    await new Promise((r) => setTimeout(r, 1500));
    expect(batchesStarted).toEqual([0]);
    await setLag(0);
    const { result } = await running;
    expect(result.status).toBe('completed');
    expect(notices).toContain('replication caught up; resuming');
    expect(batchesStarted.length).toBeGreaterThan(1);
  });

  it('refuses --max-lag-seconds before the first delete when the user may not read the lag', async () => {
    const demo = await freshDemo(server);
    const embeddings = server.client.db(demo.olorinDb).collection('content_embeddings');
    const before = await embeddings.countDocuments();
    await admin().command({
      configureFailPoint: 'failCommand',
      mode: { times: 1 },
      data: { failCommands: ['replSetGetStatus'], errorCode: 13 },
    });
    const { result } = await scanAndClean(demo, { maxLagSeconds: 5 });
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(
      /^--max-lag-seconds: cannot read replication lag on olorin \(replSetGetStatus needs the clusterMonitor role\): .*; nothing was deleted$/,
    );
    expect(result.relations[0].deleted).toBe(0);
    expect(await embeddings.countDocuments()).toBe(before);
  });

  it('serve --max-lag-seconds: a scheduled cleanup waits out the lag the same way', async () => {
    const demo = await freshDemo(server);
    const embeddings = server.client.db(demo.olorinDb).collection('content_embeddings');
    const total = await embeddings.countDocuments();
    const pool = new SourcePool(demo.config.sources);
    const serve = buildServer({
      config: demo.config,
      pool,
      access: { readOnly: false },
      token: 'rs-token',
      openHealth: false,
      backupRoot: demo.backupRoot,
      batchSize: 100,
      throttle: { maxLagSeconds: 5 },
      logLevel: 'silent',
    });
    const call = (method: 'GET' | 'POST', url: string, payload?: object) =>
      serve.app.inject({ method, url, payload, headers: { authorization: 'Bearer rs-token' } });
    try {
      await setLag(30);
      const accepted = await call('POST', '/api/v1/cleanup', {
        execute: true,
        relations: ['content_embeddings'],
      });
      expect(accepted.statusCode).toBe(202);
      const { id } = accepted.json();
      while ((await embeddings.countDocuments()) > total - 100) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 1500));
      expect(await embeddings.countDocuments()).toBe(total - 100);
      expect((await call('GET', `/api/v1/runs/${id}`)).json().status).toBe('running');
      await setLag(0);
      let run = (await call('GET', `/api/v1/runs/${id}`)).json();
      while (run.status === 'running' || run.status === 'queued') {
        await new Promise((r) => setTimeout(r, 50));
        run = (await call('GET', `/api/v1/runs/${id}`)).json();
      }
      expect(run.status).toBe('succeeded');
      expect(await embeddings.countDocuments()).toBe(total - 600);
    } finally {
      await setLag(0);
      await serve.shutdown();
      await pool.close();
    }
  });
});
