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
  | 'interrupt'
  | 'copyRestore'
  | 'expand';

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
    | 'tab'
    | 'home'
    | 'end';
  shift?: boolean;
  ctrl?: boolean;
}

export interface Binding {
  keys: KeySpec[];
  command: Command;
  /** How the footer and the help write the keys. */
  label: string;
  what: string;
  /**
   * The footer's words for it, shorter than the help's; '' when the previous binding's footer words cover it
   * (↑↓ as one hint). Absent: the label and what.
   */
  short?: string;
}

const char = (...inputs: string[]): KeySpec[] => inputs.map((input) => ({ input }));
const DOWN_UP = (what: string): Binding[] => [
  {
    keys: [{ key: 'downArrow' }, ...char('j')],
    command: 'down',
    label: '↓ j',
    what: `next ${what}`,
    short: `↑↓ ${what}`,
  },
  {
    keys: [{ key: 'upArrow' }, ...char('k')],
    command: 'up',
    label: '↑ k',
    what: `previous ${what}`,
    short: '',
  },
];
/** Paging keys: PgDn PgUp g G, one footer hint. */
const PAGING = (what: string, last: string): Binding[] => [
  {
    keys: [{ key: 'pageDown' }],
    command: 'pageDown',
    label: 'PgDn',
    what: 'page down',
    short: 'PgUp PgDn g G page',
  },
  { keys: [{ key: 'pageUp' }], command: 'pageUp', label: 'PgUp', what: 'page up', short: '' },
  {
    keys: [{ key: 'home' }, ...char('g')],
    command: 'first',
    label: 'Home g',
    what: `first ${what}`,
    short: '',
  },
  { keys: [{ key: 'end' }, ...char('G')], command: 'last', label: 'End G', what: last, short: '' },
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

/** A screen's keys: its view's, or for the cleanup screen those of its state (`keySetOf`). */
export type KeySet = View['name'] | 'cleanupRunning' | 'cleanupOver';

/** The cleanup screen's keys while a run goes on, and once it (or the plan) is over. */
export function keySetOf(view: View['name'], cleanupPhase?: string): KeySet {
  if (view !== 'cleanup') return view;
  if (cleanupPhase === 'running') return 'cleanupRunning';
  if (cleanupPhase === 'summary' || cleanupPhase === 'error') return 'cleanupOver';
  return 'cleanup';
}

/** Every key of every screen, in one table: the routing, the footer and the `?` help all read it. */
export const BINDINGS: Record<KeySet, Binding[]> = {
  dashboard: [
    ...DOWN_UP('relation'),
    {
      keys: [{ key: 'return' }],
      command: 'open',
      label: 'Enter',
      what: 'review samples',
      short: 'Enter review',
    },
    { keys: char('c'), command: 'clean', label: 'c', what: 'clean up (plan first)', short: 'c clean' },
    { keys: char('r'), command: 'rescan', label: 'r', what: 'rescan / retry', short: 'r rescan' },
    { keys: char('u'), command: 'resume', label: 'u', what: 'resume an unfinished scan', short: 'u resume' },
    { keys: char('e'), command: 'exceptions', label: 'e', what: 'exceptions' },
    { keys: char('b'), command: 'backups', label: 'b', what: 'backups & restore', short: 'b backups' },
    { keys: char('h'), command: 'history', label: 'h', what: 'history' },
    { keys: char('s'), command: 'settings', label: 's', what: 'settings' },
  ],
  relation: [
    {
      keys: [{ key: 'leftArrow' }, { key: 'tab', shift: true }, ...char('h')],
      command: 'previousTab',
      label: '← ⇧Tab h',
      what: 'previous category',
      short: '←→ category',
    },
    {
      keys: [{ key: 'rightArrow' }, { key: 'tab' }, ...char('l')],
      command: 'nextTab',
      label: '→ Tab l',
      what: 'next category',
      short: '',
    },
    ...DOWN_UP('row'),
    ...PAGING('row', 'last row (loads more)'),
    {
      keys: [{ key: 'return' }],
      command: 'open',
      label: 'Enter',
      what: 'whole document',
      short: 'Enter document',
    },
    {
      keys: char('a'),
      command: 'everyChild',
      label: 'a',
      what: 'every child / samples (orphans, inactive)',
      short: 'a every child',
    },
    {
      keys: char('x'),
      command: 'allowList',
      label: 'x',
      what: 'allow-list (exception)',
      short: 'x allow-list',
    },
    { keys: char('/'), command: 'filter', label: '/', what: 'filter' },
    { keys: char('c'), command: 'clean', label: 'c', what: 'clean up' },
    BACK,
  ],
  document: [
    ...DOWN_UP('line'),
    ...PAGING('line', 'last line'),
    {
      keys: [{ key: 'return' }, ...char('e')],
      command: 'expand',
      label: 'Enter e',
      what: 'expand / collapse long arrays',
      short: 'Enter expand arrays',
    },
    { keys: char('x'), command: 'allowList', label: 'x', what: 'allow-list' },
    BACK,
  ],
  // The cleanup screen's keys follow its state: the plan asks for the name, a run can be stopped, a run or a
  // cancel that is over can be copied from and left (the footer never offers what no longer applies).
  cleanup: [
    {
      keys: [],
      command: 'open',
      label: 'type + Enter',
      what: 'confirm (when asked)',
      short: 'type + Enter confirm',
    },
    {
      keys: [{ key: 'escape' }],
      command: 'back',
      label: 'Esc',
      what: 'cancel (nothing is deleted)',
      short: 'Esc cancel',
    },
  ],
  cleanupRunning: [
    {
      keys: [{ key: 'escape' }],
      command: 'back',
      label: 'Esc',
      what: 'stop after this batch (asks first)',
      short: 'Esc stop after this batch',
    },
  ],
  cleanupOver: [
    {
      keys: char('y'),
      command: 'copyRestore',
      label: 'y',
      what: 'copy the restore command (terminal clipboard, OSC 52); also printed on quit',
      short: 'y copy restore command',
    },
    {
      keys: [{ key: 'escape' }],
      command: 'back',
      label: 'Esc',
      what: 'back (rescans)',
      short: 'Esc back (rescans)',
    },
  ],
  exceptions: [
    ...DOWN_UP('exception'),
    {
      keys: [{ key: 'return' }],
      command: 'open',
      label: 'Enter',
      what: 'its detail (reason, by whom, when, expiry), or close it',
      short: 'Enter detail',
    },
    {
      keys: char('a'),
      command: 'addException',
      label: 'a',
      what: 'add (to the selected relation)',
      short: 'a add',
    },
    { keys: char('d'), command: 'removeException', label: 'd', what: 'remove' },
    { keys: char('/'), command: 'filter', label: '/', what: 'filter' },
    BACK,
  ],
  recovery: [
    ...DOWN_UP('backup'),
    { keys: [{ key: 'return' }], command: 'open', label: 'Enter', what: 'preview' },
    { keys: char('R'), command: 'restoreAll', label: 'R', what: 'restore all' },
    {
      keys: char('f'),
      command: 'restoreRef',
      label: 'f',
      what: 'restore one reference',
      short: 'f restore one ref',
    },
    {
      keys: char('/'),
      command: 'filter',
      label: '/',
      what: 'find backups holding a reference (only those are listed)',
      short: '/ find a reference',
    },
    {
      keys: char('v'),
      command: 'verify',
      label: 'v',
      what: 'verify (the found reference only, after /)',
      short: 'v verify',
    },
    BACK,
  ],
  history: [
    ...DOWN_UP('run'),
    {
      keys: [{ key: 'return' }],
      command: 'open',
      label: 'Enter',
      what: "the run's detail",
      short: 'Enter detail',
    },
    {
      keys: char('/'),
      command: 'filter',
      label: '/',
      what: 'only scans, cleanups, restores, exceptions, or all',
      short: '/ kind',
    },
    BACK,
  ],
  settings: [
    ...DOWN_UP('setting'),
    {
      keys: [{ key: 'return' }],
      command: 'open',
      label: 'Enter',
      what: 'change (saved at once)',
      short: 'Enter change',
    },
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
export function commandFor(view: KeySet, input: string, key: Partial<Key>): Command | undefined {
  for (const binding of [...BINDINGS[view], ...GLOBAL_BINDINGS])
    if (binding.keys.some((spec) => matches(spec, input, key))) return binding.command;
  return undefined;
}

/** The keys that work here in the footer's short words, then `? help` and `q quit`. */
export function footerHints(view: KeySet): string[] {
  const own = BINDINGS[view]
    .map(({ label, what, short }) => (short === undefined ? `${label} ${what}` : short))
    .filter(Boolean);
  return [...own, '? help', 'q quit'];
}
