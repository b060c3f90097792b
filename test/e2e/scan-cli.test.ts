import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OLORIN_PRESET } from '../../src/config/presets/olorin.ts';
import { runCli, startCli } from '../support/cli.ts';
import { loadOlorinDemo, type OlorinFixture } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

let server: TestServer;
let demo: OlorinFixture;
let dir: string;
let configPath: string;

beforeAll(async () => {
  server = await startTestServer();
  demo = await loadOlorinDemo(server);
  dir = await mkdtemp(join(tmpdir(), 'oc-cli-'));
  configPath = join(dir, 'olorin.json');
  await writeFile(
    configPath,
    JSON.stringify({
      ...OLORIN_PRESET,
      sources: {
        olorin: { uriEnv: 'OLORIN_MONGODB_URI', database: demo.olorinDb },
        bayit: { uriEnv: 'BAYIT_MONGODB_URI', database: demo.bayitDb },
      },
    }),
  );
});
afterAll(async () => server?.stop());

const env = () => ({ OLORIN_MONGODB_URI: server.uri, BAYIT_MONGODB_URI: server.uri });

function expectOneLine(stderr: string): void {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\bat .*\(.*:\d+:\d+\)|node:internal/);
}

describe('orphan-cleanup scan', () => {
  it('prints the documented JSON shape and nothing else on stdout', async () => {
    const result = await runCli(['scan', '--config', configPath, '--json', '--read-only'], env());
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(Object.keys(report)).toEqual(['startedAt', 'finishedAt', 'relations']);
    const [embeddings] = report.relations;
    expect(Object.keys(embeddings).slice(0, 16)).toEqual([
      'name',
      'child',
      'parent',
      'scanned',
      'ok',
      'orphans',
      'parentInactive',
      'invalidReference',
      'excepted',
      'inGrace',
      'deletable',
      'safe',
      'unsafeReasons',
      'durationMs',
      'changeSincePrevious',
      'growthPerDay',
    ]);
    expect(embeddings.child).toEqual({
      source: 'olorin',
      database: demo.olorinDb,
      collection: 'content_embeddings',
      field: 'content_id',
    });
    expect(embeddings).toMatchObject({
      scanned: 6620,
      orphans: 300,
      parentInactive: 300,
      invalidReference: 20,
      safe: true,
    });
  });

  it('writes Prometheus metrics atomically and exits 3 above the alert threshold', async () => {
    const lowThreshold = join(dir, 'low.json');
    const base = JSON.parse(await readFile(configPath, 'utf8'));
    await writeFile(lowThreshold, JSON.stringify({ ...base, alertThreshold: 100 }));
    const metrics = join(dir, 'orphans.prom');
    const result = await runCli(['scan', '--config', lowThreshold, '--metrics-file', metrics], env());
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('alert: content_embeddings: 300 orphans > alertThreshold 100');
    // An aligned table: one row per relation, numbers right-aligned under their headers; at 80 columns (not a
    // terminal: 80) in two parts, each repeating the relation (issue 26 item 8).
    const lines = result.stdout.split('\n');
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    const headers = lines.filter((line) => line.startsWith('relation '));
    expect(headers).toHaveLength(2);
    expect(headers.join(' ').replace(/ +/g, ' ')).toBe(
      'relation scanned ok orphans inactive invalid excepted relation deletable in grace p95 ms safe',
    );
    const [first, second] = lines.filter((line) => line.startsWith('content_embeddings '));
    expect(first).toMatch(/^content_embeddings +6,620 +6,000 +300 +300 +20 +0$/);
    expect(first).toHaveLength(headers[0].length);
    expect(second).toMatch(/^content_embeddings +\d+ +\d+ +\d+ +yes$/);
    const text = await readFile(metrics, 'utf8');
    expect(text).toContain('orphan_cleanup_documents{relation="content_embeddings",category="orphans"} 300');
    expect(text).toMatch(/orphan_cleanup_last_success_timestamp_seconds\{relation="recap_sessions"\} \d+/);
  });

  it('doctor fits 80 columns: findings wrap under their text, and a command to copy stays whole', async () => {
    const result = await runCli(['doctor', '--config', configPath], env());
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    // A line over 80 is only ever one word too long to break (a command, a URI): never two words.
    for (const line of lines) if (line.length > 80) expect(line.trim(), line).not.toContain(' ');
    const warning = lines.findIndex((line) =>
      line.startsWith('  WARN  no index on dubbing_sessions.partner_id'),
    );
    expect(warning).toBeGreaterThan(-1);
    // Continued under the finding's text, not under its level.
    expect(lines[warning + 1]).toMatch(/^ {8}\S/);
  });

  it('answers bad flags, unknown relations and missing URIs with one line and exit 2', async () => {
    const badFlag = await runCli(['scan', '--frobnicate']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toBe("orphan-cleanup: unknown option '--frobnicate'\n");
    const unknown = await runCli(['scan', '--config', configPath, '--relation', 'nope'], env());
    expect(unknown.code).toBe(2);
    expectOneLine(unknown.stderr);
    expect(unknown.stderr).toMatch(/--relation nope: unknown relation/);
    const noUri = await runCli(['scan']);
    expect(noUri.code).toBe(2);
    expect(noUri.stderr).toBe(
      'orphan-cleanup: source olorin: no URI (set OLORIN_MONGODB_URI or pass --source olorin=URI)\n',
    );
    const badGrace = await runCli(['scan', '--grace-days', 'soon'], env());
    expect(badGrace.code).toBe(2);
    expectOneLine(badGrace.stderr);
  });

  it('fails an unreachable source with exit 1, one line, and no password', async () => {
    const result = await runCli(
      ['scan', '--source', 'olorin=mongodb://admin:pa55word-xyz@127.0.0.1:1/?serverSelectionTimeoutMS=300'],
      env(),
    );
    expect(result.code).toBe(1);
    expectOneLine(result.stderr);
    expect(result.stderr).toMatch(
      /source olorin \(mongodb:\/\/\*\*\*\*@127\.0\.0\.1:1\/.*\): connection refused/,
    );
    expect(result.stderr + result.stdout).not.toContain('pa55word');
  });
});

describe('latency and credentials', () => {
  it('alerts (exit 3) when parent probes are slow, and fills the latency histogram', async () => {
    await server.client.db('admin').command({
      configureFailPoint: 'failCommand',
      mode: 'alwaysOn',
      data: { failCommands: ['find'], blockConnection: true, blockTimeMS: 600, appName: 'orphan-cleanup' },
    });
    try {
      const metrics = join(dir, 'slow.prom');
      const result = await runCli(
        [
          'scan',
          '--config',
          configPath,
          '--relation',
          'recap_sessions',
          '--read-only',
          '--metrics-file',
          metrics,
        ],
        env(),
      );
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/alert: recap_sessions: parent probe p95 \d+ ms > latencyAlertMs 500/);
      const text = await readFile(metrics, 'utf8');
      expect(text).toMatch(
        /orphan_cleanup_probe_duration_seconds_bucket\{le="0\.5",relation="recap_sessions",source="bayit"\} 0/,
      );
      expect(text).toMatch(
        /orphan_cleanup_probe_duration_seconds_bucket\{le="1",relation="recap_sessions",source="bayit"\} 1/,
      );
    } finally {
      await server.client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' });
    }
  });

  it('never writes a password to the log, whatever fails', async () => {
    const log = join(dir, 'audit.log');
    const secret = 'Sup3r-Secret-pw';
    const failures = [
      ['scan', '--source', `olorin=mongodb://admin:${secret}@127.0.0.1:1/?serverSelectionTimeoutMS=200`],
      ['scan', '--source', `olorin=mongodb://admin:${secret}@`],
      [
        'clean',
        '--execute',
        '--yes',
        '--source',
        `bayit=mongodb://admin:${secret}@127.0.0.1:1/?serverSelectionTimeoutMS=200`,
      ],
      [
        'doctor',
        '--source',
        `olorin=mongodb+srv://admin:${secret}@no-such-cluster.invalid/?serverSelectionTimeoutMS=200`,
      ],
    ];
    for (const args of failures) {
      const result = await runCli(
        [...args, '--config', configPath, '--log-file', log, '--log-level', 'debug'],
        env(),
      );
      expect(result.code).not.toBe(0);
      expect(result.stdout + result.stderr).not.toContain(secret);
    }
    const text = await readFile(log, 'utf8');
    expect(text.trim().split('\n').length).toBeGreaterThanOrEqual(failures.length);
    expect(text).not.toContain(secret);
  });
});

