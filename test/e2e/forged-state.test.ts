import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../support/cli.ts';
import { snapshot } from '../support/invariants.ts';
import { loadOlorinDemo } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 25: hostile input, round three. Item 1: state the tool reads back from the database is input. A scan checkpoint forged in
// orphan_cleanup_runs — exactly what a user with the plain scan role can write — must never lead to a delete.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.stop());

describe('a forged scan checkpoint', () => {
  it('is refused with one line and the scan starts again: no child with a null, missing or boolean reference, and none in grace, is deleted', async () => {
    const demo = await loadOlorinDemo(server, { name: 'forged' });
    const olorin = server.client.db(demo.olorinDb);
    const embeddings = olorin.collection('content_embeddings');
    // Children a forger wants gone: references that are not references, and orphans still in grace.
    await embeddings.insertMany([
      { _id: new ObjectId(), content_id: null, embedding_type: 'keep' },
      { _id: new ObjectId(), embedding_type: 'keep' },
      { _id: new ObjectId(), content_id: true, embedding_type: 'keep' },
    ] as never);
    const targets = await embeddings.find({ embedding_type: 'keep' }).toArray();
    const before = await snapshot(embeddings);
    // The forged run record: a finished-looking checkpoint whose candidates are those children, seen in 1970.
    const total = await embeddings.countDocuments();
    await olorin.collection('orphan_cleanup_runs').insertOne({
      runId: '20260101T000000Z-forged',
      kind: 'scan',
      relation: 'content_embeddings',
      startedAt: new Date(),
      finishedAt: new Date(),
      durationMs: 1,
      operator: 'mallory',
      host: 'x',
      outcome: 'aborted',
      complete: false,
      counts: { scanned: total },
      scanTime: new Date(),
      checkpoint: {
        partitions: [{ done: true }],
        counts: { ok: 0, orphans: total, parentInactive: 0, invalidReference: 0, excepted: 0 },
        scanned: total,
        inGrace: 0,
        deletable: total,
        samples: { ok: [], orphans: [], parentInactive: [], invalidReference: [], excepted: [] },
        candidates: targets.map((doc) => ({
          id: doc._id,
          ...(doc.content_id !== undefined ? { reference: doc.content_id } : {}),
          category: 'orphans',
          since: new Date(0),
        })),
        candidateLimit: 100,
        storage: { bytes: 0, measured: 0, unmeasured: 0 },
        roundTrips: { childBatches: 0, parentProbes: 0, sizeQueries: 0 },
        durationMs: 1,
      },
    } as never);
    const backupRoot = await mkdtemp(join(tmpdir(), 'oc-forged-'));
    const result = await runCli(
      [
        'clean',
        '--execute',
        '--yes',
        '--resume',
        '--max-deletes',
        '100',
        '--config',
        demo.configPath,
        '--relation',
        'content_embeddings',
        '--grace-days',
        '30',
        '--backup-dir',
        backupRoot,
      ],
      { OLORIN_MONGODB_URI: server.uri, BAYIT_MONGODB_URI: server.uri },
    );
    expect(result.stderr).toMatch(
      /content_embeddings: the checkpoint of unfinished scan 20260101T000000Z-forged is not resumed: malformed \(.*\); scanning from the start/,
    );
    // A fresh scan: every orphan is first seen now, so all are in their 30 days of grace; nothing is deleted.
    expect(result.code).toBe(0);
    const after = await snapshot(embeddings);
    expect(after.size).toBe(before.size);
    expect(await embeddings.countDocuments({ embedding_type: 'keep' })).toBe(3);
  });
});

describe('a password on the command line', () => {
  it('is gone from /proc/PID/cmdline while serve runs, and doctor warns about it', async () => {
    const withPassword = `${server.uri.replace('mongodb://', 'mongodb://alice:s3cr3t-pw@')}`;
    const run = startCli(['serve', '--no-auth', '--port', '0', '--source', `olorin=${withPassword}`], {
      ORPHAN_CLEANUP_API_TOKEN: 'x',
      BAYIT_MONGODB_URI: server.uri,
    });
    try {
      const deadline = Date.now() + 20_000;
      let cmdline = '';
      while (Date.now() < deadline) {
        cmdline = await readFile(`/proc/${run.child.pid}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes('****')) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(cmdline).toContain('olorin=mongodb://****@');
      expect(cmdline).not.toContain('s3cr3t-pw');
    } finally {
      run.child.kill('SIGTERM');
      await run.done;
    }
    const doctor = await runCli(['doctor', '--source', `olorin=${withPassword}`], {
      BAYIT_MONGODB_URI: server.uri,
    });
    expect(doctor.stderr).toMatch(/warning: a URI with a password was given on the command line/);
    expect(doctor.stdout + doctor.stderr).not.toContain('s3cr3t-pw');
  });
});
