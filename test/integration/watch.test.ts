import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';
import {
  countsOf,
  mutate,
  scanCounts,
  settled,
  startWatching,
  type WatchWorld,
  watchWorld,
} from '../support/watch-fixture.ts';

const LAUNCHER = fileURLToPath(new URL('../../bin/orphan-cleanup', import.meta.url));
let server: TestServer;
beforeAll(async () => {
  // Change streams need a replica set (ORPHAN_CLEANUP_TEST_URI must then name one).
  server = await startTestServer({ replicaSet: 'rs0' });
});
afterAll(async () => {
  await server?.stop();
});

interface CliLine {
  relation: string;
  events: number;
  resumed: boolean;
  at: string;
  ok: number;
  orphans: number;
  parentInactive: number;
  invalidReference: number;
  excepted: number;
}

/** `orphan-cleanup watch --json` as a separate process: its last line per relation, and a way to kill it. */
function startCli(world: WatchWorld) {
  const child = spawn(process.execPath, [LAUNCHER, 'watch', '--json', '--config', world.configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const last: Record<string, CliLine> = {};
  let lastChange = Date.now();
  let stderr = '';
  let buffer = '';
  child.stdout.on('data', (chunk) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      const parsed = JSON.parse(line) as CliLine;
      last[parsed.relation] = parsed;
      lastChange = Date.now();
    }
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk.toString();
  });
  const until = async (done: () => boolean, what: string) => {
    const deadline = Date.now() + 60_000;
    while (!done()) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`watch never ${what}; stderr: ${stderr}; last: ${JSON.stringify(last)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  return {
    last,
    waitFor: (predicate: (live: Record<string, CliLine>) => unknown) =>
      until(() => Boolean(predicate(last)), 'started'),
    settle: () => until(() => Date.now() - lastChange > 2500, 'settled'),
    kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

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

  it('killed with SIGKILL mid-stream, then restarted after more changes, resumes and still equals a full scan', async () => {
    const seed = Number(process.env.WATCH_SEED ?? Date.now() % 100_000);
    const world = await watchWorld(server, 'kill', seed);
    const first = startCli(world);
    try {
      await first.waitFor((live) => live.embeddings && live.dubbing);
      expect(first.last.embeddings.resumed).toBe(false);
      // Changes while it runs, with the kill in the middle of them (after at least one save, every second).
      const mutations = Promise.all(
        (['parent', 'child'] as const).map(async (side) => {
          for (let i = 0; i < 150; i++) await mutate(world, side);
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 1500));
      first.kill();
      await mutations;
      expect(first.last.embeddings.events).toBeGreaterThan(0);
      // More changes while no watcher runs.
      for (let i = 0; i < 100; i++) await mutate(world, i % 2 ? 'parent' : 'child');
    } finally {
      first.kill();
    }
    const second = startCli(world);
    try {
      await second.waitFor((live) => live.embeddings?.resumed && live.dubbing?.resumed);
      await second.settle();
      const last = Object.fromEntries(
        Object.entries(second.last).map(
          ([name, { relation: _r, events: _e, resumed: _s, at: _a, ...counts }]) => [name, counts],
        ),
      );
      expect(last, `seed ${seed}`).toEqual(await scanCounts(world.config));
    } finally {
      second.kill();
    }
  });

  it('a failed parent probe interrupts it: it says so, reloads its saved state, and still equals a full scan', async () => {
    const world = await watchWorld(server, 'retry', 11);
    const notices: string[] = [];
    const watcher = startWatching(world, notices);
    try {
      await settled(watcher.latest, ['embeddings', 'dubbing'], 1500);
      // The next parent probe of content fails once, as a timed-out query would (sandbox fail point).
      await server.client.db('admin').command({
        configureFailPoint: 'failCommand',
        mode: { times: 1 },
        data: {
          failCommands: ['find'],
          errorCode: 50,
          namespace: `${world.parentDb.databaseName}.content`,
        },
      });
      for (let i = 0; i < 120; i++) await mutate(world, i % 2 ? 'parent' : 'child');
      const deadline = Date.now() + 20_000;
      while (!notices.some((n) => /interrupted/.test(n)) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(notices[0]).toMatch(/^embeddings: live counts interrupted \(.*\); trying again in 5 s$/);
      // The pause, then the watcher catches up from its last save.
      await new Promise((resolve) => setTimeout(resolve, 5500));
      await settled(watcher.latest, ['embeddings', 'dubbing']);
      expect(countsOf(watcher.latest)).toEqual(await scanCounts(world.config));
    } finally {
      await server.client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' });
      await watcher.stop();
    }
  });

  it('a saved position the oplog no longer holds: says so in one line and starts again from a new snapshot', async () => {
    const world = await watchWorld(server, 'lost', 5);
    const first = startWatching(world);
    await settled(first.latest, ['embeddings', 'dubbing'], 1000);
    await first.stop();
    // The saved child position moved to before the oplog began (mongod: rolled off its oplog).
    const saved = world.childDb.collection('orphan_cleanup_watch');
    expect(await saved.countDocuments({ _id: { $in: ['embeddings', 'dubbing'] } as never })).toBe(2);
    await saved.updateOne(
      { _id: 'embeddings' as never },
      { $set: { childToken: { _data: '8200000001' + '00000001' } } },
    );
    for (let i = 0; i < 40; i++) await mutate(world, i % 2 ? 'parent' : 'child');
    const notices: string[] = [];
    const second = startWatching(world, notices);
    try {
      await settled(second.latest, ['embeddings', 'dubbing']);
      expect(notices).toEqual([
        'embeddings: the saved change-stream position is no longer in the oplog; live counts start again from a new snapshot',
      ]);
      expect(second.latest.embeddings.resumed).toBe(false);
      expect(second.latest.dubbing.resumed).toBe(true);
      expect(countsOf(second.latest)).toEqual(await scanCounts(world.config));
    } finally {
      await second.stop();
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
