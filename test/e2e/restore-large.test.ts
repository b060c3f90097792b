import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Binary, BSON } from 'bson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupWriter } from '../../src/cleanup/backup.ts';
import { startCli } from '../support/cli.ts';
import { childrenParentsFile, writeConfigFile } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 25 item 3: restore streams its `.bson` files. A legitimate backup over 2 GiB restores (Node cannot read a
// file that large into one buffer at all), and the process's memory follows a batch, not the backup.
const MiB = 1024 * 1024;
const DOCUMENTS = 145;
const DOCUMENT_BYTES = 15 * MiB;

let server: TestServer;
let root: string;
beforeAll(async () => {
  server = await startTestServer({ sandboxOnly: true });
  root = await mkdtemp(join(tmpdir(), 'oc-large-backup-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await server?.stop();
});

/** Peak resident memory of a running process (VmHWM), in MiB; 0 once it has exited. */
async function peakMib(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

describe('a backup over 2 GiB', () => {
  it('restores every document, byte for byte, in memory that follows a batch', async () => {
    const childDb = server.dbName('large_child');
    const configPath = await writeConfigFile(
      childrenParentsFile(server.uri, childDb, server.dbName('large_parent')),
    );
    // Written by the tool's own backup writer, as a cleanup run writes it: batches appended and fsynced.
    const writer = await BackupWriter.create(root, '20261205T000000Z-large1', {
      operator: 'test',
      host: 'test',
    });
    const relation = await writer.addRelation(
      {
        name: 'rel',
        source: 'child',
        database: childDb,
        collection: 'children',
        field: 'ref',
        keyMatch: 'exact',
        planned: DOCUMENTS,
      },
      { indexes: [{ v: 2, key: { _id: 1 }, name: '_id_' }] },
    );
    for (let i = 0; i < DOCUMENTS; i += 5) {
      const docs = Array.from({ length: Math.min(5, DOCUMENTS - i) }, (_, j) =>
        BSON.serialize({
          _id: i + j,
          ref: `gone-${(i + j) % 3}`,
          blob: new Binary(Buffer.alloc(DOCUMENT_BYTES, i + j)),
        }),
      );
      await writer.appendBatch(relation, docs);
    }
    await writer.finish('completed');
    const file = join(writer.dir, relation.file);
    expect((await stat(file)).size).toBeGreaterThan(2 * 1024 * MiB);

    const { child, done } = startCli(['restore', writer.dir, '--config', configPath]);
    let peak = 0;
    const watching = setInterval(async () => {
      peak = Math.max(peak, await peakMib(child.pid!));
    }, 100);
    const result = await done;
    clearInterval(watching);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`inserted ${DOCUMENTS}`);
    const children = server.client.db(childDb).collection('children');
    expect(await children.countDocuments()).toBe(DOCUMENTS);
    const last = await children.findOne({ _id: DOCUMENTS - 1 } as never);
    expect((last!.blob as Binary).length()).toBe(DOCUMENT_BYTES);
    expect((last!.blob as Binary).buffer[DOCUMENT_BYTES - 1]).toBe(DOCUMENTS - 1);
    // A 2.1 GiB backup through a process of a few hundred MB: a 16 MB batch, a 4 MB read buffer, the runtime.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(400);

    // verify reads it the same way: every document present.
    const verified = await startCli(['verify', writer.dir, '--config', configPath]).done;
    expect(verified.stderr).toBe('');
    expect(verified.stdout).toMatch(new RegExp(`${DOCUMENTS}\\b.*\\b${DOCUMENTS}\\b.*\\b0\\b`));
  }, 300_000);
});
