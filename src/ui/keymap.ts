import type { Key } from 'ink';
import type { View } from './state/reducer.ts';

/** What a key asks the console to do; the app maps each to an action. */
export type Command =
  | 'down'
  | 'up'
  | 'pageDown'
  | 'pageUp'
  | 'first'
  | 'last'
  | 'open'
  | 'rescan'
  | 'resume'
  | 'clean'
  | 'exceptions'
  | 'backups'
  | 'history'
  | 'settings'
  | 'previousTab'
  | 'nextTab'
  | 'filter'
  | 'everyChild'
  | 'allowList'
  | 'addException'
  | 'removeException'
  | 'restoreAll'
  | 'restoreRef'
  | 'verify'
  | 'help'
  | 'quit'
  | 'back'
  | 'interrupt';

/** One key: a typed character, or one of Ink's named keys (with modifiers where they matter). */
export interface KeySpec {
  input?: string;
  key?:
    | 'upArrow'
    | 'downArrow'
    | 'leftArrow'
    | 'rightArrow'
    | 'pageUp'
    | 'pageDown'
    | 'return'
    | 'escape'
    | 'tab';
  shift?: boolean;
  ctrl?: boolean;
}

export interface Binding {
  keys: KeySpec[];
  command: Command;
  /** How the footer and the help write the keys. */
  label: string;
  what: string;
}

const char = (...inputs: string[]): KeySpec[] => inputs.map((input) => ({ input }));
const DOWN_UP = (what: string): Binding[] => [
  { keys: [{ key: 'downArrow' }, ...char('j')], command: 'down', label: '↓ j', what: `next ${what}` },
  { keys: [{ key: 'upArrow' }, ...char('k')], command: 'up', label: '↑ k', what: `previous ${what}` },
];
const BACK: Binding = { keys: [{ key: 'escape' }], command: 'back', label: 'Esc', what: 'back' };

/** Keys every screen shares: listed once in the help, after the screen's own. */
export const GLOBAL_BINDINGS: Binding[] = [
  { keys: char('?'), command: 'help', label: '?', what: 'help' },
  { keys: char('q'), command: 'quit', label: 'q', what: 'quit (asks first while a delete runs)' },
  {
    keys: [{ input: 'c', ctrl: true }],
    command: 'interrupt',
    label: 'Ctrl+C',
    what: 'quit / stop after this batch',
  },
];

/** Every key of every screen, in one table: the routing, the footer and the `?` help all read it. */
export const BINDINGS: Record<View['name'], Binding[]> = {
  dashboard: [
    ...DOWN_UP('relation'),
    { keys: [{ key: 'return' }], command: 'open', label: 'Enter', what: 'review samples' },
    { keys: char('c'), command: 'clean', label: 'c', what: 'clean up (plan first)' },
    { keys: char('r'), command: 'rescan', label: 'r', what: 'rescan / retry' },
    { keys: char('u'), command: 'resume', label: 'u', what: 'resume an unfinished scan' },
    { keys: char('e'), command: 'exceptions', label: 'e', what: 'exceptions' },
    { keys: char('b'), command: 'backups', label: 'b', what: 'backups & restore' },
    { keys: char('h'), command: 'history', label: 'h', what: 'history' },
    { keys: char('s'), command: 'settings', label: 's', what: 'settings' },
  ],
  relation: [
    {
      keys: [{ key: 'leftArrow' }, { key: 'tab', shift: true }, ...char('h')],
      command: 'previousTab',
      label: '← ⇧Tab h',
      what: 'previous category',
    },
    {
      keys: [{ key: 'rightArrow' }, { key: 'tab' }, ...char('l')],
      command: 'nextTab',
      label: '→ Tab l',
      what: 'next category',
    },
    ...DOWN_UP('row'),
    { keys: [{ key: 'pageDown' }], command: 'pageDown', label: 'PgDn', what: 'page down' },
    { keys: [{ key: 'pageUp' }], command: 'pageUp', label: 'PgUp', what: 'page up' },
    { keys: char('g'), command: 'first', label: 'g', what: 'first row' },
    { keys: char('G'), command: 'last', label: 'G', what: 'last row (loads more)' },
    { keys: [{ key: 'return' }], command: 'open', label: 'Enter', what: 'whole document' },
    { keys: char('a'), command: 'everyChild', label: 'a', what: 'every child / samples (orphans, inactive)' },
    { keys: char('x'), command: 'allowList', label: 'x', what: 'allow-list (exception)' },
    { keys: char('/'), command: 'filter', label: '/', what: 'filter' },
    { keys: char('c'), command: 'clean', label: 'c', what: 'clean up' },
    BACK,
  ],
  document: [
    ...DOWN_UP('line'),
    { keys: char('x'), command: 'allowList', label: 'x', what: 'allow-list' },
    BACK,
  ],
  cleanup: [
    { keys: [], command: 'open', label: 'type + Enter', what: 'confirm (when asked)' },
    { keys: [{ key: 'escape' }], command: 'back', label: 'Esc', what: 'back / stop after this batch' },
  ],
  exceptions: [
    ...DOWN_UP('exception'),
    { keys: char('a'), command: 'addException', label: 'a', what: 'add (to the selected relation)' },
    { keys: char('d'), command: 'removeException', label: 'd', what: 'remove' },
    { keys: char('/'), command: 'filter', label: '/', what: 'filter' },
    BACK,
  ],
  recovery: [
    ...DOWN_UP('backup'),
    { keys: [{ key: 'return' }], command: 'open', label: 'Enter', what: 'preview' },
    { keys: char('R'), command: 'restoreAll', label: 'R', what: 'restore all' },
    { keys: char('f'), command: 'restoreRef', label: 'f', what: 'restore one reference' },
    { keys: char('/'), command: 'filter', label: '/', what: 'find backups holding a reference' },
    { keys: char('v'), command: 'verify', label: 'v', what: 'verify' },
    BACK,
  ],
  history: [
    ...DOWN_UP('run'),
    { keys: [{ key: 'return' }], command: 'open', label: 'Enter', what: "the run's detail" },
    { keys: char('/'), command: 'filter', label: '/', what: 'only scans, cleanups, restores, or all' },
    BACK,
  ],
  settings: [
    ...DOWN_UP('setting'),
    { keys: [{ key: 'return' }], command: 'open', label: 'Enter', what: 'change (saved at once)' },
    BACK,
  ],
};

function matches(spec: KeySpec, input: string, key: Partial<Key>): boolean {
  if (Boolean(spec.ctrl) !== Boolean(key.ctrl)) return false;
  if (spec.key) {
    if (!key[spec.key]) return false;
    // Tab and Shift+Tab are different commands; elsewhere Shift is part of the character typed.
    return spec.key !== 'tab' || Boolean(spec.shift) === Boolean(key.shift);
  }
  return spec.input === input;
}

/** The command a key means on a screen: the screen's own bindings first, then the global ones. */
export function commandFor(view: View['name'], input: string, key: Partial<Key>): Command | undefined {
  for (const binding of [...BINDINGS[view], ...GLOBAL_BINDINGS])
    if (binding.keys.some((spec) => matches(spec, input, key))) return binding.command;
  return undefined;
}

/** The line of keys that work here, for the footer (the screen's own; `? help` is added by the footer). */
export function footerHints(view: View['name']): string {
  return BINDINGS[view].map(({ label, what }) => `${label} ${what}`).join(' · ');
}
