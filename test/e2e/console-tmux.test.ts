import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ObjectId } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { OWNED_COLLECTIONS } from '../../src/store/access.ts';
import { withOlorinDemo } from '../support/olorin-fixture.ts';

const LAUNCHER = fileURLToPath(new URL('../../bin/orphan-cleanup', import.meta.url));
// No grace: every orphan is deletable, so an allow-listed one shows as kept at once.
const ctx = withOlorinDemo({ graceDays: 0 });
// A tmux server of this file's own, so nothing else on the machine is touched.
const socket = `oc-test-${randomBytes(4).toString('hex')}`;
afterAll(() => {
  spawnSync('tmux', ['-L', socket, 'kill-server']);
});

/**
 * The console in a real terminal of 80×24 (tmux), driven as a person does: keys sent, the screen read back as
 * tmux shows it (what the operator sees, after every redraw), not the bytes written.
 */
function console80x24(args: string[], env: Record<string, string>) {
  const session = `s${randomBytes(3).toString('hex')}`;
  const command = [process.execPath, LAUNCHER, ...args]
    .map((part) => `'${part.replace(/'/g, "'\\''")}'`)
    .join(' ');
  const vars = Object.entries({ ...env, TERM: 'xterm-256color', NO_COLOR: '1' }).flatMap(([k, v]) => [
    '-e',
    `${k}=${v}`,
  ]);
  const started = spawnSync(
    'tmux',
    [
      '-L',
      socket,
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      '80',
      '-y',
      '24',
      ...vars,
      `env -u CI ${command}`,
    ],
    { encoding: 'utf8' },
  );
  if (started.status !== 0) throw new Error(`tmux did not start: ${started.stderr}`);
  const screen = () =>
    spawnSync('tmux', ['-L', socket, 'capture-pane', '-p', '-t', session], { encoding: 'utf8' }).stdout;
  return {
    screen,
    async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = screen();
        // Read as a person reads it: a line wrapped inside a box is one sentence.
        if (pattern.test(now.replace(/[│╭╮╰╯─]/g, ' ').replace(/\s+/g, ' '))) return now;
        if (Date.now() > deadline) throw new Error(`never saw ${pattern}; the screen:\n${now}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async keys(...keys: string[]) {
      for (const key of keys) {
        // A literal text, or a key name tmux knows (Enter, Escape, Down).
        const named = /^(Enter|Escape|Down|Up)$/.test(key);
        spawnSync('tmux', ['-L', socket, 'send-keys', '-t', session, ...(named ? [key] : ['-l', key])]);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    },
    close() {
      spawnSync('tmux', ['-L', socket, 'kill-session', '-t', session]);
    },
  };
}

// Issue 26 acceptance: allow-list a reference for 30 days, see its detail at 80 columns, clean and see its
// children kept, remove the exception and see the confirmation say what happens to their grace.
describe('the console in an 80×24 terminal (tmux)', () => {
  it('allow-lists a reference, shows it whole, keeps its children through a cleanup, and removes it', async () => {
    const { server, demo } = ctx;
    const olorin = server.client.db(demo.olorinDb);
    const backupRoot = await mkdtemp(join(tmpdir(), 'oc-tmux-'));
    const term = console80x24(
      ['--config', demo.configPath, '--backup-dir', backupRoot, '--grace-days', '0'],
      {
        OLORIN_MONGODB_URI: server.uri,
        BAYIT_MONGODB_URI: server.uri,
        OLORIN_USE_SEPARATE_DATABASE: 'true',
        HOME: process.env.HOME ?? '/tmp',
        PATH: process.env.PATH ?? '',
      },
    );
    try {
      await term.waitFor(/deletable \d+/);
      // The review of content_embeddings, its first orphan: allow-list every child of its reference for 30 days.
      await term.keys('Enter');
      await term.waitFor(/\[Orphans \d+\]/);
      await term.keys('x');
      await term.waitFor(/Allow-list: type d for this document, r for every child of its reference/);
      await term.keys('r', 'Enter');
      await term.waitFor(/Reason for allow-listing reference/);
      await term.keys('legal hold until the audit closes', 'Enter');
      await term.waitFor(/Enter for never/);
      await term.keys('30d', 'Enter');
      await term.waitFor(/added reference exception/);
      const entry = await olorin.collection(OWNED_COLLECTIONS.exceptions).findOne({ reason: /legal hold/ });
      expect(entry?.kind).toBe('reference');
      // The reference's children in every form it takes (an ObjectId, or its hex as a string).
      const hex = String(entry!.value);
      const ofReference = { content_id: { $in: [new ObjectId(hex), hex, hex.toUpperCase()] } };
      const children = await olorin.collection('content_embeddings').countDocuments(ofReference);
      expect(children).toBeGreaterThan(0);

      // Its detail at 80 columns: every field whole.
      await term.keys('Escape');
      await term.waitFor(/deletable \d+/);
      await term.keys('e');
      await term.waitFor(/Exceptions \(allow-listed orphans, never deleted\): 1/);
      await term.keys('Enter');
      const detail = await term.waitFor(/Exception \(Enter or Esc closes\)/);
      expect(detail).toMatch(/^reason +legal hold until the audit closes$/m);
      expect(detail).toMatch(/^expires +\d{4}-\d\d-\d\d \d\d:\d\d UTC \(in 30 days\)$/m);
      for (const line of detail.split('\n')) expect(line.length).toBeLessThanOrEqual(80);

      // A cleanup of the relation: its children are kept (excepted), the rest deleted.
      await term.keys('Escape', 'Escape');
      await term.waitFor(/deletable \d+/);
      await term.keys('c');
      const plan = await term.waitFor(/Type "content_embeddings" and Enter/);
      expect(plan.replace(/\s+/g, ' ')).toMatch(new RegExp(`kept: ${children} excepted`));
      await term.keys('content_embeddings', 'Enter');
      await term.waitFor(/Run \S+: completed/, 60_000);
      expect(await olorin.collection('content_embeddings').countDocuments(ofReference)).toBe(children);

      // Removed: the question and the confirmation say what becomes of their grace.
      await term.keys('Escape');
      await term.waitFor(/deletable \d+/);
      await term.keys('e');
      await term.waitFor(/Exceptions \(allow-listed orphans, never deleted\): 1/);
      await term.keys('d');
      await term.waitFor(
        /Remove this exception\? Its children count again from the next scan and their grace period starts then/,
      );
      await term.keys('y', 'Enter');
      await term.waitFor(
        /exception removed: reference .* its children count again, their grace period starting now/,
      );
      expect(
        await olorin.collection(OWNED_COLLECTIONS.exceptions).countDocuments({ reason: /legal hold/ }),
      ).toBe(0);
    } finally {
      term.close();
    }
  }, 180_000);
});
