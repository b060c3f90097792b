import { BSON, type Document, ObjectId, type Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedConfig } from '../../src/config/load.ts';
import { type RunScanOptions, runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { OWNED_COLLECTIONS } from '../../src/store/access.ts';
import { configFor, embeddingsConfigFile } from '../support/olorin-fixture.ts';
import { lastOplogTime as lastOplogTimeOf, oplogWrites } from '../support/oplog.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 27 item 1: the tool's first-seen bookkeeping follows what changed, not the orphan backlog. Measured
// from the replica-set sandbox's oplog: what a nightly dry run would push through the child cluster's oplog.
let server: TestServer;
let childDb: string;
let parentDb: string;
let config: ResolvedConfig;
const ORPHAN_REFERENCES = 3000;
const missing = Array.from({ length: ORPHAN_REFERENCES }, () => new ObjectId());
const parents = Array.from({ length: 500 }, () => ({ _id: new ObjectId() }));

beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0' });
  childDb = server.dbName('fswchild');
  parentDb = server.dbName('fswparent');
  await server.client.db(parentDb).collection('content').insertMany(parents);
  const children = server.client.db(childDb).collection('embeddings');
  await children.createIndex({ content_id: 1 });
  // Two children per missing parent, and as many with a live one.
  await children.insertMany(
    Array.from({ length: 4 * ORPHAN_REFERENCES }, (_, i) => ({
      content_id: i % 2 ? missing[Math.floor(i / 4) % ORPHAN_REFERENCES] : parents[i % 500]._id,
    })),
  );
  config = await configFor(embeddingsConfigFile(server.uri, childDb, parentDb));
});
afterAll(async () => {
  await server?.stop();
});

async function scan(options: Partial<RunScanOptions> = {}) {
  const pool = new SourcePool(config.sources);
  try {
    const report = await runScan({ config, pool, access: { readOnly: false }, ...options });
    return report.relations[0];
  } finally {
    await pool.close();
  }
}

const lastOplogTime = () => lastOplogTimeOf(server.client);

/** Oplog entries written to the first-seen collection after `since`. */
async function firstSeenWrites(since: Timestamp): Promise<Document[]> {
  return (await oplogWrites(server.client, `${childDb}.${OWNED_COLLECTIONS.firstSeen}`, since)).entries;
}

const store = () => server.client.db(childDb).collection(OWNED_COLLECTIONS.firstSeen);

