import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parentUnresolved } from '../../src/cleanup/restore.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { childrenParentsFile, configFor } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 26 item 4: a restore says whether the restored children's grace restarted. Grace counts from the
// reference's first sighting, which a restore does not reset; a reference a complete scan no longer saw was
// forgotten, and its restored children are first seen again by the next scan.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

describe('the grace of restored children', () => {
  it('is said to continue from the first sighting when one is recorded, and to restart when it was forgotten', async () => {
    const childDb = server.dbName('grace_child');
    const config = await configFor(
      childrenParentsFile(server.uri, childDb, server.dbName('grace_parent'), {
        relation: { graceDays: 30 },
      }),
    );
    const children = server.client.db(childDb).collection('children');
    await children.insertMany([{ ref: 'gone-1' }, { ref: 'gone-1' }]);
    const pool = new SourcePool(config.sources);
    try {
      // A complete scan records the first sighting of gone-1 (its parent never existed).
      const report = await runScan({ config, pool, access: { readOnly: false } });
      expect(report.relations[0].orphans).toBe(2);
      const sighted = await parentUnresolved(config, pool, 'rel', 'gone-1');
      expect(sighted).toMatch(
        /^its parent is still missing; their grace period did not restart: it counts from the reference's first sighting \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\), so they are deletable from \d{4}-\d\d-\d\d \d\d:\d\d UTC$/,
      );
      const [, seen, until] = /\((.+) UTC\).* from (.+) UTC$/.exec(sighted!)!;
      expect(Date.parse(`${until}Z`) - Date.parse(`${seen}Z`)).toBe(30 * 86_400_000);
      // A reference no complete scan has seen (or one it forgot): its children are first seen at the next scan.
      expect(await parentUnresolved(config, pool, 'rel', 'gone-2')).toBe(
        'its parent is still missing; their grace period restarts: the next scan sees them for the first time, and they are deletable 30 days after it',
      );
      // A parent that is back: nothing to say.
      await server.client
        .db(config.sources.parent.database)
        .collection('parents')
        .insertOne({ _id: 'gone-1' } as never);
      expect(await parentUnresolved(config, pool, 'rel', 'gone-1')).toBeUndefined();
    } finally {
      await pool.close();
    }
  });
});
