import { chmod, mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_FILE } from '../../src/cleanup/backup.ts';
import { OWNED_COLLECTIONS } from '../../src/store/access.ts';
import { runCli } from '../support/cli.ts';
import { withOlorinDemo } from '../support/olorin-fixture.ts';
import { AWKWARD_PASSWORDS, recognisableParts } from '../support/passwords.ts';

// Bad input as an attacker or a clumsy operator gives it, through the real binary: one line naming the
// culprit, the right exit code, nothing leaked, nothing written.
const ctx = withOlorinDemo();
let backupRoot: string;
beforeAll(async () => {
  backupRoot = await mkdtemp(join(tmpdir(), 'oc-hostile-'));
});
const env = () => ({ OLORIN_MONGODB_URI: ctx.server.uri, BAYIT_MONGODB_URI: ctx.server.uri });
const base = () => ['--config', ctx.demo.configPath];

function firstLine(text: string): string {
  return text.trim().split('\n')[0];
}

/** A URI to the suite's server with credentials; the sandbox has no authentication, so every use fails. */
function uriWithPassword(password: string): string {
  return ctx.server.uri.replace('mongodb://', `mongodb://alice:${password}@`);
}

describe('credentials with unusual characters', () => {
  it('never reach stderr or the log file, whatever the password holds', async () => {
    const logDir = await mkdtemp(join(tmpdir(), 'oc-leak-'));
    const results = await Promise.all(
      AWKWARD_PASSWORDS.map(async (password, i) => {
        const logFile = join(logDir, `${i}.log`);
        const result = await runCli(
          ['scan', ...base(), '--source', `olorin=${uriWithPassword(password)}`, '--log-file', logFile],
          env(),
        );
        const log = await readFile(logFile, 'utf8').catch(() => '');
        return { password, result, log };
      }),
    );
    for (const { password, result, log } of results) {
      expect([1, 2]).toContain(result.code);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      for (const part of recognisableParts(password)) {
        expect(result.stderr, password).not.toContain(part);
        expect(log, password).not.toContain(part);
      }
      expect(result.stderr).toContain('olorin');
    }
  });
});

describe('paths that cannot be written', () => {
  it('are one line naming the path and the reason, exit 2, without hanging', async () => {
    const aFile = join(backupRoot, 'a-file');
    await writeFile(aFile, 'x');
    const cases: [string[], string][] = [
      [
        ['clean', '--execute', '--yes', '--backup-dir', '/proc/oc-backups'],
        '--backup-dir /proc/oc-backups: is on a kernel pseudo file system (/proc, /sys, /dev), not storage',
      ],
      [
        ['clean', '--execute', '--yes', '--backup-dir', aFile],
        `--backup-dir ${aFile}: ${aFile} is a file, not a directory`,
      ],
      [
        ['clean', '--execute', '--yes', '--backup-dir', join(aFile, 'sub')],
        `--backup-dir ${join(aFile, 'sub')}: ${aFile} is a file, not a directory`,
      ],
      [
        ['scan', '--log-file', '/proc/oc.log'],
        '--log-file /proc/oc.log: is on a kernel pseudo file system (/proc, /sys, /dev), not storage',
      ],
      [['scan', '--log-file', backupRoot], `--log-file ${backupRoot}: it is a directory, not a file`],
      [
        ['scan', '--metrics-file', join(aFile, 'm.prom')],
        `--metrics-file ${join(aFile, 'm.prom')}: ${aFile} is a file, not a directory`,
      ],
      [
        ['scan', '--metrics-file', '/sys/oc.prom'],
        '--metrics-file /sys/oc.prom: is on a kernel pseudo file system (/proc, /sys, /dev), not storage',
      ],
    ];
    const started = performance.now();
    const results = await Promise.all(cases.map(([args]) => runCli([...args, ...base()], env())));
    const seconds = (performance.now() - started) / 1000;
    results.forEach((result, i) => {
      expect(result.code, cases[i][1]).toBe(2);
      expect(result.stderr).toBe(`orphan-cleanup: ${cases[i][1]}\n`);
    });
    // Seven processes on two cores, each failing before it touches a database.
    expect(seconds).toBeLessThan(30);
    expect(await readdir(backupRoot)).toEqual(['a-file']);
  });
});

describe('numbers and switches', () => {
  it('refuses durations a timer cannot hold and a safety switch it cannot read', async () => {
    const [sleep, lag, separation] = await Promise.all([
      runCli(['clean', ...base(), '--sleep-ms', '99999999999'], env()),
      runCli(['clean', ...base(), '--max-lag-seconds', '9999999'], env()),
      runCli(['clean', ...base(), '--execute', '--yes', '--backup-dir', backupRoot], {
        ...env(),
        OLORIN_USE_SEPARATE_DATABASE: 'maybe',
      }),
    ]);
    expect([sleep.code, lag.code, separation.code]).toEqual([2, 2, 2]);
    expect(sleep.stderr).toContain('must be a whole number of milliseconds from 0 to 2147483647');
    expect(lag.stderr).toContain('must be a number of seconds from 0 to 2147483');
    expect(separation.stderr).toBe(
      'orphan-cleanup: OLORIN_USE_SEPARATE_DATABASE="maybe": expected true or false (1/0 and yes/no work too)\n',
    );
  });

  it('names the source of a malformed URI, exit 2', async () => {
    const result = await runCli(
      ['scan', ...base(), '--source', 'olorin=mongodb://db.example:99999/x'],
      env(),
    );
    expect(result.code).toBe(2);
    expect(firstLine(result.stderr)).toMatch(
      /^orphan-cleanup: --source olorin: invalid MongoDB URI mongodb:\/\/db\.example:99999\/x/,
    );
  });
});