describe('first-seen bookkeeping', () => {
  it('a complete scan with nothing changed writes nothing to first-seen state; changes write what changed', async () => {
    const first = await scan();
    expect(first.complete).toBe(true);
    expect(await store().countDocuments({ pending: { $ne: true } })).toBe(ORPHAN_REFERENCES);
    const before = new Map(
      (await store().find({}).toArray()).map((doc) => [doc.key, (doc.firstSeenAt as Date).getTime()]),
    );

    // Nothing changed: the second scan writes no first-seen document (it used to rewrite every one).
    const quietFrom = await lastOplogTime();
    const second = await scan();
    expect(second.complete).toBe(true);
    expect(second.orphans).toBe(first.orphans);
    expect(await firstSeenWrites(quietFrom)).toHaveLength(0);
    // First sightings kept as they were.
    const after = new Map(
      (await store().find({}).toArray()).map((doc) => [doc.key, (doc.firstSeenAt as Date).getTime()]),
    );
    expect(after).toEqual(before);

    // Three changes: a parent comes back, a missing parent's children are all deleted, a new orphan appears.
    const children = server.client.db(childDb).collection('embeddings');
    await server.client.db(parentDb).collection('content').insertOne({ _id: missing[0] });
    await children.deleteMany({ content_id: missing[1] });
    const fresh = new ObjectId();
    await children.insertOne({ content_id: fresh });
    const changedFrom = await lastOplogTime();
    const third = await scan();
    expect(third.complete).toBe(true);
    const writes = await firstSeenWrites(changedFrom);

    // Two forgotten, one staged, the same one confirmed.
    expect(writes.map((w) => w.op).sort()).toEqual(['d', 'd', 'i', 'u']);
    const keys = new Set((await store().find({}).toArray()).map((doc) => doc.key));
    expect(keys.has(missing[0].toHexString())).toBe(false);
    expect(keys.has(missing[1].toHexString())).toBe(false);
    expect(keys.has(fresh.toHexString())).toBe(true);
    expect(keys.size).toBe(ORPHAN_REFERENCES - 1);
    // Grace of the others unchanged.
    const kept = await store().findOne({ key: missing[2].toHexString() });
    expect((kept!.firstSeenAt as Date).getTime()).toBe(before.get(missing[2].toHexString()));
  });

  it('a complete scan reads its first-seen state once, and forgets what it did not see without reading it again or idle writes', async () => {
    await scan();
    const monitored = structuredClone(config);
    monitored.sources.child.uri = `${config.sources.child.uri}${config.sources.child.uri.includes('?') ? '&' : '?'}monitorCommands=true`;
    const pool = new SourcePool(monitored.sources);
    const reads: string[] = [];
    (await pool.client('child')).on('commandStarted', (event) => {
      // Every read or write of the first-seen collection's documents (its size estimate aside).
      if (event.command[event.commandName] === OWNED_COLLECTIONS.firstSeen && event.commandName !== 'count')
        reads.push(event.commandName);
    });
    // A parent comes back: its reference is forgotten all the same.
    const back = missing[9];
    await server.client.db(parentDb).collection('content').insertOne({ _id: back });
    try {
      const report = await runScan({ config: monitored, pool, access: { readOnly: false } });
      expect(report.relations[0].complete).toBe(true);
    } finally {
      await pool.close();
      // Missing again afterwards, as the next test expects every reference but its own.
      await server.client.db(parentDb).collection('content').deleteOne({ _id: back });
    }
    // One read (the index), one write (the reference forgotten): no second read, no write with nothing to do.
    expect(reads).toEqual(['find', 'delete']);
    expect(await store().countDocuments({ key: back.toHexString() })).toBe(0);
    expect(await store().countDocuments({ key: missing[10].toHexString() })).toBe(1);
  });

  it('never counts a first sighting from a document written under another _id, and removes it', async () => {
    const key = missing[11].toHexString();
    // A sighting from 1970, under an _id the tool never writes: it would make the reference deletable at once.
    await store().insertOne({
      _id: 'forged-sighting' as never,
      relation: 'embeddings',
      key,
      firstSeenAt: new Date(0),
    });
    const notices: string[] = [];
    await scan({ onNotice: (text) => notices.push(text) });
    expect(notices.join('\n')).toMatch(/1 first-seen document\(s\) .* fail their checks/);
    expect(await store().countDocuments({ _id: 'forged-sighting' as never })).toBe(0);
    const kept = await store().findOne({ key });
    expect(kept!._id).toBe(`embeddings:${key}`);
    expect((kept!.firstSeenAt as Date).getTime()).toBeGreaterThan(0);
  });

  it('a resumed scan forgets a reference it did not see only when its parent is back', async () => {
    // A complete scan first, so every reference has a confirmed first sighting.
    await scan();
    const controller = new AbortController();
    const stopped = await scan({
      signal: controller.signal,
      onProgress: (p) => {
        if (p.scanned > 0) controller.abort();
      },
    });
    expect(stopped.complete).toBe(false);
    // Documents written by hand or left by a scan that died: a key that is no key, and another run's pending one.
    await store().insertMany([
      {
        _id: 'embeddings:not-hex' as never,
        relation: 'embeddings',
        key: 'not-hex',
        firstSeenAt: new Date(0),
      },
      {
        _id: `embeddings:${missing[7].toHexString()}x` as never,
        relation: 'embeddings',
        key: `${missing[7].toHexString()}x`,
        firstSeenAt: new Date(),
        pending: true,
        seenBy: 'a-run-that-died',
      },
    ]);
    // Meanwhile every missing parent referenced in the whole collection stays missing but one, which comes back.
    const back = missing[5];
    await server.client.db(parentDb).collection('content').insertOne({ _id: back });
    const resumed = await scan({ resume: true });
    expect(resumed.complete).toBe(true);
    const keys = new Set((await store().find({}).toArray()).map((doc) => doc.key));
    expect(keys.has(back.toHexString())).toBe(false);
    // Forgotten, not re-checked (and no crash on a key the relation's rule cannot read).
    expect(keys.has('not-hex')).toBe(false);
    expect(keys.has(`${missing[7].toHexString()}x`)).toBe(false);
    // The references only the first process saw are kept: every one still missing is there.
    const stillMissing = missing.filter((_, i) => ![0, 1, 5].includes(i)).map((id) => id.toHexString());
    expect(stillMissing.every((key) => keys.has(key))).toBe(true);
  });
});

