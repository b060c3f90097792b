import type { Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 23 item 5: the generic arguments mongod accepts on every command ($readPreference — which drivers add on
// direct connections —, comment, maxTimeMS, writeConcern) are accepted by every command and never stored. Runs
// against a real mongod too (ORPHAN_CLEANUP_TEST_URI): this is mongod's documented behaviour.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

describe('generic command arguments', () => {
  it('create keeps none of them as collection options, and collMod accepts them', async () => {
    const db = server.client.db(server.dbName('generic'));
    const generic = {
      $readPreference: { mode: 'primaryPreferred' },
      comment: 'from a test',
      maxTimeMS: 10_000,
      writeConcern: { w: 1 },
    };
    await db.command({ create: 'kept', ...generic });
    const [info] = (await db.listCollections({ name: 'kept' }).toArray()) as Document[];
    expect(info.options).toEqual({});
    await db.command({ collMod: 'kept', changeStreamPreAndPostImages: { enabled: true }, ...generic });
    const [after] = (await db.listCollections({ name: 'kept' }).toArray()) as Document[];
    expect(after.options).toEqual({ changeStreamPreAndPostImages: { enabled: true } });
    // The command's own options still count: a collation is kept.
    await db.command({ create: 'sorted', collation: { locale: 'simple' }, comment: 'x' });
    const [sorted] = (await db.listCollections({ name: 'sorted' }).toArray()) as Document[];
    expect(Object.keys(sorted.options)).toEqual(['collation']);
  });
});
