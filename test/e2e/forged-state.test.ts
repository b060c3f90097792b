import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../support/cli.ts';
import { snapshot } from '../support/invariants.ts';
import { childrenParentsFile, loadOlorinDemo, writeConfigFile } from '../support/olorin-fixture.ts';
import { startTestServer, type TestServer } from '../support/sandbox.ts';

// Issue 25: hostile input, round three. Item 1: state the tool reads back from the database is input. A scan checkpoint forged in
// orphan_cleanup_runs — exactly what a user with the plain scan role can write — must never lead to a delete.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.stop());

/** `clean --execute --yes` of a config into a new backup root, as cron runs it. */
async function cleanIntoNewBackup(configPath: string, env: NodeJS.ProcessEnv = {}) {
  const backupRoot = await mkdtemp(join(tmpdir(), 'oc-clean-'));
  const cleaned = await runCli(
    ['clean', '--execute', '--yes', '--config', configPath, '--backup-dir', backupRoot],
    env,
  );
  return { backupRoot, cleaned };
}

/** `exceptions add` on relation `rel` of a config. */
function addException(configPath: string, ...args: string[]) {
  return runCli(['exceptions', 'add', '--config', configPath, '--relation', 'rel', ...args]);
}

describe('a forged scan checkpoint', () => {
  it('is refused with one line and the scan starts again: no child with a null, missing or boolean reference, and none in grace, is deleted', async () => {
    const demo = await loadOlorinDemo(server, { name: 'forged' });
    const olorin = server.client.db(demo.olorinDb);
    const embeddings = olorin.collection('content_embeddings');
    // Children a forger wants gone: references that are not references, and orphans still in grace.
    await embeddings.insertMany([
      { _id: new ObjectId(), content_id: null, embedding_type: 'keep' },
      { _id: new ObjectId(), embedding_type: 'keep' },
      { _id: new ObjectId(), content_id: true, embedding_type: 'keep' },
    ] as never);
    const targets = await embeddings.find({ embedding_type: 'keep' }).toArray();
    const before = await snapshot(embeddings);
    // The forged run record: a finished-looking checkpoint whose candidates are those children, seen in 1970.
    const total = await embeddings.countDocuments();
    await olorin.collection('orphan_cleanup_runs').insertOne({
      runId: '20260101T000000Z-forged',
      kind: 'scan',
      relation: 'content_embeddings',
      startedAt: new Date(),
      finishedAt: new Date(),
      durationMs: 1,
      operator: 'mallory',
      host: 'x',
      outcome: 'aborted',
      complete: false,
      counts: { scanned: total },
      scanTime: new Date(),
      checkpoint: {
        partitions: [{ done: true }],
        counts: { ok: 0, orphans: total, parentInactive: 0, invalidReference: 0, excepted: 0 },
        scanned: total,
        inGrace: 0,
        deletable: total,
        samples: { ok: [], orphans: [], parentInactive: [], invalidReference: [], excepted: [] },
        candidates: targets.map((doc) => ({
          id: doc._id,
          ...(doc.content_id !== undefined ? { reference: doc.content_id } : {}),
          category: 'orphans',
          since: new Date(0),
        })),
        candidateLimit: 100,
        storage: { bytes: 0, measured: 0, unmeasured: 0 },
        roundTrips: { childBatches: 0, parentProbes: 0, sizeQueries: 0 },
        durationMs: 1,
      },
    } as never);
    const backupRoot = await mkdtemp(join(tmpdir(), 'oc-forged-'));
    const result = await runCli(
      [
        'clean',
        '--execute',
        '--yes',
        '--resume',
        '--max-deletes',
        '100',
        '--config',
        demo.configPath,
        '--relation',
        'content_embeddings',
        '--grace-days',
        '30',
        '--backup-dir',
        backupRoot,
      ],
      { OLORIN_MONGODB_URI: server.uri, BAYIT_MONGODB_URI: server.uri },
    );
    expect(result.stderr).toMatch(
      /content_embeddings: the checkpoint of unfinished scan 20260101T000000Z-forged is not resumed: malformed \(.*\); scanning from the start/,
    );
    // A fresh scan: every orphan is first seen now, so all are in their 30 days of grace; nothing is deleted.
    expect(result.code).toBe(0);
    const after = await snapshot(embeddings);
    expect(after.size).toBe(before.size);
    expect(await embeddings.countDocuments({ embedding_type: 'keep' })).toBe(3);
  });
});

