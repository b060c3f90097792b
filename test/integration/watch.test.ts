import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveCounts } from '../../src/engine/watch.ts';
import { watchRelations } from '../../src/engine/watch.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';
import { mutate, scanCounts, type WatchWorld, watchWorld } from '../support/watch-fixture.ts';

let server: TestServer;
beforeAll(async () => {
  // Change streams need a replica set (ORPHAN_CLEANUP_TEST_URI must then name one).
  server = await startTestServer({ replicaSet: 'rs0' });
});
afterAll(async () => {
  await server?.stop();
});

/** Starts the watcher on every relation; `latest` holds each relation's last published counts. */
function startWatching(world: WatchWorld, notices: string[] = []) {
  const pool = new SourcePool(world.config.sources);
  const controller = new AbortController();
  const latest: Record<string, LiveCounts> = {};
  const done = watchRelations({
    config: world.config,
    pool,
    access: { readOnly: false },
    signal: controller.signal,
    onCounts: (live) => {
      latest[live.relation] = live;
    },
    onNotice: (message) => notices.push(message),
  });
  return {
    latest,
    async stop() {
      controller.abort();
      await done;
      await pool.close();
    },
  };
}

/** Waits until every relation has counts and no event has been applied for `quietMs`. */
async function settled(latest: Record<string, LiveCounts>, relations: string[], quietMs = 2500) {
  const deadline = Date.now() + 60_000;
  let last = '';
  let since = Date.now();
  for (;;) {
    const now = JSON.stringify(relations.map((r) => latest[r] && [latest[r].events, latest[r].counts]));
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (relations.every((r) => latest[r]) && Date.now() - since >= quietMs) return;
    if (Date.now() > deadline) throw new Error(`the watcher never settled: ${now}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const countsOf = (latest: Record<string, LiveCounts>) =>
  Object.fromEntries(Object.entries(latest).map(([name, live]) => [name, live.counts]));

describe('live counts from change streams', () => {
  it('after 1,000 random parent and child mutations made while it runs, equal a full scan exactly', async () => {
    const seed = Number(process.env.WATCH_SEED ?? Date.now() % 100_000);
    const world = await watchWorld(server, 'prop', seed);
    const notices: string[] = [];
    const watcher = startWatching(world, notices);
    try {
      await settled(watcher.latest, ['embeddings', 'dubbing'], 500);
      // The start is exact too.
      expect(countsOf(watcher.latest), `seed ${seed}`).toEqual(await scanCounts(world.config));
      // Parents and children change at the same time, as two clusters' clients would change them.
      const done: string[] = [];
      await Promise.all(
        (['parent', 'child'] as const).map(async (side) => {
          for (let i = 0; i < 500; i++) done.push(await mutate(world, side));
        }),
      );
      expect(done).toHaveLength(1000);
      await settled(watcher.latest, ['embeddings', 'dubbing']);
      const scan = await scanCounts(world.config);
      expect(countsOf(watcher.latest), `seed ${seed} (WATCH_SEED=${seed} replays it)`).toEqual(scan);
      // The mutations moved children between categories: the test compared something that changed.
      expect(watcher.latest.embeddings.events).toBeGreaterThan(300);
      expect(notices).toEqual([]);
    } finally {
      await watcher.stop();
    }
  });

  it('says in one line why a relation cannot be live: no pre-images on the child collection', async () => {
    const world = await watchWorld(server, 'nopre', 1);
    await world.childDb.command({ collMod: 'embeddings', changeStreamPreAndPostImages: { enabled: false } });
    const notices: string[] = [];
    const watcher = startWatching(world, notices);
    try {
      const deadline = Date.now() + 20_000;
      while (!notices.length && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(notices).toHaveLength(1);
      expect(notices[0]).toMatch(
        /^embeddings: live counts need pre-images on the child collection .*collMod: 'embeddings', changeStreamPreAndPostImages: \{enabled: true\}/,
      );
      await settled(watcher.latest, ['dubbing'], 500);
      expect(watcher.latest.embeddings).toBeUndefined();
    } finally {
      await watcher.stop();
    }
  });
});
