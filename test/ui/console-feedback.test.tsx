import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { App } from '../../src/ui/app.tsx';
import { createConsoleServices } from '../../src/ui/services.ts';
import { KEY, press, type, waitForText } from '../support/ink.ts';
import { withConsoleDemo } from '../support/olorin-fixture.ts';
import { renderInTerminal } from '../support/terminal.ts';

// Issue 26 item 3: feedback that follows what the operator just did. A key typed for a question that closed by
// itself (the delete it asked about ended) is never taken as a command of the screen under it.
const ctx = withConsoleDemo();

describe('a question that closed by itself', () => {
  it('does not pass the y typed for it on to the summary (where y copies), and the footer follows the run', async () => {
    const backupRoot = await mkdtemp(join(tmpdir(), 'oc-feedback-'));
    const base = createConsoleServices(
      ctx.demo.config,
      ctx.pool,
      { readOnly: false },
      { operator: 'ops-feedback', backupRoot, batchSize: 100 },
    );
    // The delete holds after its confirmation until the test lets it go: time to ask "stop after this batch?".
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const services: typeof base = {
      ...base,
      clean: (report, hooks) =>
        base.clean(report, {
          ...hooks,
          confirm: async (plan) => {
            const accepted = await hooks.confirm(plan);
            if (accepted) await held;
            return accepted;
          },
        }),
    };
    const r = renderInTerminal(<App services={services} />, { columns: 100, rows: 40 });
    try {
      await waitForText(r, /deletable 600/);
      await press(r, KEY.enter);
      await press(r, 'c');
      await waitForText(r, 'Type "content_embeddings" and Enter');
      await type(r, 'content_embeddings');
      // Running: the footer offers what applies now (issue 26 item 3), not the confirmation any more.
      let frame = await waitForText(r, 'Esc stop after this batch');
      expect(frame).not.toContain('type + Enter confirm');
      // Esc asks whether to stop after the batch.
      await press(r, KEY.escape);
      await waitForText(r, 'Stop after the current batch?');
      // The run ends before the operator answers: the question closes by itself.
      release();
      frame = await waitForText(r, /Run \S+: completed/);
      // Over: copy the restore command, or go back.
      expect(frame).toContain('y copy restore command · Esc back (rescans)');
      expect(frame).not.toMatch(/type \+ Enter confirm|stop after this batch/);
      const copiesBefore = r.frames.filter((frame) => frame.includes('\u001b]52;c;')).length;
      await press(r, 'y');
      await waitForText(r, 'the question had closed by itself (the run ended) before that key');
      expect(r.frames.filter((frame) => frame.includes('\u001b]52;c;')).length).toBe(copiesBefore);
      // A moment later, y is the summary's key again.
      await new Promise((resolve) => setTimeout(resolve, 2100));
      await press(r, 'y');
      await waitForText(r, 'copied to the terminal clipboard');
    } finally {
      r.unmount();
    }
  });
});