describe('a password on the command line', () => {
  it('is gone from /proc/PID/cmdline while serve runs, and doctor warns about it', async () => {
    const withPassword = `${server.uri.replace('mongodb://', 'mongodb://alice:s3cr3t-pw@')}`;
    const run = startCli(['serve', '--no-auth', '--port', '0', '--source', `olorin=${withPassword}`], {
      ORPHAN_CLEANUP_API_TOKEN: 'x',
      BAYIT_MONGODB_URI: server.uri,
    });
    try {
      const deadline = Date.now() + 20_000;
      let cmdline = '';
      while (Date.now() < deadline) {
        cmdline = await readFile(`/proc/${run.child.pid}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes('****')) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(cmdline).toContain('olorin=mongodb://****@');
      expect(cmdline).not.toContain('s3cr3t-pw');
    } finally {
      run.child.kill('SIGTERM');
      await run.done;
    }
    const doctor = await runCli(['doctor', '--source', `olorin=${withPassword}`], {
      BAYIT_MONGODB_URI: server.uri,
    });
    expect(doctor.stderr).toMatch(/warning: a URI with a password was given on the command line/);
    expect(doctor.stdout + doctor.stderr).not.toContain('s3cr3t-pw');
  });
});

describe('restore tells the truth', () => {
  it('counts only a duplicate _id as already present: a conflict on another unique index names the document and the index, exit 1, and verify agrees it is absent', async () => {
    const childDb = server.dbName('truth_child');
    const parentDb = server.dbName('truth_parent');
    const children = server.client
      .db(childDb)
      .collection<{ _id: number; ref: string; slot: number }>('children');
    await children.createIndex({ slot: 1 }, { unique: true });
    await children.insertMany(Array.from({ length: 6 }, (_, i) => ({ _id: i, ref: `p${i}`, slot: i })));
    await server.client
      .db(parentDb)
      .collection<{ _id: string }>('parents')
      .insertMany([{ _id: 'p0' }, { _id: 'p1' }, { _id: 'p2' }]);
    const configPath = await writeConfigFile(childrenParentsFile(server.uri, childDb, parentDb));
    const { backupRoot, cleaned } = await cleanIntoNewBackup(configPath);
    expect(cleaned.code).toBe(0);
    expect(await children.countDocuments()).toBe(3);
    // Another writer takes slot 4 meanwhile: the backed-up child 4 cannot come back as it was.
    await children.insertOne({ _id: 100, ref: 'p0', slot: 4 });
    const [runName] = (await readdir(backupRoot)).filter((name) => !name.endsWith('.jsonl'));
    const runDir = join(backupRoot, runName);
    const restored = await runCli(['restore', runDir, '--config', configPath]);
    expect(restored.code).toBe(1);
    expect(restored.stderr.trim()).toMatch(
      /^orphan-cleanup: restore of rel into .*\.children: document _id 4 was not restored: E11000 duplicate key error .*slot_1.*; \d documents restored so far/,
    );
    expect(restored.stderr).not.toMatch(/already present/);
    const verified = await runCli(['verify', runDir, '--config', configPath, '--json']);
    expect(JSON.parse(verified.stdout).relations[0]).toMatchObject({ backedUp: 3, absent: 1 });
  });
});

describe('exceptions bind to what exists', () => {
  it('stores the form the child has: a 24-hex typed for a string _id excepts that child, which the cleanup keeps', async () => {
    const childDb = server.dbName('bind_child');
    const parentDb = server.dbName('bind_parent');
    const hex = '5f5f5f5f5f5f5f5f5f5f5f5f';
    const children = server.client.db(childDb).collection<{ _id: unknown; ref: string }>('children');
    await children.insertMany([
      { _id: hex, ref: 'gone' },
      { _id: 1, ref: 'gone' },
    ]);
    await server.client.db(parentDb).collection<{ _id: string }>('parents').insertOne({ _id: 'here' });
    const configPath = await writeConfigFile(childrenParentsFile(server.uri, childDb, parentDb));
    const added = await addException(configPath, '--doc', hex, '--reason', 'legal hold');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(
      /added document exception "5f5f5f5f5f5f5f5f5f5f5f5f" to rel \(the child's _id is the string/,
    );
    const missing = await addException(configPath, '--doc', '6f6f6f6f6f6f6f6f6f6f6f6f', '--reason', 'typo');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /no child of rel has _id ObjectId\(6f6f.*\) or "6f6f.*"; nothing was added/,
    );
    // A reason with a window-title sequence and a right-to-left override: listed escaped, never raw.
    const hostile = await addException(
      configPath,
      '--doc',
      '1',
      '--reason',
      'x\u001b]0;owned\u0007\u202eevil',
      '--expires',
      '1m',
    );
    expect(hostile.code).toBe(0);
    const listed = await runCli(['exceptions', 'list', '--config', configPath]);
    expect(listed.stdout).toContain('x\\u001b]0;owned\\u0007\\u202eevil');
    expect(listed.stdout).not.toMatch(/[\u001b\u0007\u202e]/);
    await runCli(['exceptions', 'remove', '--config', configPath, '--relation', 'rel', '--doc', '1']);
    const { cleaned } = await cleanIntoNewBackup(configPath);
    expect(cleaned.code).toBe(0);
    // The excepted child stays; the other orphan goes.
    expect(await children.find().toArray()).toEqual([{ _id: hex, ref: 'gone' }]);
  });
});

describe('special files', () => {
  it('a FIFO, a device or a directory where a file is read is one line naming it, exit 2, never a hang', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-special-'));
    const fifo = join(dir, 'config.json');
    execFileSync('mkfifo', [fifo]);
    const env = { OLORIN_MONGODB_URI: server.uri, BAYIT_MONGODB_URI: server.uri };
    const started = Date.now();
    const config = await runCli(['scan', '--config', fifo], env);
    expect(config.code).toBe(2);
    expect(config.stderr).toBe(
      `orphan-cleanup: --config ${fifo}: is a FIFO (named pipe), not a regular file\n`,
    );
    const configPath = await writeConfigFile({
      sources: { olorin: { uri: server.uri, database: 'x' }, bayit: { uri: server.uri, database: 'y' } },
      relations: [
        {
          name: 'r',
          child: { source: 'olorin', collection: 'c', field: 'f' },
          parent: { source: 'bayit', collection: 'p' },
        },
      ],
    } as never);
    const device = await runCli(['exceptions', 'import', '/dev/zero', '--config', configPath], env);
    expect(device.code).toBe(2);
    expect(device.stderr).toBe(
      'orphan-cleanup: exceptions import /dev/zero: is a device, not a regular file\n',
    );
    const run = join(dir, 'run');
    await mkdir(run);
    execFileSync('mkfifo', [join(run, 'manifest.json')]);
    const manifest = await runCli(['verify', run, '--config', configPath], env);
    expect(manifest.code).toBe(2);
    expect(manifest.stderr).toMatch(
      /backup manifest .*manifest\.json: is a FIFO \(named pipe\), not a regular file/,
    );
    const findOnFile = await runCli(
      ['restore', '--find', 'x', '--backup-dir', join(run, 'manifest.json')],
      env,
    );
    expect(findOnFile.code).toBe(2);
    expect(findOnFile.stderr).toMatch(
      /--backup-dir .*manifest\.json: is a file, not a directory|not a directory/,
    );
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe('config keys and names that cannot be kept as written', () => {
  it('refuses a __proto__ key inside activeFilter and a collection or field name with a control character', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-keys-'));
    const write = async (name: string, text: string) => {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    };
    const base = (parent: string) =>
      `{"sources": {"c": {"uri": "${server.uri}", "database": "c"}, "p": {"uri": "${server.uri}", "database": "p"}}, "relations": [{"name": "r", "child": {"source": "c", "collection": "kids", "field": "ref"}, "parent": ${parent}}]}`;
    const proto = await write(
      'proto.json',
      base(
        '{"source": "p", "collection": "parents", "activeFilter": {"status": "live", "__proto__": {"deleted": true}}}',
      ),
    );
    const result = await runCli(['scan', '--config', proto]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/relations\.0\.parent\.activeFilter: the key __proto__ is refused/);
    const control = await write('control.json', base('{"source": "p", "collection": "par\\u001b[2Jents"}'));
    const named = await runCli(['scan', '--config', control]);
    expect(named.code).toBe(2);
    expect(named.stderr).toMatch(/relations\.0\.parent\.collection: has a control character/);
    expect(named.stderr).not.toContain('\u001b');
  });
});

describe('a dry run a scheduler reads', () => {
  it('exits 4 when an execution would be refused, saying why, and 0 when it would run', async () => {
    const childDb = server.dbName('dry_child');
    const parentDb = server.dbName('dry_parent');
    await server.client
      .db(childDb)
      .collection('children')
      .insertMany([{ ref: 'gone' }, { ref: 'also-gone' }] as never);
    // The parent collection is empty: the relation is unsafe.
    const configPath = await writeConfigFile(childrenParentsFile(server.uri, childDb, parentDb));
    const refused = await runCli(['clean', '--config', configPath]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(
      /^dry run: an execution would be refused: rel is unsafe: .*parent collection .*parents is empty/m,
    );
    await server.client
      .db(parentDb)
      .collection('parents')
      .insertOne({ _id: 'here' } as never);
    const allowed = await runCli(['clean', '--config', configPath]);
    expect(allowed.code).toBe(0);
  });
});

describe('watch with nothing it can follow', () => {
  it('exits 1 once every watcher has stopped, each having said why', async () => {
    // The demo's collections keep no pre-images: no relation can be live, whatever the topology.
    const demo = await loadOlorinDemo(server, { name: 'nowatch' });
    const watched = await runCli(['watch', '--config', demo.configPath], {
      OLORIN_MONGODB_URI: server.uri,
      BAYIT_MONGODB_URI: server.uri,
    });
    expect(watched.code).toBe(1);
    const lines = watched.stderr.trim().split('\n');
    expect(lines.at(-1)).toBe(
      'orphan-cleanup: watch: no relation can be followed any more (each said why above); the scan figures stand',
    );
    expect(lines.length).toBeGreaterThanOrEqual(4);
  });
});

describe('tampered first-seen documents', () => {
  it('are said in one line, count as first seen now (in grace), and are written again', async () => {
    const demo = await loadOlorinDemo(server, { name: 'tampered' });
    const env = { OLORIN_MONGODB_URI: server.uri, BAYIT_MONGODB_URI: server.uri };
    const scan = () => runCli(['scan', '--config', demo.configPath, '--relation', 'content_embeddings'], env);
    expect((await scan()).code).toBe(0);
    const firstSeen = server.client.db(demo.olorinDb).collection('orphan_cleanup_first_seen');
    const victim = await firstSeen.findOne({ relation: 'content_embeddings' });
    await firstSeen.updateOne({ _id: victim!._id }, { $set: { firstSeenAt: '1970-01-01' } });
    const again = await scan();
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(
      /content_embeddings: 1 first-seen document\(s\) in orphan_cleanup_first_seen fail their checks \(a key, a valid date, the _id the tool writes for that key\); their references count as first seen now \(in grace\) and are written again/,
    );
    expect((await firstSeen.findOne({ _id: victim!._id }))!.firstSeenAt).toBeInstanceOf(Date);
  });
});

describe('a forged lock document', () => {
  it('is described in one line, its text escaped and its bad times said, never a crash', async () => {
    const demo = await loadOlorinDemo(server, { name: 'forgedlock', graceDays: 0 });
    await server.client
      .db(demo.olorinDb)
      .collection('orphan_cleanup_locks')
      .insertOne({
        _id: 'content_embeddings',
        operator: '\u001b]0;pwned\u0007mallory',
        host: 'box\u202e1',
        pid: 'x',
        runId: 'r1',
        acquiredAt: '2026-01-01',
        expiresAt: 'never',
        fence: 1,
      } as never);
    const { backupRoot, cleaned } = await cleanIntoNewBackup(demo.configPath, {
      OLORIN_MONGODB_URI: server.uri,
      BAYIT_MONGODB_URI: server.uri,
    });
    expect(cleaned.code).toBe(1);
    const last = cleaned.stderr.trim().split('\n').at(-1)!;
    expect(last).toMatch(
      /relation content_embeddings is locked by \\u001b\]0;pwned\\u0007mallory on box\\u202e1 \(pid \(unreadable\), run r1\) since \(not a date\); its lock document fails its checks \(no valid lease end\): it never expires by itself/,
    );
    expect(cleaned.stderr).not.toMatch(/[\u001b\u0007\u202e]|TypeError|at .*\.ts:\d+/);
    expect((await readdir(backupRoot)).filter((name) => !name.endsWith('.jsonl'))).toHaveLength(0);
  });
});

describe('what restore --find prints', () => {
  it('runs as printed (quoted like clean), carries no terminal control, and a forged manifest status is refused', async () => {
    const childDb = server.dbName('findchild');
    const parentDb = server.dbName('findparent');
    const hostileRef = "it's\u001b[2J gone";
    const children = server.client.db(childDb).collection<{ _id: number; ref: string }>('children');
    await children.insertMany([
      { _id: 1, ref: hostileRef },
      { _id: 2, ref: hostileRef },
    ]);
    await server.client.db(parentDb).collection<{ _id: string }>('parents').insertOne({ _id: 'here' });
    const configPath = await writeConfigFile(childrenParentsFile(server.uri, childDb, parentDb));
    const root = await mkdtemp(join(tmpdir(), "oc find 'root' "));
    const cleaned = await runCli([
      'clean',
      '--execute',
      '--yes',
      '--config',
      configPath,
      '--backup-dir',
      root,
    ]);
    expect(cleaned.code).toBe(0);
    expect(await children.countDocuments()).toBe(0);
    const found = await runCli(['restore', '--find', hostileRef, '--backup-dir', root]);
    expect(found.code).toBe(0);
    expect(found.stdout).not.toMatch(/[\u001b\u0007\u202e]/);
    const command = /(\S*orphan-cleanup restore .*)$/m.exec(found.stdout)![1].trim();
    // Run verbatim by a shell, as the operator would paste it.
    execFileSync('bash', ['-c', `${command} --config '${configPath}'`]);
    expect(await children.countDocuments()).toBe(2);
    // The manifest is input: a status the tool never writes is refused with one line, escaped.
    const run = join(root, (await readdir(root)).find((name) => !name.endsWith('.jsonl'))!);
    const manifestPath = join(run, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    await writeFile(manifestPath, JSON.stringify({ ...manifest, status: '\u001b]0;done\u0007' }));
    const verified = await runCli(['verify', run, '--config', configPath]);
    expect(verified.code).toBe(1);
    expect(verified.stderr).toMatch(
      /manifest\.json: status ".*\\u001b\]0;done\\u0007" is not one of running, completed, aborted, failed; nothing was read/,
    );
    expect(verified.stderr).not.toMatch(/[\u001b\u0007]/);
  });
});

describe('exceptions import', () => {
  it('refuses unknown fields and impossible dates, and binds each value to the form a child has', async () => {
    const childDb = server.dbName('importchild');
    const parentDb = server.dbName('importparent');
    const id = new ObjectId();
    await server.client
      .db(childDb)
      .collection<{ _id: ObjectId; ref: string }>('children')
      .insertOne({ _id: id, ref: 'gone' });
    await server.client.db(parentDb).collection<{ _id: string }>('parents').insertOne({ _id: 'here' });
    const configPath = await writeConfigFile(childrenParentsFile(server.uri, childDb, parentDb));
    const dir = await mkdtemp(join(tmpdir(), 'oc-import-'));
    const importing = async (entries: unknown[]) => {
      const file = join(dir, `e${Math.random()}.json`);
      await writeFile(file, JSON.stringify(entries));
      return runCli(['exceptions', 'import', file, '--config', configPath]);
    };
    const entry = { relation: 'rel', kind: 'document', value: id.toHexString(), reason: 'hold' };
    // `expires` is not `expiresAt`: it must not become "never expires".
    const typo = await importing([{ ...entry, expires: '2027-01-01' }]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/entry 1: unknown field "expires" \(known: .*expiresAt\)/);
    const impossible = await importing([{ ...entry, expiresAt: '2027-02-30' }]);
    expect(impossible.code).toBe(2);
    expect(impossible.stderr).toMatch(/entry 1, expiresAt: expected an ISO date .*"2027-02-30"/);
    const flag = await addException(
      configPath,
      '--doc',
      id.toHexString(),
      '--reason',
      'x',
      '--expires',
      '2027-02-30',
    );
    expect(flag.code).toBe(2);
    const absent = await importing([entry, { ...entry, value: new ObjectId().toHexString() }]);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toMatch(/entry 2: no child of rel has _id .*; nothing was imported/);
    const listed = async () =>
      (await runCli(['exceptions', 'list', '--json', '--config', configPath])).stdout;
    expect(JSON.parse(await listed())).toEqual([]);
    // The hex string typed binds to the child's ObjectId.
    const good = await importing([{ ...entry, expiresAt: '2027-02-28' }]);
    expect(good.code).toBe(0);
    expect(JSON.parse(await listed())).toMatchObject([
      { kind: 'document', value: { $oid: id.toHexString() } },
    ]);
  });
});