describe('npm run demo -- --no-ui', () => {
  it('keeps the two clusters running, prints how to reach them, and a scan in another shell reads them', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'oc-demo-'));
    const { child, done } = startCli(['demo', '--no-ui', '--fresh', '--data-dir', dataDir]);
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
    });
    try {
      for (let waited = 0; waited < 30_000 && !out.includes('run until Ctrl+C'); waited += 50)
        await new Promise((resolve) => setTimeout(resolve, 50));
      const exported = /export OLORIN_MONGODB_URI='([^']+)' BAYIT_MONGODB_URI='([^']+)'/.exec(out);
      expect(exported).not.toBeNull();
      const scan = await runCli(['scan', '--json'], {
        OLORIN_MONGODB_URI: exported![1],
        BAYIT_MONGODB_URI: exported![2],
      });
      expect([0, 3]).toContain(scan.code);
      expect(JSON.parse(scan.stdout).relations.map((r: { name: string }) => r.name)).toContain(
        'content_embeddings',
      );
      // The export carries the demo's backup folder (issue 26 item 5): a clean in this second shell backs up
      // there, where the console and `restore --find` look.
      const backupDir = /ORPHAN_CLEANUP_BACKUP_DIR=(\S+)/.exec(out)?.[1];
      expect(backupDir).toBe(join(dataDir, 'backups'));
      const env = {
        OLORIN_MONGODB_URI: exported![1],
        BAYIT_MONGODB_URI: exported![2],
        OLORIN_USE_SEPARATE_DATABASE: 'true',
        ORPHAN_CLEANUP_BACKUP_DIR: backupDir!,
      };
      const cleaned = await runCli(['clean', '--execute', '--yes', '--relation', 'content_embeddings'], env);
      expect(cleaned.code).toBe(0);
      expect(cleaned.stdout).toContain(`backup: ${backupDir}/`);
    } finally {
      child.kill('SIGINT');
    }
    expect((await done).code).toBe(0);
  });
});
