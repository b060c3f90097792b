import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackupFiles } from '../support/backups.ts';
import { backedUp, missingFrom, snapshot } from '../support/invariants.ts';
import { loadOlorinDemo, type OlorinFixture } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

const LAUNCHER = fileURLToPath(new URL('../../bin/orphan-cleanup', import.meta.url));
let server: TestServer;
let demo: OlorinFixture;

beforeAll(async () => {
  server = await startTestServer();
  demo = await loadOlorinDemo(server);
});
afterAll(async () => {
  await server.client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' });
  await server?.stop();
});

describe('serve under SIGTERM', () => {
  it('stops accepting, lets the running batch finish, closes its backup and exits 0', async () => {
    const backupRoot = await mkdtemp(join(tmpdir(), 'oc-serve-term-'));
    const children = server.client.db(demo.olorinDb).collection('content_embeddings');
    const before = await snapshot(children);
    const child = spawn(
      process.execPath,
      [
        LAUNCHER,
        'serve',
        '--no-auth',
        '--port',
        '0',
        '--config',
        demo.configPath,
        '--grace-days',
        '0',
        '--batch-size',
        '50',
        '--backup-dir',
        backupRoot,
      ],
      {
        env: {
          ...process.env,
          OLORIN_MONGODB_URI: server.uri,
          BAYIT_MONGODB_URI: server.uri,
          OLORIN_USE_SEPARATE_DATABASE: 'true',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let logs = '';
    child.stdout.on('data', (chunk) => {
      logs += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    let base: string | undefined;
    while (!base) {
      base = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(logs)?.[1];
      if (Date.now() > deadline) throw new Error(`serve did not start: ${logs}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await server.client.db('admin').command({
      configureFailPoint: 'failCommand',
      mode: 'alwaysOn',
      data: { failCommands: ['delete'], blockConnection: true, blockTimeMS: 400 },
    });
    const accepted = await fetch(`${base}/api/v1/cleanup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ relations: ['content_embeddings'], execute: true }),
    });
    expect(accepted.status).toBe(202);
    let runDir: string | undefined;
    while (!runDir) {
      const runs = (await readdir(backupRoot)).filter((name) => !name.endsWith('.jsonl'));
      if (runs.length) {
        const manifest = JSON.parse(
          await readFile(join(backupRoot, runs[0], 'manifest.json'), 'utf8').catch(() => '{}'),
        );
        if (manifest.relations?.[0]?.batches.length >= 2) runDir = join(backupRoot, runs[0]);
      }
      if (Date.now() > deadline) throw new Error('cleanup did not start');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await server.client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' });
    const backup = await readBackupFiles(runDir);
    expect(backup.manifest.status).toBe('aborted');
    const [relation] = backup.manifest.relations;
    expect(relation.deleted).toBe(relation.backedUp);
    expect(relation.backedUp).toBeLessThan(600);
    const missing = missingFrom(before, await snapshot(children));
    expect(missing.length).toBe(relation.deleted);
    const backups = await backedUp(backupRoot);
    for (const key of missing) expect(backups.get(key)?.equals(before.get(key)!)).toBe(true);
  });
});
