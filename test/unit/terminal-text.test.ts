import { describe, expect, it } from 'vitest';
import { displayValue } from '../../src/mongo/keys.ts';
import { escapeForTerminal } from '../../src/terminal-text.ts';
import { shellLines } from '../../src/ui/shell-value.ts';

// Issue 25, item 5: nothing from the data reaches the terminal raw. What a terminal would act on — a window
// title (OSC 0), a screen clear, an OSC 52 clipboard write, a right-to-left override — is shown escaped.
const HOSTILE = [
  '\u001b]0;owned\u0007',
  '\u001b[2J\u001b[H',
  '\u001b]52;c;ZWNobyBvd25lZA==\u0007',
  'abc\u202eevil',
  'tab\there',
  'c1\u009b31m',
];
const ACTIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('text from data on a terminal', () => {
  it('escapes controls, escape sequences and bidirectional overrides, keeping the rest readable', () => {
    expect(escapeForTerminal('\u001b]0;owned\u0007')).toBe('\\u001b]0;owned\\u0007');
    expect(escapeForTerminal('abc\u202eevil')).toBe('abc\\u202eevil');
    expect(escapeForTerminal('plain ÿ 日本')).toBe('plain ÿ 日本');
  });

  it('the console viewer and every displayed key show hostile strings escaped, in values and field names', () => {
    const doc = Object.fromEntries(HOSTILE.map((text, i) => [`f${i}${text}`, text]));
    const shown = shellLines(doc).join('\n');
    expect(shown).not.toMatch(ACTIVE);
    expect(shown).toContain('\\u001b]52;c;');
    for (const text of HOSTILE) expect(displayValue(text)).not.toMatch(ACTIVE);
  });
});
