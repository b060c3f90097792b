import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BSON, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackupFiles } from '../support/backups.ts';
import { LAUNCHER, runCli } from '../support/cli.ts';
import { loadOlorinDemo, type OlorinFixture } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

let server: TestServer;
let demo: OlorinFixture;
let backupRoot: string;
const env = () => ({ OLORIN_MONGODB_URI: server.uri, BAYIT_MONGODB_URI: server.uri });
const base = () => ['--config', demo.configPath];

beforeAll(async () => {
  server = await startTestServer();
  demo = await loadOlorinDemo(server);
  backupRoot = await mkdtemp(join(tmpdir(), 'oc-cli-backups-'));
});
afterAll(async () => server?.stop());

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe('clean, restore and exceptions from the command line', () => {
  it('plans without writing, and refuses --execute without --yes when not on a terminal', async () => {
    const dry = await runCli(['clean', ...base(), '--backup-dir', backupRoot], env());
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('content_embeddings');
    expect(dry.stdout).toContain('would delete 180 of 180 deletable in 1 batch of 1,000');
    expect(dry.stdout).toContain('dry run: nothing was deleted');
    expect(await readdir(backupRoot)).toEqual([]);
    const noYes = await runCli(['clean', ...base(), '--execute'], env());
    expect(noYes.code).toBe(2);
    expect(oneLine(noYes.stderr)).toBe(
      'orphan-cleanup: --execute needs --yes when stdin is not a terminal (cron); nothing was deleted',
    );
    const badBatch = await runCli(['clean', ...base(), '--batch-size', '5000'], env());
    expect(badBatch.code).toBe(2);
    expect(oneLine(badBatch.stderr)).toMatch(/--batch-size/);
  });

  it("executes with --yes, prints the restore command, and restores one parent's children", async () => {
    const result = await runCli(
      ['clean', ...base(), '--execute', '--yes', '--backup-dir', backupRoot],
      env(),
    );
    expect(result.code).toBe(0);
    const runDir = /^backup: (\S+)$/m.exec(result.stdout)![1];
    // A command that runs as printed from another shell in the checkout (issue 26 item 5): the launcher's path,
    // the run, the config; and what that shell needs, named (never a URI).
    const printed = /^restore with: (.+)$/m.exec(result.stdout)![1];
    expect(printed).toBe(`${LAUNCHER} restore ${runDir} --config ${demo.configPath}`);
    expect(result.stdout).toContain('  (run it with OLORIN_MONGODB_URI set as in this shell)\n');
    expect(result.stdout).not.toContain(server.uri);
    expect(result.stdout).toContain('content_embeddings: backed up 180, deleted 180 of 180 planned');
    // An executed run never says "would" (issue 26, item 8).
    expect(result.stdout).toContain('will delete 180 of 180 deletable');
    expect(result.stdout).not.toContain('would delete');
    // Verify and restore need only the child database's URI: an incident session may not hold Bayit+'s.
    const olorinOnly = { OLORIN_MONGODB_URI: server.uri };
    const verify = await runCli(['verify', runDir, ...base()], olorinOnly);
    // Exit codes a scheduler reads (the README's table): 7, backed-up documents absent from the database.
    expect(verify.code).toBe(7);
    expect(verify.stdout).toContain('content_embeddings: ');
    expect(verify.stdout).toContain('180 backed up, 0 present, 180 absent');
    const run = await server.client
      .db(demo.olorinDb)
      .collection('orphan_cleanup_runs')
      .findOne({ kind: 'clean' });
    expect(run?.counts.deleted).toBe(180);
    const backup = await readBackupFiles(runDir);
    const [first] = backup.files.values().next().value!.documents;
    const ref = String(BSON.deserialize(first).content_id);
    // Which backups hold this reference's children: found from the files, with no database at all.
    const found = await runCli(['restore', '--find', ref, '--backup-dir', backupRoot]);
    expect(found.code).toBe(0);
    // The same in the notations the tool and mongosh display (issue 26 item 2).
    for (const shown of [`ObjectId(${ref})`, `ObjectId('${ref}')`, `oid ${ref}`])
      expect((await runCli(['restore', '--find', shown, '--backup-dir', backupRoot])).stdout).toBe(
        found.stdout,
      );
    expect(found.stdout).toMatch(/^run +created +relation +children +restore with$/m);
    expect(found.stdout).toContain(
      `content_embeddings  3         ${LAUNCHER} restore ${runDir} --ref ${ref}`,
    );
    const nowhere = await runCli([
      'restore',
      '--find',
      new ObjectId().toHexString(),
      '--backup-dir',
      backupRoot,
    ]);
    // 5: nothing selected.
    expect(nowhere.code).toBe(5);
    expect(oneLine(nowhere.stderr)).toMatch(
      /no child of it in the 1 backups under .*; give --config and the child URIs to count its children in the database$/,
    );
    // With the configuration at hand, how many of its children are in the database now (issue 26 item 5).
    const live = await server.client
      .db(demo.olorinDb)
      .collection('content_embeddings')
      .findOne({ content_id: { $type: 'objectId' } });
    const held = await server.client
      .db(demo.olorinDb)
      .collection('content_embeddings')
      // Both forms the key rule matches: the ObjectId and its hex string.
      .countDocuments({ content_id: { $in: [live!.content_id, String(live!.content_id)] } });
    const counted = await runCli(
      ['restore', '--find', String(live!.content_id), '--backup-dir', backupRoot, ...base()],
      env(),
    );
    expect(counted.code).toBe(5);
    expect(oneLine(counted.stderr)).toMatch(
      new RegExp(
        `its children in the database now: content_embeddings ${held}, recap_sessions 0, dubbing_sessions 0$`,
      ),
    );
    const both = await runCli(['restore', runDir, '--find', ref]);
    expect(both.code).toBe(2);
    const restored = await runCli(['restore', runDir, ...base(), '--ref', `ObjectId('${ref}')`], olorinOnly);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(
      /^content_embeddings: \S+\.content_embeddings: inserted 3 of 3, 0 already present\n$/,
    );
    expect(
      await server.client
        .db(demo.olorinDb)
        .collection('content_embeddings')
        .countDocuments({ content_id: { $in: [ref, new ObjectId(ref)] } }),
    ).toBe(3);
    // 6: the same restore again has nothing to do; 0: verify of those children finds them all present.
    const again = await runCli(['restore', runDir, ...base(), '--ref', ref], olorinOnly);
    expect(again.code).toBe(6);
    expect(again.stdout).toMatch(/nothing to restore: all 3 selected documents are already present/);
    const present = await runCli(['verify', runDir, ...base(), '--ref', ref], olorinOnly);
    expect(present.code).toBe(0);
    expect(present.stdout).toContain('3 backed up, 3 present, 0 absent');
    // The printed command, pasted verbatim into a second shell that has the variable it names: it restores the
    // rest.
    const pasted = spawnSync('bash', ['-c', printed], {
      cwd: process.cwd(),
      env: { PATH: process.env.PATH, HOME: process.env.HOME, OLORIN_MONGODB_URI: server.uri },
      encoding: 'utf8',
    });
    expect(pasted.stderr).toBe('');
    expect(pasted.status).toBe(0);
    expect(pasted.stdout).toMatch(/content_embeddings: \S+: inserted 177 of 180, 3 already present/);
  });

  it('answers bad input with one line: missing reason, unknown relation, corrupted backup', async () => {
    const noReason = await runCli(
      ['exceptions', 'add', ...base(), '--relation', 'recap_sessions', '--doc', '507f1f77bcf86cd799439011'],
      env(),
    );
    expect(noReason.code).toBe(2);
    expect(oneLine(noReason.stderr)).toBe('orphan-cleanup: exceptions add: --reason is required');
    const unknown = await runCli(
      ['exceptions', 'add', ...base(), '--relation', 'nope', '--doc', '1', '--reason', 'x'],
      env(),
    );
    expect(unknown.code).toBe(2);
    expect(oneLine(unknown.stderr)).toMatch(/--relation nope: unknown relation/);
    const badRef = await runCli(
      [
        'exceptions',
        'add',
        ...base(),
        '--relation',
        'content_embeddings',
        '--ref',
        'not-an-id',
        '--reason',
        'x',
      ],
      env(),
    );
    expect(badRef.code).toBe(2);
    expect(oneLine(badRef.stderr)).toBe(
      'orphan-cleanup: reference "not-an-id" is not a valid key: keyMatch objectid-or-hex takes an ObjectId or a 24-character hex string',
    );
    const fake = await mkdtemp(join(tmpdir(), 'oc-fake-run-'));
    await writeFile(join(fake, 'manifest.json'), '{ broken');
    const corrupted = await runCli(['restore', fake, ...base()], env());
    expect(corrupted.code).toBe(1);
    expect(oneLine(corrupted.stderr)).toMatch(/manifest\.json: unreadable backup manifest/);
    const missing = await runCli(['restore', join(fake, 'nope'), ...base()], env());
    expect(missing.code).toBe(2);
    expect(oneLine(missing.stderr)).toMatch(/no such backup run directory/);
  });

  it('adds, lists and removes exceptions, and an excepted orphan is reported as excepted', async () => {
    const orphan = await server.client
      .db(demo.olorinDb)
      .collection('dubbing_sessions')
      .findOne({ partner_id: 'partner-900' });
    const add = await runCli(
      [
        'exceptions',
        'add',
        ...base(),
        '--relation',
        'dubbing_sessions',
        '--ref',
        'partner-900',
        '--reason',
        'legal hold',
        '--expires',
        '30d',
      ],
      env(),
    );
    expect(add.code).toBe(0);
    expect(add.stdout).toBe(
      'added reference exception "partner-900" to dubbing_sessions (the child\'s partner_id is the string "partner-900")\n',
    );
    const list = await runCli(['exceptions', 'list', ...base()], env());
    expect(list.stdout).toMatch(
      /dubbing_sessions {2}reference "partner-900" {2}"legal hold" {2}by \S+ .* expires /,
    );
    const scan = await runCli(
      ['scan', ...base(), '--json', '--relation', 'dubbing_sessions', '--read-only'],
      env(),
    );
    const [dubbing] = JSON.parse(scan.stdout).relations;
    expect(dubbing.excepted).toBe(5);
    expect(dubbing.orphans).toBe(15);
    expect(orphan).not.toBeNull();
    const removed = await runCli(
      ['exceptions', 'remove', ...base(), '--relation', 'dubbing_sessions', '--ref', 'partner-900'],
      env(),
    );
    expect(removed.code).toBe(0);
  });
});

