import { Box, useApp, useStdout } from 'ink';
import { useEffect, useState } from 'react';
import { Footer, footerLines } from './components/Footer.tsx';
import { Header, headerLines } from './components/Header.tsx';
import { HelpOverlay } from './components/HelpOverlay.tsx';
import { PromptLine, promptLines } from './components/Prompt.tsx';
import { useAllChildren } from './hooks/use-all-children.ts';
import { useConsoleActions } from './hooks/use-console-actions.ts';
import { staleLiveCounts, useLiveCounts } from './hooks/use-live-counts.ts';
import { useSourceLiveness } from './hooks/use-source-liveness.ts';
import { useCurrentReducer, useKeys } from './hooks/use-current-state.ts';
import { commandFor, keySetOf } from './keymap.ts';
import { routeCommand } from './routing.ts';
import { ScreenBody } from './ScreenBody.tsx';
import { visibleSamples } from './screens/RelationReview.tsx';
import type { ConsoleServices } from './services.ts';
import { currentView, initialUiState, uiReducer } from './state/reducer.ts';

/** Clears the screen and the scrollback: ESC[2J ESC[3J ESC[H. */
const CLEAR_SCREEN = '\u001b[2J\u001b[3J\u001b[H';

/**
 * Terminal size, following resizes. A terminal re-wraps what is on screen when its width changes, so Ink's
 * erase of its last frame misses lines and stale ones stay: on a resize the screen is cleared and the frame
 * drawn again whole.
 */
function useTerminalSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns || 100, rows: stdout.rows || 30 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = () => {
      if (stdout.isTTY) stdout.write(CLEAR_SCREEN);
      setSize(read());
    };
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  });
  return size;
}

/** OSC 52: asks the terminal to put `text` on the clipboard (over SSH too, where the terminal allows it). */
export function osc52(text: string): string {
  return `\u001b]52;c;${Buffer.from(text).toString('base64')}\u0007`;
}

/**
 * The operator console: key → command (keymap.ts) → action (routing.ts, on use-console-actions), and the
 * layout. Every database action goes through the injected services (the headless engine).
 */
/** How long after a question closes by itself a key is taken as meant for it. */
const STALE_ANSWER_MS = 2000;

export function App({
  services,
  exitNotes,
}: {
  services: ConsoleServices;
  /** Lines to print after the console closes (the restore command of each cleanup run in this session). */
  exitNotes?: string[];
}) {
  const { exit } = useApp();
  const { write } = useStdout();
  const { columns, rows } = useTerminalSize();
  const [ui, dispatch, currentUi] = useCurrentReducer(uiReducer, initialUiState);
  const { state, actions } = useConsoleActions(services, dispatch);
  const liveness = useSourceLiveness(services);
  const live = useLiveCounts(services, state.reports, actions.say, liveness, state.exceptionsChanged);
  const liveStale = staleLiveCounts(services, liveness);
  const view = currentView(ui);
  // The keys (and footer, and help) of this screen in its state: the cleanup screen's follow its phase.
  const keys = keySetOf(view.name, state.cleanup?.phase);
  const allChildren = useAllChildren(
    services,
    view.name === 'relation'
      ? view
      : view.name === 'document'
        ? { relation: view.relation, tab: view.tab, row: view.index }
        : {},
  );
  // The frame stays one line shorter than the terminal, so the header is never scrolled off (under a
  // prompt, a long message or a wrapped footer) and Ink never falls back to clearing the screen each frame.
  // A blank line under the header always; above the footer only in a tall terminal.
  const gap = rows >= 30 ? 1 : 0;
  const bodyHeight = Math.max(
    3,
    rows -
      1 -
      headerLines(state.statuses, columns, liveness) -
      1 -
      gap -
      (ui.prompt ? promptLines(ui.prompt.label, columns) : 0) -
      footerLines(keys, ui.message, columns, state.busy),
  );
  const restoreCommand = state.cleanup?.result?.runDir
    ? services.restoreCommand(state.cleanup.result.runDir).command
    : undefined;
  useEffect(() => {
    if (restoreCommand && exitNotes && !exitNotes.includes(restoreCommand)) exitNotes.push(restoreCommand);
  }, [restoreCommand, exitNotes]);

  useKeys((input, key) => {
    // The UI state after the last key, which may be newer than this render's (see useCurrentReducer).
    const now = currentUi();
    const current = currentView(now);
    if (now.prompt) {
      if (key.escape) actions.cancelPrompt(now.prompt);
      return;
    }
    if (now.help) {
      if (key.escape || input === '?' || input === 'q') dispatch({ type: 'help', open: false });
      return;
    }
    // A key typed for a question that has just closed by itself (the run it asked about ended) is dropped,
    // not taken as a command of the screen under it: `y` would copy, `d` remove, `c` plan again.
    if (now.dismissedAt !== undefined) {
      const stale = Date.now() - now.dismissedAt < STALE_ANSWER_MS && (key.return || input.length > 0);
      dispatch({ type: 'staleKey' });
      if (stale)
        return dispatch({
          type: 'message',
          text: 'the question had closed by itself (the run ended) before that key: it was not taken as a command',
          tone: 'warn',
        });
    }
    const command = commandFor(keySetOf(current.name, state.cleanup?.phase), input, key);
    if (!command) return;
    // The status line said what the last action did: the next action clears it (and may say its own).
    if (now.message && command !== 'help') dispatch({ type: 'message' });
    routeCommand(
      {
        dispatch,
        state,
        actions,
        services,
        allChildren,
        samplesOf: (relation, tab, filter) =>
          visibleSamples(state.reports[relation], tab, filter, allChildren.all?.rows),
        pageSize: Math.max(3, bodyHeight - 6),
        selectedRelation: services.relations[now.selected]?.name,
        exit,
        copy: (text) => write(osc52(text)),
        restoreCommand,
      },
      current,
      command,
    );
  });

  return (
    <Box flexDirection="column" width={columns}>
      <Header
        statuses={state.statuses}
        readOnly={services.readOnly}
        connectingSince={state.connectingSince}
        liveness={liveness}
      />
      <Box flexDirection="column" marginTop={1} marginBottom={gap} height={bodyHeight} overflow="hidden">
        {/* Drawn at its own height and cut at the bottom, never squeezed line by line (Yoga would shrink it). */}
        <Box flexDirection="column" flexShrink={0}>
          {ui.help ? (
            <HelpOverlay view={keys} width={columns} height={bodyHeight} />
          ) : (
            <ScreenBody
              view={view}
              selected={ui.selected}
              state={state}
              services={services}
              all={allChildren.all}
              live={live.counts}
              liveStale={liveStale}
              width={columns}
              height={bodyHeight}
            />
          )}
        </Box>
      </Box>
      {ui.prompt && (
        <PromptLine
          key={ui.asked}
          label={ui.prompt.label}
          onSubmit={(value) => void actions.answer(ui.prompt!, value, view.name === 'exceptions')}
        />
      )}
      <Footer view={keys} message={ui.message} width={columns} busy={state.busy} />
    </Box>
  );
}
