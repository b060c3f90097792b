import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BSON, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../support/cli.ts';
import { backedUp, missingFrom, snapshot, waitForBatches } from '../support/invariants.ts';
import { loadOlorinDemo } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 28: a silent database (SIGSTOP of its sandbox process: a hung primary or a dead network path) is given
// up on within 45 s by every face, in plain words, with the run's record kept. The child data (Olorin) and the
// parent data (Bayit+) live on two sandbox processes, so either can be frozen alone.
let olorin: TestServer;
let bayit: TestServer;
beforeAll(async () => {
  [olorin, bayit] = await Promise.all([
    startTestServer({ replicaSet: 'rs0', sandboxOnly: true }),
    startTestServer({ replicaSet: 'rs1', sandboxOnly: true }),
  ]);
});
afterAll(async () => {
  olorin?.resume();
  bayit?.resume();
  await olorin?.stop();
  await bayit?.stop();
});

/** A shortened silence limit keeps the suite fast; one test uses the default 20 s. */
const SILENCE_SECONDS = 5;
const GIVE_UP_BOUND_MS = 45_000;

interface Clusters {
  olorin: TestServer;
  bayit: TestServer;
}

let fixtures = 0;
async function scenario(clusters: Clusters = { olorin, bayit }) {
  const { olorin, bayit } = clusters;
  const demo = await loadOlorinDemo(olorin, { name: `s${fixtures++}`, parentServer: bayit });
  const backupRoot = await mkdtemp(join(tmpdir(), 'oc-silent-'));
  const embeddings = olorin.client.db(demo.olorinDb).collection('content_embeddings');
  return {
    ...demo,
    backupRoot,
    embeddings,
    before: await snapshot(embeddings),
    env: {
      OLORIN_MONGODB_URI: olorin.uri,
      BAYIT_MONGODB_URI: bayit.uri,
      ORPHAN_CLEANUP_SILENCE_SECONDS: String(SILENCE_SECONDS),
    },
    clean: [
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
      '--sleep-ms',
      '300',
      '--backup-dir',
      backupRoot,
    ],
  };
}

const lastLine = (stderr: string) => stderr.trim().split('\n').at(-1) ?? '';

/** Freezes a cluster (SIGSTOP) until the command ends, then thaws it: the result and how long it took. */
async function frozenUntilDone<T>(
  server: TestServer,
  done: Promise<T>,
): Promise<{ result: T; frozenMs: number }> {
  const frozenAt = Date.now();
  server.pause();
  try {
    return { result: await done, frozenMs: Date.now() - frozenAt };
  } finally {
    server.resume();
  }
}

/** The child cluster freezes mid-clean: the plain line, nothing lost, the run recorded by the next clean. */
async function childFrozenMidClean({ olorin, bayit }: Clusters): Promise<void> {
  const s = await scenario({ olorin, bayit });
  const run = startCli(s.clean, s.env);
  await waitForBatches(s.backupRoot, 2);
  const { result, frozenMs } = await frozenUntilDone(olorin, run.done);
  expect(frozenMs).toBeLessThan(GIVE_UP_BOUND_MS);
  expect(result.code).toBe(1);
  const line = lastLine(result.stderr);
  const known = Number(/; (\d+) deleted so far/.exec(line)?.[1]);
  const unanswered = Number(
    /the (\d+) of the batch whose delete was sent and not answered/.exec(line)?.[1] ?? 0,
  );
  expect(line).toMatch(
    /^orphan-cleanup: cleanup failed: source olorin \(127\.0\.0\.1:\d+\) answered nothing for \d+ s while (re-reading|backing up|re-checking the parents of|deleting) batch \d+ of \d+ of content_embeddings.*; \d+ deleted so far.*, every one of them in the backup .*; restore is not needed: re-run clean when olorin answers; the run's record \(content_embeddings\) could not be written to orphan_cleanup_runs; it is in .*manifest\.json and .*audit\.jsonl/,
  );
  expect(result.stderr).not.toMatch(/<monitor>|MongoTopologyClosedError|Topology is closed/);
  // Nothing deleted that is not in the backup.
  const gone = missingFrom(s.before, await snapshot(s.embeddings));
  const backup = await backedUp(s.backupRoot);
  expect(gone.length).toBeGreaterThan(0);
  expect(gone.every((id) => backup.has(id))).toBe(true);
  // A delete sent just before the freeze ran when the server resumed: counted as unanswered, not as deleted.
  expect([known, known + unanswered]).toContain(gone.length);
  // The record: not in the cluster yet, in the audit log; the next clean that reaches the cluster writes it.
  const runs = olorin.client.db(s.olorinDb).collection('orphan_cleanup_runs');
  const runDir = (await readdir(s.backupRoot)).find((name) => !name.endsWith('.jsonl'))!;
  expect(await runs.countDocuments({ runId: runDir, kind: 'clean' })).toBe(0);
  const next = await runCli(
    s.clean.filter((arg) => arg !== '--sleep-ms' && arg !== '300'),
    s.env,
  );
  // Its lock could not be released on the silent cluster: the next clean waits for the lease to run out,
  // and says so, but first writes the record it finds missing.
  expect(next.stderr).toMatch(/relation content_embeddings is locked by .* the lease ends /);
  expect(await runs.findOne({ runId: runDir, kind: 'clean' })).toMatchObject({
    outcome: 'failed',
    relation: 'content_embeddings',
    counts: { deleted: known },
  });
}

