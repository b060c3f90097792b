import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import stringWidth from 'string-width';
import { describe, expect, it } from 'vitest';
import { App } from '../../src/ui/app.tsx';
import { createConsoleServices } from '../../src/ui/services.ts';
import { KEY, press, type, unwrapped, waitForFrame, waitForText } from '../support/ink.ts';
import { withConsoleDemo } from '../support/olorin-fixture.ts';
import { renderInTerminal } from '../support/terminal.ts';

const ctx = withConsoleDemo();

/**
 * What must hold of every frame in a small terminal: shorter than the terminal (so the header is never
 * scrolled away), no line wider than it, the title first, and the footer's last hint whole on the last line.
 */
function expectFits(frame: string, columns: number, rows: number) {
  const lines = frame.split('\n');
  expect(lines.length, frame).toBeLessThan(rows);
  for (const line of lines) expect(stringWidth(line), line).toBeLessThanOrEqual(columns);
  expect(lines[0]).toMatch(/^orphan-cleanup/);
  expect(lines.at(-1)).toMatch(/\? help · q quit$/);
}

describe('the console at 80×24', () => {
  it('review, plan, summary and exceptions fit: whole references, header kept under dialogs, footer wrapped, never cut', async () => {
    const backupRoot = await mkdtemp(join(tmpdir(), 'oc-80x24-'));
    const services = createConsoleServices(
      ctx.demo.config,
      ctx.pool,
      { readOnly: false },
      { operator: 'ops-80', backupRoot, batchSize: 100 },
    );
    const exitNotes: string[] = [];
    const r = renderInTerminal(<App services={services} exitNotes={exitNotes} />, { columns: 80, rows: 24 });
    try {
      let frame = await waitForText(r, /deletable 600/);
      expectFits(frame, 80, 24);

      // Review: the reference column holds a whole ObjectId ("oid " and 24 hex digits).
      await press(r, KEY.enter);
      frame = await waitForText(r, '[Orphans 300]');
      expectFits(frame, 80, 24);
      const rows = frame.split('\n').filter((line) => /^oid [0-9a-f]{14,}… /.test(line));
      expect(rows.length).toBeGreaterThan(3);
      // The demo's references are strings and ObjectIds, both with 24 hex digits.
      for (const row of rows) expect(row).toMatch(/^\S+ \S+ +("[0-9a-f]{24}"|oid [0-9a-f]{24}) +\S+ now/);
      // The footer wraps between hints onto a second line instead of cutting them.
      const lines = frame.split('\n');
      expect(lines.at(-2)).toMatch(/^←→ category · ↑↓ row · PgUp PgDn g G page/);

      // The help fits too (two columns when one is too tall).
      await press(r, '?');
      frame = await waitForText(r, 'Keys on this screen');
      expectFits(frame, 80, 24);
      expect(frame).toContain('every child');
      expect(frame).toContain('close this help');
      await press(r, KEY.escape);

      // The plan under its confirmation prompt: the header is still the first line.
      await press(r, 'c');
      frame = await waitForText(r, 'Type "content_embeddings" and Enter');
      expectFits(frame, 80, 24);
      expect(frame).toContain('Plan for content_embeddings');
      expect(frame).toMatch(/✓ olorin/);
      await type(r, 'content_embeddings');
      frame = await waitForText(r, /Run \S+: completed/);
      expectFits(frame, 80, 24);
      // The summary box keeps its whole border (issue 26 item 7): both corners of its top and of its bottom.
      const summaryLines = frame.split('\n');
      const top = summaryLines.findIndex((line) => line.startsWith('╭'));
      const bottom = summaryLines.findIndex((line, i) => i > top && line.startsWith('╰'));
      expect(top).toBeGreaterThan(-1);
      expect(bottom).toBeGreaterThan(top);
      expect(summaryLines[top]).toMatch(/^╭─+╮$/);
      expect(summaryLines[bottom]).toMatch(/^╰─+╯$/);
      expect(summaryLines.slice(top, bottom + 1).join('\n')).toContain('Run ');
      expect(unwrapped(frame)).toMatch(/restore: \S*orphan-cleanup restore/);

      // y puts the restore command on the terminal's clipboard (OSC 52).
      await press(r, 'y');
      frame = await waitForText(r, 'copied to the terminal clipboard');
      const copy = r.frames.find((written) => written.includes('\u001b]52;c;'));
      expect(copy).toBeDefined();
      const copied = Buffer.from(/\u001b]52;c;([A-Za-z0-9+/=]+)\u0007/.exec(copy!)![1], 'base64').toString();
      expect(copied).toMatch(new RegExp(`^\\S*orphan-cleanup restore ${backupRoot}/\\S+ --config \\S+$`));
      // And it is what the console prints when it closes.
      expect(exitNotes).toEqual([copied]);

      // Exceptions, with a prompt open (Esc leaves the summary for the review, Esc again the review).
      await press(r, KEY.escape, KEY.escape);
      await waitForText(r, /deletable 0/);
      await press(r, 'e');
      await waitForText(r, 'Exceptions (allow-listed orphans, never deleted)');
      await press(r, 'a');
      frame = await waitForText(r, 'd:<child _id> or r:<reference>');
      expectFits(frame, 80, 24);
      // An exception opens into its detail at 80 columns (issue 26 item 7): every field whole, the reason wrapped.
      const child = await ctx.server.client
        .db(ctx.demo.olorinDb)
        .collection('content_embeddings')
        .findOne({ content_id: { $type: 'objectId' } });
      await type(r, `r:${String(child!.content_id)}`);
      await waitForText(r, 'Reason for allow-listing');
      const reason =
        'kept for the ranking experiment, which needs every child of this parent until the quarter ends (ticket OPS-4711)';
      await type(r, reason);
      await waitForText(r, 'Enter for never');
      await type(r, '30d');
      await waitForText(r, /Exceptions \(allow-listed orphans, never deleted\): 1/);
      await press(r, KEY.enter);
      frame = await waitForText(r, 'Exception (Enter or Esc closes)');
      expectFits(frame, 80, 24);
      for (const label of ['relation', 'kind', 'value', 'reason', 'added by', 'added', 'expires'])
        expect(frame).toMatch(new RegExp(`^${label} +\\S`, 'm'));
      // The whole reason, wrapped under its label; the expiry with its year and how far off it is.
      expect(frame.replace(/\n {10}/g, ' ')).toContain(reason);
      expect(frame).toMatch(/^expires +\d{4}-\d\d-\d\d \d\d:\d\d UTC \(in 30 days\)$/m);
      await press(r, KEY.escape);
      await waitForText(r, /Exceptions \(allow-listed orphans, never deleted\): [1-9]/);

      // The copied command, pasted verbatim into a second shell in the checkout that has the variables the
      // summary names (issue 26 item 5): it restores what the cleanup deleted.
      const shell = spawnSync('bash', ['-c', copied], {
        cwd: process.cwd(),
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          OLORIN_MONGODB_URI: ctx.server.uri,
          BAYIT_MONGODB_URI: ctx.server.uri,
        },
        encoding: 'utf8',
      });
      expect(shell.stderr).toBe('');
      expect(shell.status).toBe(0);
      expect(shell.stdout).toMatch(/content_embeddings: \S+: inserted (\d+) of \1, 0 already present/);
    } finally {
      r.unmount();
    }
  });

  it('redraws whole after a resize: the screen is cleared and the next frame fits the new width', async () => {
    const services = createConsoleServices(
      ctx.demo.config,
      ctx.pool,
      { readOnly: true },
      { operator: 'ops-80', backupRoot: tmpdir(), batchSize: 100 },
    );
    const r = renderInTerminal(<App services={services} />, { columns: 120, rows: 40 });
    try {
      // The overview drawn whole: scanned, or offering to resume a scan the suite's previous test left
      // unfinished when it closed its console mid-rescan.
      await waitForText(r, /deletable \d+|u resumes it/);
      const before = r.frames.length;
      r.resize(70, 20);
      const frame = await waitForFrame(r, (f) => f.split('\n').every((line) => stringWidth(line) <= 70));
      expect(r.frames.slice(before).some((written) => written.startsWith('\u001b[2J'))).toBe(true);
      expectFits(frame, 70, 20);
    } finally {
      r.unmount();
    }
  });
});
