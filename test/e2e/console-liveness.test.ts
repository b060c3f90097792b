import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOlorinDemo, type OlorinFixture } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 24, item 8: a console that never claims to be live when it is not. Two replica-set sandboxes with
// pre-images (live counts), the console at 80×24 in a real pseudo-terminal, the child cluster frozen (SIGSTOP).
const LAUNCHER = fileURLToPath(new URL('../../bin/orphan-cleanup', import.meta.url));
let olorin: TestServer;
let bayit: TestServer;
let demo: OlorinFixture;

beforeAll(async () => {
  [olorin, bayit] = await Promise.all([
    startTestServer({ replicaSet: 'rs0', sandboxOnly: true }),
    startTestServer({ replicaSet: 'rs1', sandboxOnly: true }),
  ]);
  demo = await loadOlorinDemo(olorin, { parentServer: bayit });
  for (const [server, db] of [
    [olorin, demo.olorinDb],
    [bayit, demo.bayitDb],
  ] as const)
    for (const { name } of await server.client.db(db).listCollections().toArray())
      await server.client.db(db).command({ collMod: name, changeStreamPreAndPostImages: { enabled: true } });
});
afterAll(async () => {
  olorin?.resume();
  await olorin?.stop();
  await bayit?.stop();
});

/** The console in a pseudo-terminal of 80×24 (util-linux `script`); `screen()` is what it printed, unstyled. */
function console80x24() {
  const command = [process.execPath, LAUNCHER, '--config', demo.configPath, '--read-only']
    .map((part) => `'${part.replace(/'/g, "'\\''")}'`)
    .join(' ');
  const { CI: _ci, ...env } = process.env;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: {
      ...env,
      OLORIN_MONGODB_URI: olorin.uri,
      BAYIT_MONGODB_URI: bayit.uri,
      COLUMNS: '80',
      LINES: '24',
      TERM: 'xterm-256color',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk.toString();
  });
  const plain = (from: number) => output.slice(from).replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
  const waitFor = async (pattern: RegExp, timeoutMs: number, from = 0) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(plain(from))) {
      if (Date.now() > deadline)
        throw new Error(`never saw ${pattern} in time; screen:\n${plain(from).slice(-4000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  return {
    waitFor,
    mark: () => output.length,
    quit: () => child.stdin.write('q'),
    kill: () => child.exitCode === null && child.kill('SIGKILL'),
  };
}

describe('the console when a cluster goes silent', () => {
  it('shows ✗ and stops claiming live within 5 s, and is live again within 10 s of the cluster answering, with what changed meanwhile', async () => {
    const screen = console80x24();
    try {
      await screen.waitFor(/● live/, 60_000);
      // A live content with children (ObjectId references), deleted during the outage from the side that answers.
      const liveIds = (
        await bayit.client
          .db(demo.bayitDb)
          .collection('content')
          .find({ deleted_at: null }, { projection: { _id: 1 } })
          .toArray()
      ).map((doc) => doc._id);
      const [{ _id: doomed }] = await olorin.client
        .db(demo.olorinDb)
        .collection('content_embeddings')
        .aggregate<{ _id: ObjectId; n: number }>([
          { $match: { content_id: { $in: liveIds } } },
          { $group: { _id: '$content_id', n: { $sum: 1 } } },
          { $sort: { n: -1 } },
          { $limit: 1 },
        ])
        .toArray();
      // Its children in every form the relation matches (ObjectId and hex string).
      const n = await olorin.client
        .db(demo.olorinDb)
        .collection('content_embeddings')
        .countDocuments({
          content_id: { $in: [doomed, doomed.toHexString(), doomed.toHexString().toUpperCase()] },
        });

      const frozen = screen.mark();
      const frozenAt = Date.now();
      olorin.pause();
      try {
        await screen.waitFor(/✗ olorin no answer \d+ s/, 5000, frozen);
        await screen.waitFor(
          /live counts stale since \d\d:\d\d:\d\d UTC: olorin not answering/,
          5000,
          frozen,
        );
        expect(Date.now() - frozenAt).toBeLessThan(6000);
        await bayit.client.db(demo.bayitDb).collection('content').deleteOne({ _id: doomed });
        await new Promise((resolve) => setTimeout(resolve, 3000));
      } finally {
        olorin.resume();
      }
      const resumed = screen.mark();
      await screen.waitFor(/✓ olorin[\s\S]*● live/, 10_000, resumed);
      // The delete made during the outage is counted: 300 orphans in the demo, plus that content's children.
      await screen.waitFor(new RegExp(`orphans ${(300 + n).toLocaleString('en-US')}`), 10_000, resumed);
      screen.quit();
    } finally {
      olorin.resume();
      screen.kill();
    }
  });
});