/** The parent cluster freezes mid-clean: the line names it and the re-check it was doing. */
async function parentFrozenMidClean({ olorin, bayit }: Clusters): Promise<void> {
  const s = await scenario({ olorin, bayit });
  const run = startCli(s.clean, s.env);
  await waitForBatches(s.backupRoot, 2);
  const { result, frozenMs } = await frozenUntilDone(bayit, run.done);
  expect(frozenMs).toBeLessThan(GIVE_UP_BOUND_MS);
  expect(result.code).toBe(1);
  expect(lastLine(result.stderr)).toMatch(
    /cleanup failed: source bayit \(127\.0\.0\.1:\d+\) answered nothing for \d+ s while re-checking the parents of batch \d+ of \d+ of content_embeddings on bayit; \d+ deleted so far, every one of them in the backup .*; restore is not needed: re-run clean when bayit answers/,
  );
  const gone = missingFrom(s.before, await snapshot(s.embeddings));
  const backup = await backedUp(s.backupRoot);
  expect(gone.every((id) => backup.has(id))).toBe(true);
  // The child cluster answered: the run is recorded as failed where it belongs.
  const runDir = (await readdir(s.backupRoot)).find((name) => !name.endsWith('.jsonl'))!;
  expect(
    await olorin.client
      .db(s.olorinDb)
      .collection('orphan_cleanup_runs')
      .findOne({ runId: runDir, kind: 'clean' }),
  ).toMatchObject({ outcome: 'failed' });
}

/**
 * The parent cluster freezes while `restore --ref` checks, after restoring, whether the parent is still
 * missing: the restore is complete and the line says so, naming the parent source and the check.
 */
async function parentFrozenMidRestoreCheck({ olorin, bayit }: Clusters): Promise<void> {
  const s = await scenario({ olorin, bayit });
  const cleaned = await runCli(
    s.clean.filter((arg) => arg !== '--sleep-ms' && arg !== '300'),
    s.env,
  );
  expect(cleaned.code).toBe(0);
  const runDir = join(s.backupRoot, (await readdir(s.backupRoot)).find((name) => !name.endsWith('.jsonl'))!);
  // One deleted orphan's parent, and how many of its children the clean deleted.
  const deleted = missingFrom(s.before, await snapshot(s.embeddings)).map((id) =>
    BSON.deserialize(s.before.get(id)!),
  );
  expect(deleted.length).toBeGreaterThan(0);
  const parent = deleted[0].content_id;
  const ref = String(parent);
  const children = deleted.filter((doc) => String(doc.content_id) === ref).length;
  // The restore's inserts are slow (3 s), so the parent freezes after its connection opened and before the check.
  await olorin.client.db('admin').command({
    configureFailPoint: 'failCommand',
    mode: { times: 1 },
    data: { failCommands: ['insert'], blockConnection: true, blockTimeMS: 3000 },
  });
  const run = startCli(['restore', runDir, '--ref', ref, '--config', s.configPath], s.env);
  await sleep(1500);
  const { result, frozenMs } = await frozenUntilDone(bayit, run.done);
  expect(frozenMs).toBeLessThan(GIVE_UP_BOUND_MS);
  expect(result.code).toBe(1);
  expect(lastLine(result.stderr)).toMatch(
    new RegExp(
      `^orphan-cleanup: the parent check after the restore failed: source bayit \\(127\\.0\\.0\\.1:\\d+\\) answered nothing for \\d+ s while checking whether parent ${ref} of content_embeddings exists on bayit; the restore itself is complete: ${children} inserted; run scan when bayit answers`,
    ),
  );
  expect(result.stderr).not.toMatch(/<monitor>|Topology is closed|MongoTopologyClosedError/);
  expect(result.stdout).toMatch(new RegExp(`inserted ${children} of ${children}`));
  expect(await s.embeddings.countDocuments({ content_id: parent })).toBe(children);
}

describe.each([
  { topology: 'replica sets', replicaSet: true },
  { topology: 'standalone servers', replicaSet: false },
])('on $topology', ({ replicaSet }) => {
  const clusters = {} as Clusters;
  beforeAll(async () => {
    if (replicaSet) Object.assign(clusters, { olorin, bayit });
    else
      [clusters.olorin, clusters.bayit] = await Promise.all([
        startTestServer({ sandboxOnly: true }),
        startTestServer({ sandboxOnly: true }),
      ]);
  });
  afterAll(async () => {
    if (replicaSet) return;
    clusters.olorin?.resume();
    clusters.bayit?.resume();
    await clusters.olorin?.stop();
    await clusters.bayit?.stop();
  });

  it('child frozen mid-clean: given up on in plain words, everything deleted in the backup, the run recorded by the next clean', () =>
    childFrozenMidClean(clusters));
  it('parent frozen mid-clean: the line names the parent source and the re-check it was doing', () =>
    parentFrozenMidClean(clusters));
  it('parent frozen mid-restore-check: the restore is complete and the line says so', () =>
    parentFrozenMidRestoreCheck(clusters));
});

