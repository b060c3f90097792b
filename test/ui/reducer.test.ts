import { describe, expect, it } from 'vitest';
import { currentView, initialUiState, TABS, uiReducer } from '../../src/ui/state/reducer.ts';

describe('console navigation state', () => {
  it('opens screens on a stack and goes back, never past the dashboard', () => {
    let state = uiReducer(initialUiState, {
      type: 'open',
      view: { name: 'relation', relation: 'r', tab: 0, row: 0, filter: '' },
    });
    expect(currentView(state).name).toBe('relation');
    state = uiReducer(state, { type: 'back' });
    state = uiReducer(state, { type: 'back' });
    expect(state.stack).toEqual([{ name: 'dashboard' }]);
  });

  it('keeps selections inside their lists and cycles category tabs', () => {
    let state = uiReducer(initialUiState, { type: 'select', delta: 5, size: 3 });
    expect(state.selected).toBe(2);
    state = uiReducer(state, {
      type: 'open',
      view: { name: 'relation', relation: 'r', tab: 0, row: 0, filter: '' },
    });
    state = uiReducer(state, { type: 'move', delta: -1, size: 10 });
    expect(currentView(state)).toMatchObject({ row: 0 });
    state = uiReducer(state, { type: 'move', delta: 3, size: 10 });
    state = uiReducer(state, { type: 'tab', delta: -1 });
    expect(currentView(state)).toMatchObject({ tab: TABS.length - 1, row: 0 });
    state = uiReducer(state, { type: 'setFilter', filter: 'abc' });
    expect(currentView(state)).toMatchObject({ filter: 'abc', row: 0 });
  });
});
