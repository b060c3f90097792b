import { tmpdir } from 'node:os';
import { render } from 'ink-testing-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourcePool } from '../../src/mongo/sources.ts';
import { OWNED_COLLECTIONS } from '../../src/store/access.ts';
import { App } from '../../src/ui/app.tsx';
import { createConsoleServices } from '../../src/ui/services.ts';
import { KEY, press, type, waitForFrame, waitForText } from '../support/ink.ts';
import { loadOlorinDemo, type OlorinFixture } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

let server: TestServer;
let demo: OlorinFixture;
let pool: SourcePool;

beforeAll(async () => {
  process.env.NO_COLOR = '1';
  // A replica set, as the demo's clusters are: change streams need one.
  server = await startTestServer({ replicaSet: 'rs0' });
  demo = await loadOlorinDemo(server, { graceDays: 0 });
  for (const [db, collections] of [
    [demo.olorinDb, ['content_embeddings', 'recap_sessions', 'dubbing_sessions']],
    [demo.bayitDb, ['integration_partners']],
  ] as const)
    for (const collection of collections)
      await server.client
        .db(db)
        .command({ collMod: collection, changeStreamPreAndPostImages: { enabled: true } });
  // Live counts read each child field from its index (the demo leaves this one out for doctor to find).
  await server.client.db(demo.olorinDb).collection('dubbing_sessions').createIndex({ partner_id: 1 });
  pool = new SourcePool(demo.config.sources);
});
afterAll(async () => {
  await pool?.close();
  await server?.stop();
});

/** The console on the suite's replica-set demo, writable. */
function liveConsole() {
  const services = createConsoleServices(
    demo.config,
    pool,
    { readOnly: false },
    { operator: 'ops-live', backupRoot: tmpdir(), batchSize: 100 },
  );
  return render(<App services={services} />);
}

/** The content_embeddings block's first figures line: `orphans N  parent inactive …`. */
function embeddingsOrphans(frame: string): number | undefined {
  const block = frame.split('content_embeddings.content_id')[1] ?? '';
  const match = /orphans ([\d,]+) {2}parent inactive/.exec(block);
  return match ? Number(match[1].replace(/,/g, '')) : undefined;
}

describe('live counts in the console', () => {
  it('a Bayit+ content deleted by another client raises the orphan count without a rescan; restoring it brings it back', async () => {
    const r = liveConsole();
    try {
      let frame = await waitForFrame(
        r,
        (f) => /deletable 600/.test(f) && (f.match(/● live/g) ?? []).length === 3,
      );
      const before = embeddingsOrphans(frame)!;
      expect(before).toBe(300);

      // A live parent with children, deleted by another client (the test's own connection).
      const bayit = server.client.db(demo.bayitDb).collection('content');
      const olorin = server.client.db(demo.olorinDb);
      const [{ _id: contentId }] = await olorin
        .collection('content_embeddings')
        .aggregate<{ _id: unknown; n: number }>([
          { $group: { _id: '$content_id', n: { $sum: 1 } } },
          { $sort: { n: -1 } },
        ])
        .toArray()
        .then(async (groups) => {
          for (const group of groups) {
            const parent = await bayit.findOne({ _id: group._id as never, deleted_at: null });
            if (parent) return [group];
          }
          throw new Error('no live parent with children');
        });
      // Its children, under either form of the reference (ObjectId or hex string).
      const n = await olorin
        .collection('content_embeddings')
        .countDocuments({ content_id: { $in: [contentId, String(contentId)] } });
      expect(n).toBeGreaterThan(0);
      const parent = (await bayit.findOne({ _id: contentId as never }))!;
      const scansBefore = await olorin.collection(OWNED_COLLECTIONS.runs).countDocuments({ kind: 'scan' });
      await bayit.deleteOne({ _id: contentId as never });
      frame = await waitForFrame(r, (f) => embeddingsOrphans(f) === before + n);
      expect(frame).toContain('● live');
      expect(frame).not.toMatch(/Scanning|waiting to scan/);

      await bayit.insertOne(parent);
      await waitForFrame(r, (f) => embeddingsOrphans(f) === before);
      // No rescan ran: the counts came from the change streams.
      expect(await olorin.collection(OWNED_COLLECTIONS.runs).countDocuments({ kind: 'scan' })).toBe(
        scansBefore,
      );
    } finally {
      r.unmount();
    }
  });

  it('on a standalone server says "snapshot as of" instead of live, with no warning', async () => {
    const standalone = await startTestServer({ sandboxOnly: true });
    const plain = await loadOlorinDemo(standalone, { graceDays: 0 });
    const plainPool = new SourcePool(plain.config.sources);
    const services = createConsoleServices(
      plain.config,
      plainPool,
      { readOnly: true },
      { operator: 'ops-live', backupRoot: tmpdir(), batchSize: 100 },
    );
    const r = render(<App services={services} />);
    try {
      const frame = await waitForText(r, /deletable 600/);
      expect(frame).toMatch(/snapshot as of \d\d:\d\d UTC \(not live\)/);
      expect(frame).not.toContain('● live');
      expect(frame).not.toContain('change streams need');
    } finally {
      r.unmount();
      await plainPool.close();
      await standalone.stop();
    }
  });

  // Issue 26 item 3: an exception added while live says so in one line; the rescan that follows is not called drift.
  it('adding an exception says so, and the live counts start again with it instead of a drift warning', async () => {
    const r = liveConsole();
    try {
      await waitForFrame(r, (f) => /deletable \d+/.test(f) && (f.match(/● live/g) ?? []).length === 3);
      await press(r, KEY.enter);
      await waitForText(r, /\[Orphans \d+\]/);
      await press(r, KEY.enter);
      await waitForText(r, 'embedding_type: ');
      await press(r, 'x');
      await waitForText(r, 'type d for this document');
      await type(r, 'd');
      await waitForText(r, 'Reason for allow-listing document');
      await type(r, 'kept on purpose');
      await waitForText(r, 'until: 30d');
      await type(r, '');
      await waitForText(r, 'added document exception ObjectId(');
      await press(r, KEY.escape, KEY.escape);
      // The rescan ends with the child excepted, live again, and no drift line over the operator's.
      const frame = await waitForFrame(
        r,
        (f) => /excepted 1/.test(f) && (f.match(/● live/g) ?? []).length === 3,
        30_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(r.lastFrame()).not.toMatch(/drifted/);
      expect(frame).not.toMatch(/drifted/);
    } finally {
      r.unmount();
    }
  });
});
