import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';
import { scanCounts, settled, startWatching, watchWorld } from '../support/watch-fixture.ts';

// Issue 24: live counts that hold on a replica set that lags and fails. The sandbox's majority commit point
// trails its last write (as mongod's does), and it can be frozen (SIGSTOP) as a hung primary would be.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0', sandboxOnly: true, majorityLagMs: 400 });
});
afterAll(async () => {
  server?.resume();
  await server?.stop();
});

describe('the start of live counts', () => {
  it('counts the writes made just before it, which the majority commit point has not reached yet', async () => {
    const world = await watchWorld(server, 'gap', 7);
    // Written with w:1 an instant before the start: applied, not yet majority-committed. A stream opened first
    // starts after them and a snapshot without a time reads before them: only a stream from the snapshot's
    // time sees them.
    const embeddings = world.childDb.collection('embeddings');
    const admin = server.client.db('admin');
    // Longer than the watcher takes to open its streams, so the start happens while these are not committed.
    await admin.command({ setParameter: 1, sandboxMajorityLagMillis: 3000 });
    let watching: ReturnType<typeof startWatching> | undefined;
    try {
      for (let i = 0; i < 20; i++)
        await embeddings.insertOne({ content_id: null, n: 1000 + i }, { writeConcern: { w: 1 } });
      watching = startWatching(world);
      await settled(watching.latest, ['embeddings', 'dubbing'], 4000);
      expect(watching.latest.embeddings.counts).toEqual((await scanCounts(world.config)).embeddings);
    } finally {
      await admin.command({ setParameter: 1, sandboxMajorityLagMillis: 400 });
      await watching?.stop();
    }
  });
});

describe('outages', () => {
  it('live counts come back by themselves after the child cluster was silent, and catch up', async () => {
    const world = await watchWorld(server, 'outage', 11);
    const notices: string[] = [];
    const watching = startWatching(world, notices, { silenceMs: 3000 });
    try {
      await settled(watching.latest, ['embeddings', 'dubbing']);
      server.pause();
      await new Promise((resolve) => setTimeout(resolve, 5000));
      server.resume();
      // Changes after the outage: the watcher must be following again to count them.
      const embeddings = world.childDb.collection('embeddings');
      await embeddings.insertMany(Array.from({ length: 5 }, (_, i) => ({ content_id: null, n: 2000 + i })));
      const deadline = Date.now() + 35_000;
      const expected = (await scanCounts(world.config)).embeddings;
      while (JSON.stringify(watching.latest.embeddings?.counts) !== JSON.stringify(expected)) {
        if (Date.now() > deadline)
          throw new Error(
            `live counts never came back: ${JSON.stringify(watching.latest.embeddings?.counts)} vs ${JSON.stringify(expected)}; notices: ${notices.join(' | ')}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(notices.some((n) => /answered nothing|interrupted/.test(n))).toBe(true);
      expect(notices.some((n) => /stopped|scan's figures stand/.test(n))).toBe(false);
    } finally {
      await watching.stop();
    }
  });
});