describe('clean --json (issue 26 item 8)', () => {
  it('prints the plan and the outcome as one JSON document, for a dry run and for an execution', async () => {
    const root = await mkdtemp(join(tmpdir(), 'oc-cli-json-'));
    // Its own copy of the demo: the other tests count the shared one's orphans.
    const own = await loadOlorinDemo(server, { name: 'cleanjson' });
    const base = () => ['--config', own.configPath];
    const dry = await runCli(
      ['clean', ...base(), '--json', '--relation', 'recap_sessions', '--backup-dir', root],
      env(),
    );
    expect(dry.code).toBe(0);
    const planned = JSON.parse(dry.stdout);
    expect(planned).toMatchObject({ mode: 'dry-run', outcome: expect.stringMatching(/^(planned|nothing)$/) });
    expect(planned.plan.relations[0]).toMatchObject({ name: 'recap_sessions', safe: true });
    expect(planned.plan.relations[0]).not.toHaveProperty('candidates');
    const run = await runCli(
      [
        'clean',
        ...base(),
        '--json',
        '--relation',
        'content_embeddings',
        '--execute',
        '--yes',
        '--backup-dir',
        root,
        '--max-deletes',
        '10',
      ],
      env(),
    );
    expect(run.code).toBe(0);
    const executed = JSON.parse(run.stdout);
    expect(executed).toMatchObject({
      mode: 'execute',
      outcome: 'completed',
      plan: { relations: [{ name: 'content_embeddings', toDelete: 10 }] },
      result: { status: 'completed', relations: [{ name: 'content_embeddings', deleted: 10, backedUp: 10 }] },
    });
    expect(executed.result.runDir).toContain(root);
    // Progress stays on stderr, out of the document.
    expect(run.stderr).toMatch(/content_embeddings: batch 1\/1/);
  });
});
