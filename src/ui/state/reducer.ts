import type { Category } from '../../engine/scan.ts';
import type { RunKind } from '../../store/runs.ts';
import type { Prompt } from '../prompts.ts';

export const TABS: Category[] = ['orphans', 'parentInactive', 'invalidReference', 'excepted', 'ok'];

export type View =
  | { name: 'dashboard' }
  | { name: 'relation'; relation: string; tab: number; row: number; filter: string }
  | {
      name: 'document';
      relation: string;
      tab: number;
      index: number;
      scroll: number;
      /** Long arrays written out rather than one `[1536 numbers]` line. */
      expanded?: boolean;
    }
  | { name: 'cleanup'; relation: string }
  | { name: 'exceptions'; row: number; filter: string; detail?: boolean }
  | { name: 'recovery'; row: number; preview?: string }
  | { name: 'history'; row: number; kind?: RunKind; detail?: boolean }
  | { name: 'settings'; row: number };

export type { Prompt } from '../prompts.ts';

export interface UiState {
  stack: View[];
  selected: number;
  help: boolean;
  prompt?: Prompt;
  /** Counts the prompts asked, so a question asked again starts with an empty input. */
  asked: number;
  message?: { text: string; tone: 'info' | 'warn' | 'error' };
  /** When a question closed by itself (a finished run made it moot): a key meant for it is not a command. */
  dismissedAt?: number;
}

export type UiAction =
  | { type: 'open'; view: View }
  | { type: 'back' }
  | { type: 'select'; delta: number; size: number }
  | { type: 'move'; delta: number; size: number }
  | { type: 'tab'; delta: number }
  /** The viewer's first line moves by delta, kept within 0..max (the last first line that fills a page). */
  | { type: 'scroll'; delta: number; max: number }
  | { type: 'expand' }
  | { type: 'setFilter'; filter: string }
  | { type: 'preview'; dir?: string }
  /** History: the next kind shown (all, scan, clean, restore), or the selected run's detail open or closed. */
  | { type: 'historyKind' }
  | { type: 'historyDetail' }
  | { type: 'help'; open: boolean }
  | { type: 'prompt'; prompt?: Prompt }
  /** Closes the open prompt if it is one of these (a question a finished run made moot). */
  | { type: 'dismissPrompt'; ids: Prompt['id'][] }
  /** A key that arrived just after a question closed by itself was dropped (said once). */
  | { type: 'staleKey' }
  | { type: 'message'; text?: string; tone?: 'info' | 'warn' | 'error' };

export const initialUiState: UiState = { stack: [{ name: 'dashboard' }], selected: 0, help: false, asked: 0 };

export function currentView(state: UiState): View {
  return state.stack[state.stack.length - 1];
}

function clamp(value: number, size: number): number {
  return Math.max(0, Math.min(size - 1, value));
}

function replaceTop(state: UiState, view: View): UiState {
  return { ...state, stack: [...state.stack.slice(0, -1), view] };
}

/** Navigation and UI state only: pure, so every key's effect can be tested without a terminal. */
export function uiReducer(state: UiState, action: UiAction): UiState {
  const view = currentView(state);
  switch (action.type) {
    case 'open':
      return { ...state, stack: [...state.stack, action.view], message: undefined };
    case 'back':
      return state.stack.length > 1
        ? { ...state, stack: state.stack.slice(0, -1), message: undefined }
        : state;
    case 'select':
      return { ...state, selected: clamp(state.selected + action.delta, action.size) };
    case 'move':
      if (
        view.name === 'relation' ||
        view.name === 'exceptions' ||
        view.name === 'recovery' ||
        view.name === 'history' ||
        view.name === 'settings'
      ) {
        return replaceTop(state, { ...view, row: clamp(view.row + action.delta, action.size) });
      }
      return state;
    case 'tab':
      if (view.name !== 'relation') return state;
      return replaceTop(state, {
        ...view,
        tab: (view.tab + action.delta + TABS.length) % TABS.length,
        row: 0,
      });
    case 'scroll':
      if (view.name !== 'document') return state;
      return replaceTop(state, {
        ...view,
        scroll: Math.max(0, Math.min(action.max, Math.min(view.scroll, action.max) + action.delta)),
      });
    case 'expand':
      if (view.name !== 'document') return state;
      return replaceTop(state, { ...view, expanded: !view.expanded, scroll: 0 });
    case 'setFilter':
      if (view.name === 'relation' || view.name === 'exceptions')
        return replaceTop(state, { ...view, filter: action.filter, row: 0 });
      return state;
    case 'preview':
      if (view.name !== 'recovery') return state;
      return replaceTop(state, { ...view, preview: action.dir });
    case 'historyKind': {
      if (view.name !== 'history') return state;
      const kinds: (RunKind | undefined)[] = [undefined, 'scan', 'clean', 'restore', 'exception'];
      const next = kinds[(kinds.indexOf(view.kind) + 1) % kinds.length];
      return replaceTop(state, { ...view, kind: next, row: 0, detail: false });
    }
    case 'historyDetail':
      // The selected run's (or exception's) detail, open or closed.
      if (view.name !== 'history' && view.name !== 'exceptions') return state;
      return replaceTop(state, { ...view, detail: !view.detail });
    case 'help':
      return { ...state, help: action.open };
    case 'prompt':
      return { ...state, prompt: action.prompt, asked: state.asked + (action.prompt ? 1 : 0) };
    case 'dismissPrompt':
      return state.prompt && action.ids.includes(state.prompt.id)
        ? { ...state, prompt: undefined, dismissedAt: Date.now() }
        : state;
    case 'staleKey':
      return { ...state, dismissedAt: undefined };
    case 'message':
      return {
        ...state,
        message: action.text ? { text: action.text, tone: action.tone ?? 'info' } : undefined,
      };
  }
}
