import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 23: a client we did not write (mongosh, the MongoDB shell) run against the sandbox, as an operator runs it.
// Each script prints one JSON line; against a real mongod (ORPHAN_CLEANUP_TEST_URI) the same scripts run, and the
// sandbox-only answers are marked.
const MONGOSH = fileURLToPath(new URL('../../node_modules/.bin/mongosh', import.meta.url));
const SCRIPTS = fileURLToPath(new URL('../mongosh/', import.meta.url));
const run = promisify(execFile);

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ replicaSet: 'rs0' });
});
afterAll(async () => server?.stop());

async function mongosh(script: string): Promise<Record<string, unknown>> {
  const { stdout } = await run(MONGOSH, [server.uri, '--quiet', '--norc', '--file', `${SCRIPTS}${script}`], {
    env: { ...process.env, DB_NAME: server.dbName(script.replace('.js', '')), MONGOSH_NO_TELEMETRY: '1' },
    timeout: 60_000,
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('mongosh against the server', () => {
  it('two sessions: snapshot reads, first writer wins, and an abort never erases the other commit', async () => {
    const out = await mongosh('isolation.js');
    expect(out.aSawFirst).toBe(100);
    expect(out.aSawAfterOutsideWrite).toBe(100);
    expect(out.conflict).toEqual({ code: 112, labels: ['TransientTransactionError'] });
    expect(out.final).toEqual({ _id: 1, balance: 105, by: 'a' });
  });

  it('Timestamps compare and sort by seconds, then increment', async () => {
    expect(await mongosh('timestamps.js')).toEqual({ after: ['b', 'c'], sorted: ['c', 'b', 'a'] });
  });

  it('every command takes $readPreference and stores none of it', async () => {
    const out = await mongosh('read-preference.js');
    const { options, ...commands } = out;
    expect(
      Object.values(commands).every((ok) => ok === 1),
      JSON.stringify(commands),
    ).toBe(true);
    expect(Object.keys(commands)).toHaveLength(14);
    expect(options).toEqual({ changeStreamPreAndPostImages: { enabled: true } });
  });

  it('int64, whole doubles, int32, Decimal128, Timestamp, BinData subtypes, dates and key order round-trip', async () => {
    const out = await mongosh('types.js');
    expect(out.same).toBe(true);
    expect(out.keys).toEqual([
      '_id',
      'z',
      'dec',
      'ts',
      'uuid',
      'md5',
      'raw',
      'when',
      'nested',
      'frac',
      'long',
      'whole',
      'int',
    ]);
    expect(out).toMatchObject({
      decimal: 1,
      timestamp: 1,
      uuidSubtype: 4,
      long: 1,
      whole: 1,
      int: 1,
      notLong: 0,
    });
  });
});
