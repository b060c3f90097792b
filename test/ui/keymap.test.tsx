import type { Key } from 'ink';
import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { HelpOverlay } from '../../src/ui/components/HelpOverlay.tsx';
import { BINDINGS, commandFor, footerHints, GLOBAL_BINDINGS, type KeySpec } from '../../src/ui/keymap.ts';
import type { View } from '../../src/ui/state/reducer.ts';
import { wrapHints } from '../../src/ui/theme.ts';

/** The input and key flags Ink hands the handler for a key. */
function press(spec: KeySpec): [string, Partial<Key>] {
  const key: Partial<Key> = {};
  if (spec.key) key[spec.key] = true;
  if (spec.shift) key.shift = true;
  if (spec.ctrl) key.ctrl = true;
  return [spec.input ?? '', key];
}

const VIEWS = Object.keys(BINDINGS) as View['name'][];

describe('the key table', () => {
  it.each(VIEWS)('every binding of %s reaches its command, and no key means two things', (view) => {
    const seen = new Map<string, string>();
    for (const binding of [...BINDINGS[view], ...GLOBAL_BINDINGS]) {
      for (const spec of binding.keys) {
        const [input, key] = press(spec);
        expect(commandFor(view, input, key), `${binding.label} on ${view}`).toBe(binding.command);
        const id = JSON.stringify(spec);
        expect(seen.get(id), `${id} bound twice on ${view}`).toBeUndefined();
        seen.set(id, binding.command);
      }
    }
  });

  it('tells Tab from Shift+Tab and c from Ctrl+C, and ignores keys no screen binds', () => {
    expect(commandFor('relation', '', { tab: true })).toBe('nextTab');
    expect(commandFor('relation', '', { tab: true, shift: true })).toBe('previousTab');
    expect(commandFor('dashboard', 'c', {})).toBe('clean');
    expect(commandFor('dashboard', 'c', { ctrl: true })).toBe('interrupt');
    expect(commandFor('dashboard', 'z', {})).toBeUndefined();
    // The same letter means what its screen says: h is history on the dashboard, the previous tab in a review.
    expect(commandFor('dashboard', 'h', {})).toBe('history');
    expect(commandFor('relation', 'h', {})).toBe('previousTab');
  });

  it.each(VIEWS)('the help of %s lists exactly its bindings and the shared ones', (view) => {
    const r = render(<HelpOverlay view={view} />);
    const frame = r.lastFrame() ?? '';
    const lines = frame.split('\n').filter((line) => /^│ \S/.test(line));
    const listed = [...BINDINGS[view], ...GLOBAL_BINDINGS];
    // A title, one line per binding, and how to close.
    expect(lines).toHaveLength(listed.length + 2);
    for (const { label, what } of listed) expect(frame).toContain(`${label.padEnd(14)} ${what}`);
    r.unmount();
  });

  it.each(VIEWS)(
    'the footer of %s shows a key of every binding, in at most two lines at 80 columns',
    (view) => {
      const hints = footerHints(view);
      const tokens = hints.join(' · ').split(/[\s·]+/);
      const shown = (key: string) =>
        tokens.some((t) => t === key || (/^[←→↑↓]+$/.test(t) && t.includes(key)));
      for (const { label } of BINDINGS[view])
        expect(label.split(' ').some(shown), `${label} in ${hints.join(' · ')}`).toBe(true);
      expect(hints.slice(-2)).toEqual(['? help', 'q quit']);
      expect(wrapHints(hints, 80).length).toBeLessThanOrEqual(2);
      for (const line of wrapHints(hints, 80)) expect(line).not.toContain('…');
    },
  );
});
