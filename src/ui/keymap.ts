import type { View } from './state/reducer.ts';

/** Every key of every screen, in one place: the footer and the `?` overlay are drawn from it. */
export const KEYS: Record<View['name'], [keys: string, what: string][]> = {
  dashboard: [
    ['↑↓ j k', 'select relation'],
    ['Enter', 'review samples'],
    ['c', 'clean up (plan first)'],
    ['r', 'rescan / retry'],
    ['u', 'resume an unfinished scan'],
    ['e', 'exceptions'],
    ['b', 'backups & restore'],
    ['h', 'history'],
    ['s', 'settings'],
    ['?', 'help'],
    ['q', 'quit'],
  ],
  relation: [
    ['← → h l Tab ⇧Tab', 'category'],
    ['↑↓ j k PgUp PgDn g G', 'sample'],
    ['a', 'every child (orphans, inactive)'],
    ['Enter', 'whole document'],
    ['x', 'allow-list (exception)'],
    ['/', 'filter'],
    ['c', 'clean up'],
    ['Esc', 'back'],
  ],
  document: [
    ['↑↓ j k', 'scroll'],
    ['x', 'allow-list'],
    ['Esc', 'back'],
  ],
  cleanup: [
    ['type + Enter', 'confirm'],
    ['Esc', 'cancel / stop after this batch'],
  ],
  exceptions: [
    ['↑↓ j k', 'select'],
    ['a', 'add (to the selected relation)'],
    ['d', 'remove'],
    ['/', 'filter'],
    ['Esc', 'back'],
  ],
  recovery: [
    ['↑↓ j k', 'select backup'],
    ['Enter', 'preview'],
    ['R', 'restore all'],
    ['f', 'restore one reference'],
    ['v', 'verify'],
    ['Esc', 'back'],
  ],
  history: [
    ['↑↓ j k', 'select'],
    ['Esc', 'back'],
  ],
  settings: [
    ['↑↓ j k', 'select'],
    ['Enter', 'change (saved at once)'],
    ['Esc', 'back'],
  ],
};

/** The line of keys that work here, for the footer. */
export function footerHints(view: View['name']): string {
  return KEYS[view]
    .filter(([keys]) => keys !== '?')
    .map(([keys, what]) => `${keys} ${what}`)
    .join(' · ');
}