describe('exceptions from the command line', () => {
  const add = (...extra: string[]) =>
    runCli(
      ['exceptions', 'add', ...base(), '--relation', 'recap_sessions', '--reason', 'kept', ...extra],
      env(),
    );

  it('refuses an expiry in the past, shows a live one, and renews an expired one', async () => {
    // A channel some recap session references (an exception names what exists).
    const session = await ctx.server.client
      .db(ctx.demo.olorinDb)
      .collection('recap_sessions')
      .findOne({ channel_id: { $type: 'objectId' } });
    const ref = (session!.channel_id as { toHexString(): string }).toHexString();
    const past = await add('--ref', ref, '--expires', '2001-01-01');
    expect(past.code).toBe(2);
    expect(past.stderr).toBe(
      'orphan-cleanup: --expires 2001-01-01: 2001-01-01T00:00:00.000Z is in the past; give a future date or a duration such as 30d\n',
    );
    expect((await add('--ref', ref, '--expires', '30d')).stdout).toMatch(
      /^added reference exception ObjectId\(/,
    );
    expect((await add('--ref', ref)).stdout).toMatch(
      /^already excepted: reference ObjectId\(.*\) in recap_sessions, until 20/,
    );
    await ctx.server.client
      .db(ctx.demo.olorinDb)
      .collection(OWNED_COLLECTIONS.exceptions)
      .updateOne({ valueKey: ref }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    expect((await add('--ref', ref, '--reason', 'legal hold again')).stdout).toMatch(
      /^renewed reference exception ObjectId\(.*\) in recap_sessions \(it had expired 20/,
    );
    const entry = await ctx.server.client
      .db(ctx.demo.olorinDb)
      .collection(OWNED_COLLECTIONS.exceptions)
      .findOne({ valueKey: ref });
    expect([entry?.reason, entry?.expiresAt]).toEqual(['legal hold again', null]);
  });

  it('imports all or nothing, and says which entry is wrong the way a person would write it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-import-'));
    const good = { relation: 'dubbing_sessions', kind: 'reference', value: 'partner-good', reason: 'kept' };
    const cases: [unknown[], string][] = [
      [
        [good, { ...good, value: 'partner-2' }, { ...good, value: 'partner-3', expiresAt: 'next tuesday' }],
        'entry 3, expiresAt: expected an ISO date such as "2026-12-31T00:00:00Z", not "next tuesday"',
      ],
      [
        [good, { ...good, relation: 'nope' }],
        "entry 2: unknown relation 'nope' (known: content_embeddings, recap_sessions, dubbing_sessions)",
      ],
      [[good, { ...good, reason: '  ' }], 'entry 2, reason: expected a reason'],
      [
        [good, { ...good, expiresAt: '2001-01-01T00:00:00Z' }],
        'entry 2, expiresAt: 2001-01-01T00:00:00.000Z is in the past; give a future date or a duration such as 30d',
      ],
    ];
    for (const [i, [entries, message]] of cases.entries()) {
      const file = join(dir, `${i}.json`);
      await writeFile(file, JSON.stringify(entries));
      const result = await runCli(['exceptions', 'import', file, ...base()], env());
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`orphan-cleanup: exceptions import ${file}: ${message}\n`);
    }
    const written = await ctx.server.client
      .db(ctx.demo.olorinDb)
      .collection(OWNED_COLLECTIONS.exceptions)
      .countDocuments({ relation: 'dubbing_sessions' });
    expect(written).toBe(0);
  });
});