// Issue 27 item 1, the checkpoint: each one writes what changed since the previous one — the record's small head
// and the candidates kept since — not every kept candidate every few seconds; a resume reads them back whole.
describe('checkpoint bookkeeping', () => {
  it('appends the candidates kept since the last checkpoint, and a resume gets every kept candidate back', async () => {
    // 60,000 children, half of them orphans (deletable at once: no grace): candidates beyond the 10,000 kept.
    const bigChild = server.dbName('fswcheckpoint');
    const children = server.client.db(bigChild).collection('embeddings');
    await children.createIndex({ content_id: 1 });
    for (let done = 0; done < 60_000; done += 10_000)
      await children.insertMany(
        Array.from({ length: 10_000 }, (_, i) => ({
          content_id: i % 2 ? missing[(done + i) % ORPHAN_REFERENCES] : parents[i % 500]._id,
        })),
      );
    const noGrace = await configFor(embeddingsConfigFile(server.uri, bigChild, parentDb), {}, 0);
    const runsNs = `${bigChild}.${OWNED_COLLECTIONS.runs}`;
    const from = await lastOplogTime();
    const controller = new AbortController();
    const pool = new SourcePool(noGrace.sources);
    const headsSince = async () =>
      (await oplogWrites(server.client, runsNs, from)).entries.filter((e) => e.o?.kind !== 'scan-candidates');
    // Stopped after a few checkpoints, as a killed or interrupted scan is.
    let watching = true;
    const stopper = (async () => {
      while (watching && (await headsSince()).length < 4) await new Promise((r) => setTimeout(r, 5));
      controller.abort();
    })();
    try {
      const interrupted = await runScan({
        config: noGrace,
        pool,
        access: { readOnly: false },
        checkpointIntervalMs: 10,
        signal: controller.signal,
      });
      watching = false;
      await stopper;
      expect(interrupted.relations[0].complete).toBe(false);
      const written = await oplogWrites(server.client, runsNs, from);
      const heads = written.entries.filter((e) => e.op === 'u' || (e.op === 'i' && e.o.kind === 'scan'));
      const parts = written.entries.filter((e) => e.op === 'i' && e.o.kind === 'scan-candidates');
      expect(heads.length).toBeGreaterThanOrEqual(3);
      // Every child orphaned here was first seen in one scan: the oldest 10,000 kept are the first met, and
      // each is written once, in the part of the checkpoint after it was met.
      const appended = parts.reduce((sum, part) => sum + part.o.candidates.length, 0);
      const record = await server.client
        .db(bigChild)
        .collection(OWNED_COLLECTIONS.runs)
        .findOne({ kind: 'scan', complete: false }, { sort: { startedAt: -1 } });
      const kept = Math.min(10_000, record!.counts.scanned);
      expect(appended).toBeLessThanOrEqual(kept);
      // So the bytes the checkpoints wrote are about one copy of the kept candidates and a small head each (they
      // were a full copy per checkpoint: ~1 MB every 5 s on a large backlog).
      const partBytes = parts.reduce((sum, part) => sum + BSON.calculateObjectSize(part), 0);
      expect(written.bytes).toBeLessThan(partBytes + heads.length * 16 * 1024);
      expect(written.bytes).toBeLessThan(2 * 1024 * 1024);
      expect(record!.checkpoint.candidates).toEqual([]);
      // The heads stay small whatever the candidates: positions, tallies, samples.
      for (const head of heads) expect(BSON.calculateObjectSize(head)).toBeLessThan(16 * 1024);

      // The resume reads the parts back: a cleanup's candidates come from what the interrupted scan kept (all were
      // first met in that scan, so they are older than anything met after the resume), and its figures are a
      // complete scan's.
      const inParts = new Set(
        parts.flatMap((part) => part.o.candidates.map((c: { id: unknown }) => String(c.id))),
      );
      const resumed = await runScan({
        config: noGrace,
        pool,
        access: { readOnly: true },
        resume: true,
        candidateLimit: 500,
      });
      const fresh = await runScan({ config: noGrace, pool, access: { readOnly: true }, candidateLimit: 500 });
      expect(resumed.relations[0].complete).toBe(true);
      expect(resumed.relations[0].candidates).toHaveLength(500);
      expect(resumed.relations[0].candidates.every((c) => inParts.has(String(c.id)))).toBe(true);
      const { orphans, deletable, scanned } = fresh.relations[0];
      expect(resumed.relations[0]).toMatchObject({ orphans, deletable, scanned });
    } finally {
      await pool.close();
    }
  });
});
