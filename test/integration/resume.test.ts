import { Decimal128, type Document, Long, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedConfig } from '../../src/config/load.ts';
import { splitPartitions } from '../../src/engine/child-stream.ts';
import { type RelationReport, type RunScanOptions, runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { OWNED_COLLECTIONS } from '../../src/store/access.ts';
import { documentKey } from '../../src/store/exceptions.ts';
import { runCli, startCli } from '../support/cli.ts';
import { configFor, embeddingsConfigFile, writeConfigFile } from '../support/olorin-fixture.ts';
import { holdNextBatches, startTestServer, type TestServer } from '../support/sandbox.ts';

/**
 * Resumable and partitioned scans: a scan stopped, killed or cut off by a lost cursor continues from its
 * checkpoint and ends with exactly the counts of an uninterrupted scan; `--parallel N` splits the child
 * collection into `_id` ranges and merges to the same counts. Children carry `_id`s of several BSON types
 * (ranges are index bounds, so every type must land in exactly one range).
 */
let server: TestServer;
let childDb: string;
let parentDb: string;
let config: ResolvedConfig;
const CHILDREN = 24_000;

function childId(i: number): Document['_id'] {
  switch (i % 6) {
    case 0:
      return `doc-${i}`;
    case 1:
      return i;
    case 2:
      return Long.fromBigInt(2n ** 60n + BigInt(i));
    case 3:
      return new Date(Date.UTC(2024, 0, 1) + i);
    case 4:
      return Decimal128.fromString(`${i}.5`);
    default:
      return new ObjectId();
  }
}

beforeAll(async () => {
  server = await startTestServer({ sandboxOnly: true });
  childDb = server.dbName('resumechild');
  parentDb = server.dbName('resumeparent');
  const parents = Array.from({ length: 400 }, () => ({ _id: new ObjectId() }));
  await server.client.db(parentDb).collection('content').insertMany(parents);
  const children = server.client.db(childDb).collection('embeddings');
  for (let start = 0; start < CHILDREN; start += 4000) {
    await children.insertMany(
      Array.from({ length: 4000 }, (_, k) => {
        const i = start + k;
        // Two in five point at a parent that never existed; one in 50 has no reference.
        const reference = i % 50 === 7 ? undefined : i % 5 < 2 ? new ObjectId() : parents[i % 400]._id;
        return { _id: childId(i), ...(reference ? { content_id: reference } : {}) };
      }),
    );
  }
  config = await configFor(embeddingsConfigFile(server.uri, childDb, parentDb));
});
afterAll(async () => server?.stop());

async function scan(options: Partial<RunScanOptions> = {}): Promise<RelationReport> {
  const pool = new SourcePool(config.sources);
  try {
    const report = await runScan({ config, pool, access: { readOnly: false }, ...options });
    return report.relations[0];
  } finally {
    await pool.close();
  }
}

function tallies(r: RelationReport) {
  const { scanned, ok, orphans, parentInactive, invalidReference, excepted, inGrace, deletable } = r;
  return { scanned, ok, orphans, parentInactive, invalidReference, excepted, inGrace, deletable };
}

const EXPECTED = {
  scanned: CHILDREN,
  ok: 13_920,
  orphans: 9600,
  parentInactive: 0,
  invalidReference: 480,
  excepted: 0,
  // Never seen before by a complete scan: every orphan is in its grace period.
  inGrace: 9600,
  deletable: 0,
};

async function runsOf() {
  return server.client.db(childDb).collection(OWNED_COLLECTIONS.runs);
}

async function forgetScans() {
  await server.client.db(childDb).collection(OWNED_COLLECTIONS.runs).deleteMany({});
  await server.client.db(childDb).collection(OWNED_COLLECTIONS.firstSeen).deleteMany({});
}

describe('partitions', () => {
  it('splits the children into ordered _id ranges that cover every document once, whatever its _id type', async () => {
    const children = server.client.db(childDb).collection('embeddings');
    const partitions = await splitPartitions(children, 4, 10_000);
    expect(partitions).toHaveLength(4);
    expect(partitions[0].min).toBeUndefined();
    expect(partitions[3].max).toBeUndefined();
    const seen = new Set<string>();
    for (const p of partitions) {
      const docs = await children
        .find(
          {},
          {
            projection: { _id: 1 },
            hint: { _id: 1 },
            sort: { _id: 1 },
            ...(p.min !== undefined ? { min: { _id: p.min } } : {}),
            ...(p.max !== undefined ? { max: { _id: p.max } } : {}),
          },
        )
        .toArray();
      // Similar sizes: no range holds more than half of the collection.
      expect(docs.length).toBeGreaterThan(0);
      expect(docs.length).toBeLessThan(CHILDREN / 2);
      for (const doc of docs) seen.add(documentKey(doc._id));
    }
    expect(seen.size).toBe(CHILDREN);
  });

  it('--parallel 4 gives exactly the counts of --parallel 1', async () => {
    await forgetScans();
    const one = await scan({ access: { readOnly: true }, parallel: 1 });
    const four = await scan({ access: { readOnly: true }, parallel: 4 });
    expect(tallies(one)).toEqual(EXPECTED);
    expect(tallies(four)).toEqual(EXPECTED);
    expect(four.documentsRead).toBe(CHILDREN);
  });
});

describe('resuming a scan', () => {
  it('continues a stopped scan from its checkpoint, reads only the rest, and ends with the uninterrupted counts', async () => {
    await forgetScans();
    const controller = new AbortController();
    // A batch held back, so progress is reported before the scan can finish, however fast the machine.
    const release = await holdNextBatches(server.client, { times: 1, ms: 500 });
    const stopped = await scan({
      signal: controller.signal,
      onProgress: (p) => {
        if (p.scanned >= 9000) controller.abort();
      },
    }).finally(release);
    expect(stopped.complete).toBe(false);
    const record = await (await runsOf()).findOne({ runId: stopped.runId });
    expect(record).toMatchObject({ outcome: 'aborted', checkpoint: { scanned: stopped.scanned } });
    const notices: string[] = [];
    const resumed = await scan({ resume: true, onNotice: (m) => notices.push(m) });
    expect(notices.join('\n')).toContain(`resuming scan ${stopped.runId} after`);
    expect(resumed.runId).toBe(stopped.runId);
    expect(resumed.complete).toBe(true);
    expect(tallies(resumed)).toEqual(EXPECTED);
    expect(resumed.documentsRead).toBe(CHILDREN - stopped.scanned);
    // One record for the run, now complete; first sightings confirmed for every orphaned reference.
    expect(await (await runsOf()).find({ runId: stopped.runId }).toArray()).toMatchObject([
      { outcome: 'succeeded', complete: true },
    ]);
    expect((await (await runsOf()).findOne({ runId: stopped.runId }))?.checkpoint).toBeUndefined();
    const firstSeen = server.client.db(childDb).collection(OWNED_COLLECTIONS.firstSeen);
    expect(await firstSeen.countDocuments({ pending: true })).toBe(0);
    expect(await firstSeen.countDocuments({})).toBe(9600);
    // Nothing left to resume.
    notices.length = 0;
    await scan({ resume: true, access: { readOnly: true }, onNotice: (m) => notices.push(m) });
    expect(notices.join('\n')).toContain('no unfinished scan to resume');
  });

  it('resumes a partitioned scan with its own ranges', async () => {
    await forgetScans();
    const controller = new AbortController();
    const release = await holdNextBatches(server.client, { times: 3, ms: 500 });
    const stopped = await scan({
      parallel: 3,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.scanned >= 12_000) controller.abort();
      },
    }).finally(release);
    expect(stopped.complete).toBe(false);
    const resumed = await scan({ resume: true });
    expect(tallies(resumed)).toEqual(EXPECTED);
    expect(resumed.documentsRead).toBe(CHILDREN - stopped.scanned);
  });

  it('reopens a cursor the server killed or a connection that dropped mid-scan, and counts every child once', async () => {
    await forgetScans();
    const admin = server.client.db('admin');
    for (const data of [{ errorCode: 43 }, { closeConnection: true }]) {
      await admin.command({
        configureFailPoint: 'failCommand',
        mode: { skip: 2, times: 1 },
        data: { failCommands: ['getMore'], ...data },
      });
      const report = await scan({ access: { readOnly: true } });
      expect(report.error).toBeUndefined();
      expect(tallies(report)).toEqual(EXPECTED);
    }
  });

  it('fails the scan, bounded, when the cursor cannot be reopened', async () => {
    const admin = server.client.db('admin');
    await admin.command({
      configureFailPoint: 'failCommand',
      mode: { skip: 1, times: 100 },
      data: { failCommands: ['getMore', 'find'], errorCode: 43, namespace: `${childDb}.embeddings` },
    });
    try {
      const report = await scan({ access: { readOnly: true } });
      expect(report.complete).toBe(false);
      expect(report.error).toMatch(/failCommand/);
    } finally {
      await admin.command({ configureFailPoint: 'failCommand', mode: 'off' });
    }
  });

  it('after kill -9 of `scan`, `scan --resume` continues from the last checkpoint to the uninterrupted counts', async () => {
    await forgetScans();
    const configPath = await writeConfigFile(
      // The probes are slowed on purpose below: no latency alert (exit 3) for that.
      embeddingsConfigFile(server.uri, childDb, parentDb, {}, { latencyAlertMs: 60_000 }),
    );
    // Slow the parent probes so the scan is still running when it is killed.
    const admin = server.client.db('admin');
    await admin.command({
      configureFailPoint: 'failCommand',
      mode: 'alwaysOn',
      data: { failCommands: ['find'], blockConnection: true, blockTimeMS: 40 },
    });
    const { child, done } = startCli(['scan', '--config', configPath, '--checkpoint-seconds', '0.05']);
    const runs = await runsOf();
    let checkpointed = 0;
    try {
      for (let waited = 0; waited < 60_000 && checkpointed < 4000; waited += 25) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        const running = await runs.findOne({ outcome: 'running' });
        checkpointed = (running?.checkpoint as { scanned?: number } | undefined)?.scanned ?? 0;
      }
      child.kill('SIGKILL');
      await done;
    } finally {
      await admin.command({ configureFailPoint: 'failCommand', mode: 'off' });
    }
    expect(checkpointed).toBeGreaterThanOrEqual(4000);
    const result = await runCli(['scan', '--config', configPath, '--resume', '--json']);
    expect(result.stderr).toContain('resuming scan');
    expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code: 0 });
    const [relation] = JSON.parse(result.stdout).relations;
    expect(tallies(relation)).toEqual(EXPECTED);
    expect(relation.documentsRead).toBeLessThan(CHILDREN);
    expect(relation.documentsRead).toBeGreaterThan(0);
  });
});
