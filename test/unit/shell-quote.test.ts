import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { restoreCommandFor, shellQuote } from '../../src/cleanup/restore.ts';

// Issue 25 item 5: printed commands are quoted so they run as printed, and never carry a byte the terminal
// showing them would act on.
describe('shell quoting of printed commands', () => {
  const words = [
    'plain/path-1',
    '/tmp/a dir/run',
    "it's",
    "a'b\u001b]0;title\u0007\\n",
    'rtl\u202eevil',
    'tab\there',
    'naïve ünïcode',
  ];
  it('gives back each word exactly through bash, with no terminal control in the printed text', () => {
    for (const word of words) {
      const quoted = shellQuote(word);
      expect(quoted, word).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
      expect(execFileSync('bash', ['-c', `printf %s ${quoted}`]).toString('utf8'), quoted).toBe(word);
    }
    // The launcher's path (not on this PATH), the run directory quoted.
    expect(restoreCommandFor('/tmp/a dir/run')).toMatch(
      /^\/\S+\/bin\/orphan-cleanup restore '\/tmp\/a dir\/run'$/,
    );
  });
});
