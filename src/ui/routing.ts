import { escapeForTerminal } from '../terminal-text.ts';
import type { Sample } from '../engine/scan.ts';
import type { useAllChildren } from './hooks/use-all-children.ts';
import { type ConsoleActions, type ConsoleState, visibleBackups } from './hooks/use-console-actions.ts';
import type { Command } from './keymap.ts';
import { RESTORE_WORD, STOP_WORD } from './prompts.ts';
import { visibleExceptions, visibleRuns } from './screens/Lists.tsx';
import { documentLines } from './screens/RelationReview.tsx';
import { EDITABLE_SETTINGS, settingValue } from './screens/Settings.tsx';
import type { ConsoleServices } from './services.ts';
import type { UiAction, View } from './state/reducer.ts';

/** What the routing needs from the console: its state, its actions and how to change screens. */
export interface RouteContext {
  dispatch: (action: UiAction) => void;
  state: ConsoleState;
  actions: ConsoleActions;
  services: ConsoleServices;
  allChildren: ReturnType<typeof useAllChildren>;
  /** The rows of a review tab (samples, or every child when asked). */
  samplesOf: (relation: string, tab: number, filter: string) => Sample[];
  /** Rows a page moves by. */
  pageSize: number;
  selectedRelation?: string;
  exit: () => void;
  /** Puts text on the terminal's clipboard (OSC 52). */
  copy: (text: string) => void;
  /** The restore command of the cleanup on screen, once it has run. */
  restoreCommand?: string;
}

function askStop(ctx: RouteContext, quit: boolean) {
  ctx.dispatch({
    type: 'prompt',
    prompt: {
      id: quit ? 'confirmQuit' : 'confirmStop',
      label: quit
        ? `A delete is running. Stop after the current batch? Type ${STOP_WORD} and Enter.`
        : `Stop after the current batch? Type ${STOP_WORD} and Enter (Esc keeps going).`,
    },
  });
}

/** What a command does on a screen (which key means which command is keymap.ts's). */
export function routeCommand(ctx: RouteContext, view: View, command: Command) {
  const { dispatch, state, actions } = ctx;
  switch (command) {
    case 'interrupt':
    case 'quit':
      if (actions.cleanupRunning) askStop(ctx, command === 'quit');
      else ctx.exit();
      return;
    case 'help':
      return dispatch({ type: 'help', open: true });
    case 'back':
      if (view.name === 'cleanup' && actions.cleanupRunning) return askStop(ctx, false);
      if (view.name === 'cleanup' && state.cleanup?.phase === 'summary') void actions.scan();
      if (view.name === 'recovery' && view.preview) {
        dispatch({ type: 'preview', dir: undefined });
        return actions.previewBackup(undefined);
      }
      // Esc closes the innermost thing: a run's detail, then the history.
      if ((view.name === 'history' || view.name === 'exceptions') && view.detail)
        return dispatch({ type: 'historyDetail' });
      return dispatch({ type: 'back' });
  }
  const step = command === 'down' ? 1 : command === 'up' ? -1 : 0;
  switch (view.name) {
    case 'dashboard':
      return routeDashboard(ctx, command, step);
    case 'relation':
      return routeReview(ctx, view, command);
    case 'document': {
      const sample = ctx.samplesOf(view.relation, view.tab, '')[view.index];
      const page = Math.max(3, ctx.pageSize + 3);
      const max = Math.max(0, documentLines(sample, Boolean(view.expanded)).length - page);
      const moves: Partial<Record<Command, number>> = {
        down: 1,
        up: -1,
        pageDown: page,
        pageUp: -page,
        first: -Number.MAX_SAFE_INTEGER,
        last: Number.MAX_SAFE_INTEGER,
      };
      const delta = moves[command];
      if (delta !== undefined) dispatch({ type: 'scroll', delta, max });
      else if (command === 'expand') dispatch({ type: 'expand' });
      else if (command === 'allowList') actions.markException(view.relation, sample);
      return;
    }
    case 'exceptions': {
      const visible = visibleExceptions(state.exceptions ?? [], view.filter);
      if (step) dispatch({ type: 'move', delta: step, size: visible.length });
      else if (command === 'open' && visible[view.row]) dispatch({ type: 'historyDetail' });
      else if (command === 'filter')
        dispatch({
          type: 'prompt',
          prompt: { id: 'filter', label: 'Filter exceptions, Enter applies, empty clears:' },
        });
      else if (
        command === 'addException' &&
        ctx.selectedRelation &&
        !actions.refuseReadOnly('adding exceptions')
      )
        dispatch({
          type: 'prompt',
          prompt: {
            id: 'exceptionValue',
            label: `Allow-list in ${ctx.selectedRelation}: d:<child _id> or r:<reference>, Enter:`,
            subject: ctx.selectedRelation,
          },
        });
      else if (
        command === 'removeException' &&
        visible[view.row] &&
        !actions.refuseReadOnly('removing exceptions')
      )
        dispatch({
          type: 'prompt',
          prompt: {
            id: 'confirmRemove',
            label: `Remove this exception? Its children count again from the next scan and their grace period starts then (time excepted does not count); after it they may be deleted. Type ${STOP_WORD} and Enter.`,
            subject: visible[view.row],
          },
        });
      return;
    }
    case 'recovery':
      return routeRecovery(ctx, view, command, step);
    case 'history':
      if (step)
        dispatch({ type: 'move', delta: step, size: visibleRuns(state.history ?? [], view.kind).length });
      else if (command === 'open') dispatch({ type: 'historyDetail' });
      else if (command === 'filter') dispatch({ type: 'historyKind' });
      return;
    case 'settings': {
      const setting = EDITABLE_SETTINGS[view.row];
      if (step) dispatch({ type: 'move', delta: step, size: EDITABLE_SETTINGS.length });
      else if (command === 'open')
        dispatch({
          type: 'prompt',
          prompt: {
            id: 'editSetting',
            label: `New ${setting.label} (now: ${settingValue(ctx.services.settings, setting.field) || 'not set'}), Enter saves, Esc cancels:`,
            subject: setting.field,
          },
        });
      return;
    }
    case 'cleanup':
      if (command !== 'copyRestore') return;
      if (!ctx.restoreCommand)
        return actions.say('no restore command yet: it exists once the cleanup has run', 'warn');
      ctx.copy(ctx.restoreCommand);
      return actions.say(
        `copied to the terminal clipboard (OSC 52, if your terminal allows it): ${ctx.restoreCommand}; printed again when you quit`,
      );
  }
}