describe('a cluster that goes silent mid-clean', () => {
  it('with the default limit (20 s), still within 45 s', async () => {
    const s = await scenario();
    const { ORPHAN_CLEANUP_SILENCE_SECONDS: _, ...env } = s.env;
    const run = startCli(s.clean, env);
    await waitForBatches(s.backupRoot, 1);
    const { result, frozenMs } = await frozenUntilDone(olorin, run.done);
    const took = frozenMs;
    expect(took).toBeGreaterThanOrEqual(19_000);
    expect(took).toBeLessThan(GIVE_UP_BOUND_MS);
    expect(lastLine(result.stderr)).toMatch(
      /source olorin \(127\.0\.0\.1:\d+\) answered nothing for 2\d s while/,
    );
  });
});

describe('a cluster that goes silent mid-scan', () => {
  it('child: the scan ends with a line naming the source, what it was scanning and that nothing was deleted', async () => {
    const s = await scenario();
    // Every child batch is slow (4 s), so the scan is still reading when the cluster freezes.
    await olorin.client.db('admin').command({
      configureFailPoint: 'failCommand',
      mode: 'alwaysOn',
      data: {
        failCommands: ['getMore', 'find'],
        blockConnection: true,
        blockTimeMS: 4000,
        namespace: `${s.olorinDb}.content_embeddings`,
      },
    });
    const run = startCli(['scan', '--config', s.configPath, '--relation', 'content_embeddings'], s.env);
    await sleep(1800);
    const { result, frozenMs } = await frozenUntilDone(olorin, run.done).finally(() =>
      olorin.client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' }),
    );
    expect(frozenMs).toBeLessThan(GIVE_UP_BOUND_MS);
    expect(result.code).toBe(1);
    expect(lastLine(result.stderr)).toMatch(
      /scan of content_embeddings failed: source olorin \(127\.0\.0\.1:\d+\) answered nothing for \d+ s while scanning content_embeddings .*nothing was deleted: re-run the scan when olorin answers/,
    );
  });
});

describe('a cluster that goes silent while watching', () => {
  it('child: watch says so in plain words within 45 s, and follows again once it answers', async () => {
    const s = await scenario();
    for (const [server, db] of [
      [olorin, s.olorinDb],
      [bayit, s.bayitDb],
    ] as const)
      for (const { name } of await server.client.db(db).listCollections().toArray())
        await server.client
          .db(db)
          .command({ collMod: name, changeStreamPreAndPostImages: { enabled: true } });
    const run = startCli(['watch', '--json', '--config', s.configPath], s.env);
    let stdout = '';
    let stderr = '';
    run.child.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    run.child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    const waitFor = async (read: () => string, pattern: RegExp, ms: number) => {
      const deadline = Date.now() + ms;
      while (!pattern.test(read())) {
        if (Date.now() > deadline) throw new Error(`never saw ${pattern}: ${read().slice(-1500)}`);
        await sleep(50);
      }
    };
    try {
      await waitFor(() => stdout, /"relation":"content_embeddings"/, 30_000);
      const frozenAt = Date.now();
      olorin.pause();
      try {
        await waitFor(
          () => stderr,
          /content_embeddings: live counts interrupted \(source olorin \(127\.0\.0\.1:\d+\) answered nothing for \d+ s\); trying again in \d+ s/,
          GIVE_UP_BOUND_MS,
        );
        expect(Date.now() - frozenAt).toBeLessThan(GIVE_UP_BOUND_MS);
      } finally {
        olorin.resume();
      }
      expect(stderr).not.toMatch(/<monitor>|Topology is closed/);
      // Once it answers again, changes are followed: a new orphan child moves the count.
      const before = stdout.length;
      await sleep(1000);
      await s.embeddings.insertOne({ content_id: new ObjectId(), embedding_type: 'after the outage' });
      await waitFor(() => stdout.slice(before), /"relation":"content_embeddings"/, 40_000);
    } finally {
      run.child.kill('SIGTERM');
      await run.done;
    }
  });
});

describe('a cluster that is slow but alive', () => {
  it('is not given up on while it answers its heartbeats: a query held longer than the silence limit completes', async () => {
    const s = await scenario();
    await bayit.client.db('admin').command({
      configureFailPoint: 'failCommand',
      mode: { times: 1 },
      data: {
        failCommands: ['find'],
        blockConnection: true,
        blockTimeMS: (SILENCE_SECONDS + 4) * 1000,
        namespace: `${s.bayitDb}.content`,
      },
    });
    const started = Date.now();
    const result = await runCli(
      ['scan', '--config', s.configPath, '--relation', 'content_embeddings'],
      s.env,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual((SILENCE_SECONDS + 4) * 1000);
  });
});
