import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../support/cli.ts';
import { backedUp, missingFrom, snapshot, waitForBatches } from '../support/invariants.ts';
import { loadOlorinDemo, type OlorinFixture } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Real child processes killed at awkward moments, with sandbox fault injection (mongod's failCommand).
let server: TestServer;
let fixtures = 0;

beforeAll(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' });
});
afterAll(async () => server?.stop());

interface Scenario extends OlorinFixture {
  backupRoot: string;
  before: Map<string, Buffer>;
  env: NodeJS.ProcessEnv;
  args: string[];
}

async function scenario(): Promise<Scenario> {
  const demo = await loadOlorinDemo(server, { name: `f${fixtures++}` });
  const backupRoot = await mkdtemp(join(tmpdir(), 'oc-faults-'));
  return {
    ...demo,
    backupRoot,
    before: await snapshot(server.client.db(demo.olorinDb).collection('content_embeddings')),
    env: { OLORIN_MONGODB_URI: server.uri, BAYIT_MONGODB_URI: server.uri },
    args: [
      'clean',
      '--execute',
      '--yes',
      '--config',
      demo.configPath,
      '--relation',
      'content_embeddings',
      '--grace-days',
      '0',
      '--batch-size',
      '50',
      '--backup-dir',
      backupRoot,
    ],
  };
}

function failPoint(mode: unknown, data: Record<string, unknown>) {
  return server.client.db('admin').command({ configureFailPoint: 'failCommand', mode, data });
}

/** The invariant: every document gone from the database is, byte for byte, in a backup that parses. */
async function expectEveryMissingDocumentBackedUp(s: Scenario): Promise<number> {
  const after = await snapshot(server.client.db(s.olorinDb).collection('content_embeddings'));
  const missing = missingFrom(s.before, after);
  const backups = await backedUp(s.backupRoot);
  for (const key of missing)
    expect(backups.get(key)?.equals(s.before.get(key)!), `missing ${key} is backed up`).toBe(true);
  // Nothing but orphans and inactive children was touched: 600 of them in the demo data.
  expect(missing.length).toBeLessThanOrEqual(600);
  return missing.length;
}

describe('cleanup under faults', () => {
  it('SIGKILL between backup write and delete leaves nothing deleted that is not backed up', async () => {
    const s = await scenario();
    await failPoint(
      { skip: 2, times: 1 },
      { failCommands: ['delete'], blockConnection: true, blockTimeMS: 1500 },
    );
    const run = startCli(s.args, s.env);
    await waitForBatches(s.backupRoot, 3);
    run.child.kill('SIGKILL');
    expect((await run.done).signal).toBe('SIGKILL');
    await sleep(3000); // a delete already sent still runs on the server after its client died
    // Two batches were deleted; the third was backed up and killed either before or after its delete was sent.
    expect([100, 150]).toContain(await expectEveryMissingDocumentBackedUp(s));
  });

  it('SIGKILL at arbitrary moments mid-run keeps the invariant', async () => {
    for (const killAfter of [1, 4, 7]) {
      const s = await scenario();
      const run = startCli([...s.args, '--sleep-ms', '15'], s.env);
      await waitForBatches(s.backupRoot, killAfter);
      run.child.kill('SIGKILL');
      await run.done;
      const missing = await expectEveryMissingDocumentBackedUp(s);
      expect(missing).toBeGreaterThanOrEqual((killAfter - 1) * 50);
    }
  });

  it('a connection dropped mid-batch fails the run with one line, and the backup still covers every delete', async () => {
    const s = await scenario();
    await failPoint({ skip: 1, times: 1 }, { failCommands: ['delete'], closeConnection: true });
    const result = await runCli(s.args, s.env);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(
      /^orphan-cleanup: cleanup failed: .*\(backup: .*\)$/,
    );
    expect(await expectEveryMissingDocumentBackedUp(s)).toBe(50);
    const runs = (await readdir(s.backupRoot)).filter((name) => !name.endsWith('.jsonl'));
    const manifest = JSON.parse(await readFile(join(s.backupRoot, runs[0], 'manifest.json'), 'utf8'));
    expect(manifest.status).toBe('failed');
  });

  it('a second clean of the same relation refuses while the first holds the lock', async () => {
    const s = await scenario();
    await failPoint('alwaysOn', { failCommands: ['delete'], blockConnection: true, blockTimeMS: 500 });
    const first = startCli(s.args, s.env);
    await waitForBatches(s.backupRoot, 1);
    const second = await runCli(s.args, s.env);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(
      /relation content_embeddings is locked by .* \(pid \d+, run [\w-]+\) since /,
    );
    // Locked out before its first backup (issue 25 item 8): no empty run directory, no restore line.
    expect(second.stdout).not.toMatch(/restore with/);
    expect(second.stdout).toMatch(/nothing was backed up or deleted: there is nothing to restore/);
    expect(second.stderr.trim().split('\n').at(-1)).toMatch(/; nothing was deleted$/);
    expect((await readdir(s.backupRoot)).filter((name) => !name.endsWith('.jsonl'))).toHaveLength(1);
    await failPoint('off', {});
    expect((await first.done).code).toBe(0);
    expect(await expectEveryMissingDocumentBackedUp(s)).toBe(600);
  });
});
