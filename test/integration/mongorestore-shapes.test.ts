import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BSON } from 'bson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackupFiles } from '../support/backups.ts';
import { metadataFileName, parseMetadata } from '../../src/mongo/dump-layout.ts';
import { freshDemo, scanAndClean } from '../support/cleanup-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// The README's recovery path is `mongorestore --dir <run dir>` into the database the run came from. These are the
// commands mongorestore sends for it, shaped as it shapes them; they must succeed as they do on mongod.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.stop());

describe("mongorestore's commands", () => {
  it("restore one of the tool's own backups into the collection it came from without an error", async () => {
    const demo = await freshDemo(server);
    const { result } = await scanAndClean(demo);
    const backup = await readBackupFiles(result.runDir!);
    const db = server.client.db(demo.olorinDb);
    for (const relation of backup.manifest.relations) {
      const metadata = parseMetadata(
        await readFile(
          join(result.runDir!, relation.database, metadataFileName(relation.collection)),
          'utf8',
        ),
        relation.collection,
      );
      const before = await db.collection(relation.collection).indexes();
      // mongorestore (100.x) sends each index with `ns` added, into a collection that already has them.
      const indexes = metadata.indexes
        .filter((index) => index.name !== '_id_')
        .map((index) => ({ ...index, ns: `${demo.olorinDb}.${relation.collection}`, background: true }));
      if (indexes.length) {
        const reply = await db.command({ createIndexes: relation.collection, indexes });
        expect(reply.ok).toBe(1);
      }
      expect(await db.collection(relation.collection).indexes()).toEqual(before);
      const docs = backup.files.get(relation.file)!.documents;
      const inserted = await db.command({
        insert: relation.collection,
        documents: docs.map(restoredDocument),
        ordered: false,
      });
      expect(inserted.n).toBe(docs.length);
    }
    // The indexes listed afterwards carry no `ns`, as mongod's listIndexes since 4.4.
    const listed = await db.collection('content_embeddings').indexes();
    expect(listed.every((index) => !('ns' in index))).toBe(true);
  });

  it("create with mongorestore's idIndex keeps it out of the collection's options", async () => {
    const db = server.client.db(server.dbName('restored'));
    await db.command({ create: 'things', idIndex: { v: 2, key: { _id: 1 }, name: '_id_' } });
    const [info] = await db.listCollections({ name: 'things' }, { nameOnly: false }).toArray();
    expect((info as { options?: object }).options).toEqual({});
  });
});

/** A backed-up document as mongorestore sends it: every value with its BSON type. */
function restoredDocument(raw: Uint8Array) {
  return BSON.deserialize(raw, { promoteValues: false });
}
