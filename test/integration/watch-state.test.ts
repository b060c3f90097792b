import { BSON, type Document, ObjectId, type Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastOplogTime as lastOplogTimeOf, oplogWrites } from '../support/oplog.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';
import { countsOf, scanCounts, settled, startWatching, watchWorld } from '../support/watch-fixture.ts';

// Issue 24 item 5: the watcher's saved state is cheap to keep. Counts and stream positions in a small head
// document, unresolved references in per-key documents written only when they change, nothing written while
// nothing changes — measured from the replica-set sandbox's oplog, as the child cluster's oplog would see it.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0' });
});
afterAll(async () => {
  await server?.stop();
});

const UNRESOLVED = 100_000;

/** The oplog entries written to the watch state collection after `since`: how many, and their BSON bytes. */
async function stateWrites(db: string, since: Timestamp): Promise<{ entries: number; bytes: number }> {
  const { entries, bytes } = await oplogWrites(server.client, `${db}.orphan_cleanup_watch`, since);
  return { entries: entries.length, bytes };
}

const lastOplogTime = () => lastOplogTimeOf(server.client);

async function waitFor(check: () => Promise<boolean> | boolean, what: string, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the watcher state of a relation with 100,000 unresolved references', () => {
  it('writes nothing while idle, one head and one key for one new orphan, and resumes from what it wrote', async () => {
    const world = await watchWorld(server, 'state', 11);
    const embeddings = world.childDb.collection('embeddings');
    for (let i = 0; i < UNRESOLVED; i += 10_000)
      await embeddings.insertMany(
        Array.from({ length: 10_000 }, (_, j) => ({ content_id: new ObjectId(), n: i + j })),
      );
    const saved = world.childDb.collection<Document>('orphan_cleanup_watch');
    const first = startWatching(world);
    try {
      await settled(first.latest, ['embeddings', 'dubbing']);
      // The first save after the start writes every unresolved reference once.
      await waitFor(
        async () => ((await saved.findOne({ _id: 'embeddings' as never }))?.keys ?? 0) >= UNRESOLVED,
        'the start saved',
      );
      const head = await saved.findOne({ _id: 'embeddings' as never });
      expect(BSON.calculateObjectSize(head!)).toBeLessThan(1024);

      // Idle: nothing changes, nothing is written (the old state document of every unresolved key was
      // rewritten every second).
      const idleFrom = await lastOplogTime();
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const idle = await stateWrites(world.childDb.databaseName, idleFrom);
      expect(idle.entries).toBeLessThanOrEqual(1);
      expect(idle.bytes).toBeLessThan(2048);

      // One new orphan: its key and the head, not the whole state.
      const before = first.latest.embeddings.counts.orphans;
      const burstFrom = await lastOplogTime();
      await embeddings.insertOne({ content_id: new ObjectId(), n: -1 });
      await waitFor(() => first.latest.embeddings.counts.orphans === before + 1, 'the orphan counted');
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const one = await stateWrites(world.childDb.databaseName, burstFrom);
      expect(one.entries).toBeGreaterThanOrEqual(2);
      expect(one.entries).toBeLessThanOrEqual(4);
      expect(one.bytes).toBeLessThan(4096);
    } finally {
      await first.stop();
    }

    // A restart resumes from the incremental saves and agrees with a full scan.
    await embeddings.insertOne({ content_id: new ObjectId(), n: -2 });
    const second = startWatching(world);
    try {
      await settled(second.latest, ['embeddings', 'dubbing']);
      expect(second.latest.embeddings.resumed).toBe(true);
      expect(countsOf(second.latest)).toEqual(await scanCounts(world.config));
    } finally {
      await second.stop();
    }
  });
});

describe('a saved watcher state that fails its checks', () => {
  it('is a lost state: said once, forgotten, and live counts start from a new snapshot', async () => {
    const world = await watchWorld(server, 'forged', 12);
    const first = startWatching(world);
    await settled(first.latest, ['embeddings', 'dubbing'], 1500);
    await first.stop();
    const saved = world.childDb.collection<Document>('orphan_cleanup_watch');
    // A key document edited by hand: a state that is not one.
    const forged = await saved.updateOne(
      { relation: 'embeddings', state: 'missing' },
      { $set: { state: 'gone-ish' } },
    );
    expect(forged.modifiedCount).toBe(1);
    // And the other relation's head counts made negative.
    await saved.updateOne({ _id: 'dubbing' as never }, { $set: { 'counts.orphans': -5 } });
    const notices: string[] = [];
    const second = startWatching(world, notices);
    try {
      await settled(second.latest, ['embeddings', 'dubbing']);
      expect(notices.sort()).toEqual([
        expect.stringMatching(
          /^dubbing: the saved live-count state is malformed \(its head fails its checks \(counts\.orphans: .*\)\); live counts start again from a new snapshot$/,
        ),
        expect.stringMatching(
          /^embeddings: the saved live-count state is malformed \(a key document fails its checks \(state: .*\)\); live counts start again from a new snapshot$/,
        ),
      ]);
      expect(second.latest.embeddings.resumed).toBe(false);
      expect(second.latest.dubbing.resumed).toBe(false);
      expect(countsOf(second.latest)).toEqual(await scanCounts(world.config));
    } finally {
      await second.stop();
    }
  });
});
