import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { applyTyping, PromptLine } from '../../../src/ui/components/Prompt.tsx';
import { waitForText } from '../../support/ink.ts';

// Issue 26, item 1: text input that never lies. Keys arrive several to a chunk (key repeat, paste, a slow link).
describe('applyTyping', () => {
  it('deletes one character per Backspace in a chunk, submits at a newline, and drops control bytes', () => {
    expect(applyTyping('axyz', '\x7f\x7f')).toEqual({ value: 'ax', submitted: false });
    expect(applyTyping('ab', '\b\b\b')).toEqual({ value: '', submitted: false });
    expect(applyTyping('', 'delete 42\r')).toEqual({ value: 'delete 42', submitted: true });
    expect(applyTyping('', '\x1b[200~pasted\x1b[201~')).toEqual({ value: 'pasted', submitted: false });
    expect(applyTyping('a', 'b\x07\x1b[Dc\u009b')).toEqual({ value: 'abc', submitted: false });
    expect(applyTyping('日本', '\x7f')).toEqual({ value: '日', submitted: false });
  });
});

describe('PromptLine', () => {
  it('submits exactly what the screen showed after Backspaces that arrived together', async () => {
    let submitted: string | undefined;
    const r = render(<PromptLine label="type the relation name" onSubmit={(v) => (submitted = v)} />);
    try {
      await waitForText(r, '> ');
      r.stdin.write('axyz');
      await waitForText(r, '> axyz');
      r.stdin.write('\x7f\x7f');
      const frame = await waitForText(r, /> ax\s/);
      expect(frame).not.toMatch(/\x7f/);
      r.stdin.write('\r');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(submitted).toBe('ax');
    } finally {
      r.unmount();
    }
  });
});