describe('backups as untrusted input', () => {
  let runDir: string;
  beforeAll(async () => {
    const clean = await runCli(
      [
        'clean',
        ...base(),
        '--relation',
        'recap_sessions',
        '--execute',
        '--yes',
        '--backup-dir',
        backupRoot,
        '--grace-days',
        '0',
      ],
      env(),
    );
    expect(clean.code).toBe(0);
    runDir = /^backup: (\S+)$/m.exec(clean.stdout)![1];
  });

  /** A copy of the run directory whose manifest is changed by `edit`. */
  async function tampered(
    edit: (manifest: Record<string, any>) => void,
    extraBytes?: Buffer,
  ): Promise<string> {
    const copy = await mkdtemp(join(tmpdir(), 'oc-tamper-'));
    const manifest = JSON.parse(await readFile(join(runDir, MANIFEST_FILE), 'utf8'));
    for (const file of manifest.files) {
      await mkdir(join(copy, file.path, '..'), { recursive: true });
      await writeFile(
        join(copy, file.path),
        Buffer.concat([await readFile(join(runDir, file.path)), extraBytes ?? Buffer.alloc(0)]),
      );
    }
    edit(manifest);
    await writeFile(join(copy, MANIFEST_FILE), JSON.stringify(manifest));
    return copy;
  }

  it('refuses manifest paths and targets outside what the configuration allows, reading nothing', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'oc-outside-'));
    await writeFile(join(outside, 'stolen.bson'), Buffer.alloc(0));
    const cases: [string, string | RegExp][] = [
      [
        await tampered((m) => {
          m.files[0].path = '../../etc/passwd';
        }),
        /files\[0\]\.path "\.\.\/\.\.\/etc\/passwd" leads outside the run directory; nothing was read$/,
      ],
      [
        await tampered((m) => {
          m.files[0].path = '/etc/passwd';
        }),
        /files\[0\]\.path "\/etc\/passwd" leads outside the run directory/,
      ],
      [
        await tampered((m) => {
          m.files.push({ ...m.files[0], path: 'link.bson' });
        }).then(async (dir) => {
          await symlink(join(outside, 'stolen.bson'), join(dir, 'link.bson'));
          return dir;
        }),
        /files\[1\]\.path "link\.bson" resolves outside the run directory \(a symbolic link\?\)/,
      ],
      [
        await tampered((m) => {
          m.relations[0].database = 'admin';
        }),
        /relations\[0\]\.database is admin, which a backup never restores into/,
      ],
      [
        await tampered((m) => {
          m.relations[0].collection = 'system.users';
        }),
        /relations\[0\]\.collection is system\.users, which a backup never restores into/,
      ],
      [
        await tampered((m) => {
          m.relations[0].collection = 'content_embeddings';
        }),
        /manifest relation recap_sessions: collection "content_embeddings" is not the configured child's \("recap_sessions"\); nothing was restored/,
      ],
    ];
    for (const [dir, message] of cases) {
      const result = await runCli(['restore', dir, ...base()], env());
      expect(result.code, String(message)).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr.trim()).toMatch(message);
    }
    expect(await ctx.server.client.db(ctx.demo.olorinDb).collection('recap_sessions').countDocuments()).toBe(
      400 + 3,
    );
  });

  it('inserts only checksummed bytes: a completed run with bytes added refuses; an interrupted run needs --include-unverified-tail', async () => {
    const [first] = await ctx.server.client
      .db(ctx.demo.olorinDb)
      .collection('recap_sessions')
      .find({}, { raw: true })
      .limit(1)
      .toArray();
    const extra = Buffer.from(first as unknown as Uint8Array);
    const completed = await tampered(() => undefined, extra);
    for (const command of ['verify', 'restore']) {
      const result = await runCli([command, completed, ...base()], env());
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /bytes after the last checksummed batch of a completed run \(the file was changed after the backup\); nothing was read\n$/,
      );
    }
    const interrupted = await tampered((m) => {
      m.status = 'failed';
    }, extra);
    const plain = await runCli(['restore', interrupted, ...base(), '--dry-run'], env());
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(
      /1 documents after the last checksummed batch \(an interrupted batch\) are not restored: no checksum covers them; --include-unverified-tail restores them/,
    );
    expect(plain.stdout).toMatch(/would insert 32 of 32/);
    const withTail = await runCli(
      ['restore', interrupted, ...base(), '--dry-run', '--include-unverified-tail'],
      env(),
    );
    expect(withTail.stdout).toMatch(
      /including 1 unverified documents written after the last checksummed batch: /,
    );
    expect(withTail.stdout).toMatch(/would insert 32 of 33, 1 already present/);
  });

  it('says "nothing to restore" for a reference the backup does not hold, exit 5 (nothing selected)', async () => {
    const result = await runCli(['restore', runDir, ...base(), '--ref', '507f1f77bcf86cd799439011'], env());
    expect(result.code).toBe(5);
    expect(result.stderr).toBe(
      `orphan-cleanup: nothing to restore: no child of reference 507f1f77bcf86cd799439011 is in ${runDir}\n`,
    );
  });
});

describe('secrets at rest', () => {
  it('writes the settings file 0600 in a 0700 directory, says where, and tightens one left wider', async () => {
    const home = await mkdtemp(join(tmpdir(), 'oc-home-'));
    const settingsEnv = { XDG_CONFIG_HOME: join(home, 'config') };
    const stored = await runCli(
      [
        'settings',
        '--profile',
        'prod',
        '--profile-source',
        `olorin=${uriWithPassword('s3cretpw')}`,
        '--store-secret',
      ],
      settingsEnv,
    );
    expect(stored.code).toBe(0);
    const file = join(home, 'config', 'orphan-cleanup-nodejs', 'config.json');
    expect(stored.stderr).toContain(
      `stored profile prod with its URI in clear in ${file} (readable by you only, mode 600)`,
    );
    expect(stored.stdout).not.toContain('s3cretpw');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(file, '..'))).mode & 0o777).toBe(0o700);
    await chmod(file, 0o644);
    const again = await runCli(['settings'], settingsEnv);
    expect(again.stderr).toContain(`tightened ${file} from 644 to 600 (it may hold credentials)`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});
