import { Box, useApp, useStdout } from 'ink';
import { useEffect, useState } from 'react';
import { Footer } from './components/Footer.tsx';
import { Header } from './components/Header.tsx';
import { HelpOverlay } from './components/HelpOverlay.tsx';
import { PromptLine } from './components/Prompt.tsx';
import { useAllChildren } from './hooks/use-all-children.ts';
import { useConsoleActions } from './hooks/use-console-actions.ts';
import { useCurrentReducer, useKeys } from './hooks/use-current-state.ts';
import { commandFor } from './keymap.ts';
import { routeCommand } from './routing.ts';
import { ScreenBody } from './ScreenBody.tsx';
import { visibleSamples } from './screens/RelationReview.tsx';
import type { ConsoleServices } from './services.ts';
import { currentView, initialUiState, uiReducer } from './state/reducer.ts';

/** Terminal size, following resizes. */
function useTerminalSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns || 100, rows: stdout.rows || 30 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  });
  return size;
}

/**
 * The operator console: key → command (keymap.ts) → action (routing.ts, on use-console-actions), and the
 * layout. Every database action goes through the injected services (the headless engine).
 */
export function App({ services }: { services: ConsoleServices }) {
  const { exit } = useApp();
  const { columns, rows } = useTerminalSize();
  const [ui, dispatch, currentUi] = useCurrentReducer(uiReducer, initialUiState);
  const { state, actions } = useConsoleActions(services, dispatch);
  const view = currentView(ui);
  const allChildren = useAllChildren(
    services,
    view.name === 'relation'
      ? view
      : view.name === 'document'
        ? { relation: view.relation, tab: view.tab, row: view.index }
        : {},
  );
  const bodyHeight = Math.max(8, rows - 7 - (state.statuses?.length ?? 1));

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
    const command = commandFor(current.name, input, key);
    if (!command) return;
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
      />
      <Box flexDirection="column" marginY={1}>
        {ui.help ? (
          <HelpOverlay view={view.name} />
        ) : (
          <ScreenBody
            view={view}
            selected={ui.selected}
            state={state}
            services={services}
            all={allChildren.all}
            width={columns}
            height={bodyHeight}
          />
        )}
      </Box>
      {ui.prompt && (
        <PromptLine
          key={ui.asked}
          label={ui.prompt.label}
          onSubmit={(value) => void actions.answer(ui.prompt!, value, view.name === 'exceptions')}
        />
      )}
      <Footer view={view.name} message={ui.message} />
    </Box>
  );
}
