import { render } from 'ink-testing-library';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedConfig } from '../../src/config/load.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { App } from '../../src/ui/app.tsx';
import { createConsoleServices } from '../../src/ui/services.ts';
import { KEY, press, waitForFrame, waitForText } from '../support/ink.ts';
import { configFor, embeddingsConfigFile } from '../support/olorin-fixture.ts';
import { holdNextBatches, startTestServer, type TestServer } from '../support/sandbox.ts';

/** Every orphan reachable from the console, not only the 50 samples: 10,000 of them, paged. */
let server: TestServer;
let parentNamespace: string;
let config: ResolvedConfig;
let pool: SourcePool;
const ORPHANS = 10_000;

beforeAll(async () => {
  process.env.NO_COLOR = '1';
  server = await startTestServer();
  const childDb = server.dbName('pagingchild');
  const parentDb = server.dbName('pagingparent');
  parentNamespace = `${parentDb}.content`;
  const live = new ObjectId();
  await server.client.db(parentDb).collection('content').insertOne({ _id: live });
  const children = server.client.db(childDb).collection('embeddings');
  await children.createIndex({ content_id: 1 });
  await children.insertMany([
    ...Array.from({ length: ORPHANS }, (_, n) => ({ content_id: new ObjectId(), n })),
    ...Array.from({ length: 100 }, () => ({ content_id: live })),
  ]);
  config = await configFor(embeddingsConfigFile(server.uri, childDb, parentDb));
  pool = new SourcePool(config.sources);
});
afterAll(async () => {
  await pool?.close();
  await server?.stop();
});

function renderConsole() {
  const services = createConsoleServices(
    config,
    pool,
    { readOnly: false },
    { operator: 'ops', backupRoot: '/tmp', batchSize: 100 },
  );
  return render(<App services={services} />);
}

describe('an unfinished scan', () => {
  it('is offered at start instead of being overtaken, and u resumes it to the full counts', async () => {
    const controller = new AbortController();
    // The child collection's next batch is held 500 ms, so the scan reports progress past its first 5,000
    // children before it can finish (a fast machine otherwise finished 10,100 children before any report).
    const release = await holdNextBatches(server.client, { times: 1, ms: 500 });
    const [stopped] = await runScan({
      config,
      pool,
      access: { readOnly: false },
      signal: controller.signal,
      onProgress: (p) => {
        if (p.scanned >= 5000) controller.abort();
      },
    })
      .then((report) => report.relations)
      .finally(release);
    expect(stopped.complete).toBe(false);
    const r = renderConsole();
    try {
      await waitForText(r, /unfinished scan of embeddings \([\d,]+ documents, checkpoint/);
      await press(r, 'u');
      const runs = (await pool.db('child')).collection('orphan_cleanup_runs');
      // The resumed scan finishes the same run: one record, complete, with every child counted once.
      for (let waited = 0; waited < 60_000; waited += 50) {
        if ((await runs.findOne({ runId: stopped.runId }))?.complete) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await runs.find({ runId: stopped.runId }).toArray()).toMatchObject([
        { outcome: 'succeeded', complete: true, counts: { scanned: ORPHANS + 100, orphans: ORPHANS } },
      ]);
      await waitForText(r, /orphans 10,000/);
    } finally {
      r.unmount();
    }
  });
});

describe('the review of every orphan', () => {
  it('pages through all 10,000 orphans with a, PgDn and G, and opens the last one', async () => {
    const r = renderConsole();
    try {
      await waitForText(r, /orphans 10,000/, 60_000);
      await press(r, KEY.enter);
      await waitForText(r, '1/50 samples');
      expect(r.lastFrame()).toContain('a: every child');
      await press(r, 'a');
      let frame = await waitForText(r, /1\/500\+ of 10,000 children/);
      await press(r, KEY.pageDown, KEY.pageDown);
      frame = await waitForText(r, /^\S.*\/\d[\d,]*\+? of 10,000 children/m);
      expect(frame).not.toMatch(/ 1\/500\+ of/);
      // G jumps to the last row loaded; more load as the selection nears the end, until all are there.
      frame = r.lastFrame() ?? '';
      const position = /([\d,]+)\/([\d,]+)(\+?) of 10,000 children/;
      for (let i = 0; i < 60 && !/10,000\/10,000 of 10,000/.test(frame); i++) {
        const before = position.exec(frame)?.[2];
        await press(r, 'G');
        // At the last row loaded, the next step loads: wait for more rows (or the end) before the next G.
        frame = await waitForFrame(r, (f) => {
          const [, at, loaded, more] = position.exec(f) ?? [];
          return loaded !== before || (more === '' && at === loaded);
        });
      }
      expect(frame).toMatch(/10,000\/10,000 of 10,000 children/);
      await press(r, KEY.enter);
      frame = await waitForText(r, 'n: 9999');
      expect(frame).toMatch(/content_id: ObjectId\('[0-9a-f]{24}'\)/);
      // Back, and `a` again returns to the samples.
      await press(r, KEY.escape, 'a');
      await waitForText(r, 'samples (up to 50 per category are kept');
    } finally {
      r.unmount();
    }
  });
});

describe('a cleanup after a failed rescan', () => {
  it('is refused: the last known figures stay on screen, but only a current scan leads to a delete', async () => {
    const r = renderConsole();
    const admin = server.client.db('admin');
    try {
      await waitForText(r, /deletable \d+ +in grace/, 60_000);
      // Every parent probe of the next scan fails.
      await admin.command({
        configureFailPoint: 'failCommand',
        mode: 'alwaysOn',
        data: { failCommands: ['find'], errorCode: 91, namespace: parentNamespace },
      });
      await press(r, 'r');
      let frame = await waitForText(r, /the last scan failed, these are the last known figures/, 60_000);
      expect(frame).toMatch(/orphans 10,000/);
      await press(r, 'c');
      frame = await waitForText(
        r,
        'the last scan of embeddings failed: its figures are the last known, not current',
      );
      expect(frame).not.toContain('Plan for embeddings');
    } finally {
      await admin.command({ configureFailPoint: 'failCommand', mode: 'off' });
      r.unmount();
    }
  });
});