function routeDashboard(ctx: RouteContext, command: Command, step: number) {
  const { dispatch, actions, selectedRelation } = ctx;
  if (step) dispatch({ type: 'select', delta: step, size: ctx.services.relations.length });
  else if (command === 'open' && selectedRelation)
    dispatch({
      type: 'open',
      view: { name: 'relation', relation: selectedRelation, tab: 0, row: 0, filter: '' },
    });
  else if (command === 'rescan') void actions.scan();
  else if (command === 'resume') void actions.scan({ resume: true });
  else if (command === 'clean' && selectedRelation) void actions.startCleanup(selectedRelation);
  else if (command === 'exceptions') {
    dispatch({ type: 'open', view: { name: 'exceptions', row: 0, filter: '' } });
    void actions.loadExceptions();
  } else if (command === 'backups') {
    dispatch({ type: 'open', view: { name: 'recovery', row: 0 } });
    actions.openBackups();
  } else if (command === 'history') {
    dispatch({ type: 'open', view: { name: 'history', row: 0 } });
    actions.openHistory();
  } else if (command === 'settings') dispatch({ type: 'open', view: { name: 'settings', row: 0 } });
}

function routeReview(ctx: RouteContext, view: Extract<View, { name: 'relation' }>, command: Command) {
  const { dispatch, actions, allChildren } = ctx;
  const rows = ctx.samplesOf(view.relation, view.tab, view.filter);
  const size = rows.length;
  const moves: Partial<Record<Command, number>> = {
    down: 1,
    up: -1,
    pageDown: ctx.pageSize,
    pageUp: -ctx.pageSize,
    first: -size,
    last: size,
  };
  const delta = moves[command];
  if (delta !== undefined) dispatch({ type: 'move', delta, size });
  else if (command === 'everyChild') {
    if (allChildren.toggle(view.relation, view.tab)) dispatch({ type: 'move', delta: -view.row, size });
    else actions.say('a lists every child of the Orphans and Parent inactive tabs', 'warn');
  } else if (command === 'previousTab' || command === 'nextTab')
    dispatch({ type: 'tab', delta: command === 'nextTab' ? 1 : -1 });
  else if (command === 'filter')
    dispatch({
      type: 'prompt',
      prompt: { id: 'filter', label: 'Filter samples (text in the document), Enter applies, empty clears:' },
    });
  else if (command === 'clean') void actions.startCleanup(view.relation);
  else if (command === 'open' && size) {
    if (allChildren.all) void allChildren.loadDocument(view.relation, rows[view.row]);
    dispatch({
      type: 'open',
      view: { name: 'document', relation: view.relation, tab: view.tab, index: view.row, scroll: 0 },
    });
  } else if (command === 'allowList') actions.markException(view.relation, rows[view.row]);
}

function routeRecovery(
  ctx: RouteContext,
  view: Extract<View, { name: 'recovery' }>,
  command: Command,
  step: number,
) {
  const { dispatch, actions } = ctx;
  const listed = visibleBackups(ctx.state);
  const backup = listed[view.row];
  const found = ctx.state.found?.ref;
  if (command === 'filter')
    return dispatch({
      type: 'prompt',
      prompt: {
        id: 'findRef',
        label: 'Find the backups holding children of this reference (parent id), Enter; empty lists all:',
      },
    });
  if (step) {
    dispatch({ type: 'move', delta: step, size: listed.length });
    actions.previewBackup(undefined);
  } else if (!backup) return;
  else if (command === 'open') {
    dispatch({ type: 'preview', dir: backup.dir });
    actions.previewBackup(backup.dir);
  } else if ((command === 'restoreAll' || command === 'restoreRef') && !actions.refuseReadOnly('restore'))
    dispatch({
      type: 'prompt',
      prompt:
        command === 'restoreAll'
          ? {
              id: 'confirmRestore',
              label: `Restore every absent document of ${backup.runId}? Type "${RESTORE_WORD}" and Enter.`,
              subject: backup.dir,
            }
          : {
              id: 'restoreRef',
              label: found
                ? `Restore from ${backup.runId} the children of reference ${escapeForTerminal(found)}: Enter (or type another reference):`
                : `Restore from ${backup.runId} only the children of this parent reference (restored content id), Enter:`,
              subject: backup.dir,
              ref: found,
            },
    });
  else if (command === 'verify') actions.verify(backup.dir);
}
