import { Box, useApp, useStdout } from 'ink';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { EditableSetting } from '../config/settings.ts';
import type { RelationReport } from '../engine/run-scan.ts';
import { redact } from '../mongo/redact.ts';
import type { ScanProgress } from '../engine/scan.ts';
import { parseValueArgument } from '../store/exception-input.ts';
import { addOutcomeText } from '../store/exceptions.ts';
import { displayValue } from '../mongo/keys.ts';
import type { ExceptionEntry } from '../store/exceptions.ts';
import type { RunRecord } from '../store/runs.ts';
import { Footer } from './components/Footer.tsx';
import { count } from './theme.ts';
import { Header } from './components/Header.tsx';
import { HelpOverlay } from './components/HelpOverlay.tsx';
import { PromptLine } from './components/Prompt.tsx';
import { type CleanupState, CleanupScreen } from './screens/Cleanup.tsx';
import { Dashboard } from './screens/Dashboard.tsx';
import { ExceptionsScreen, HistoryScreen, RecoveryScreen, visibleExceptions } from './screens/Lists.tsx';
import { DocumentView, RelationReview, visibleSamples } from './screens/RelationReview.tsx';
import { EDITABLE_SETTINGS, SettingsScreen, settingValue } from './screens/Settings.tsx';
import type {
  BackupPreview,
  BackupSummary,
  ConsoleServices,
  RelationHistory,
  SourceStatus,
} from './services.ts';
import { useAllChildren } from './hooks/use-all-children.ts';
import { useCurrentReducer, useKeys } from './hooks/use-current-state.ts';
import { currentView, initialUiState, type Prompt, uiReducer, type View } from './state/reducer.ts';
import { type Command, commandFor } from './keymap.ts';

const STOP_WORD = 'y';
const RESTORE_WORD = 'restore';

/** An error as the console shows it: its message, credentials redacted. */
function errorText(error: unknown): string {
  return redact(error instanceof Error ? error.message : String(error));
}

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
 * The operator console. Keys are routed here, in one place that knows the current screen and whether a
 * prompt is open; every database action goes through the injected services (the headless engine).
 */
export function App({ services }: { services: ConsoleServices }) {
  const { exit } = useApp();
  const { columns, rows } = useTerminalSize();
  const [ui, dispatch, currentUi] = useCurrentReducer(uiReducer, initialUiState);
  const [statuses, setStatuses] = useState<SourceStatus[]>();
  const [scanning, setScanning] = useState(false);
  const [progress, setProgress] = useState<Record<string, ScanProgress>>({});
  const [reports, setReports] = useState<Record<string, RelationReport>>({});
  const [trends, setTrends] = useState<Record<string, RelationHistory>>({});
  const [cleanup, setCleanup] = useState<CleanupState>();
  const [exceptions, setExceptions] = useState<ExceptionEntry[]>();
  const [backups, setBackups] = useState<BackupSummary[]>();
  const [preview, setPreview] = useState<BackupPreview>();
  const [recoveryLines, setRecoveryLines] = useState<string[]>([]);
  const [history, setHistory] = useState<RunRecord[]>();
  const scanAbort = useRef<AbortController>(undefined);
  const cleanupAbort = useRef<AbortController>(undefined);
  const view = currentView(ui);
  const allChildren = useAllChildren(
    services,
    view.name === 'relation'
      ? view
      : view.name === 'document'
        ? { relation: view.relation, tab: view.tab, row: view.index }
        : {},
  );
  /** The rows of a review tab: the scan's samples, or every child when `a` asked for them. */
  const samplesOf = (relation: string, tab: number, filter: string) =>
    visibleSamples(reports[relation], tab, filter, allChildren.all?.rows);
  const relations = services.relations;
  const bodyHeight = Math.max(8, rows - 7 - (statuses?.length ?? 1));
  const say = (text: string, tone: 'info' | 'warn' | 'error' = 'info') =>
    dispatch({ type: 'message', text, tone });

  /**
   * Connects and scans every relation. `resume` continues unfinished scans from their checkpoints; at start
   * (`offerResume`), unfinished scans are offered instead of being overtaken by a scan from the start.
   */
  const scan = useCallback(
    async (options: { resume?: boolean; offerResume?: boolean } = {}) => {
      scanAbort.current?.abort();
      const controller = new AbortController();
      scanAbort.current = controller;
      setScanning(true);
      setReports({});
      setProgress({});
      try {
        const connected = await services.connect();
        setStatuses(connected);
        const failed = connected.filter((s) => !s.ok);
        if (failed.length) {
          dispatch({
            type: 'message',
            text: `cannot reach ${failed.map((s) => s.name).join(', ')}: check the URI, auth, DNS, TLS; r retries`,
            tone: 'error',
          });
          return;
        }
        if (options.offerResume) {
          const unfinished = await services.unfinishedScans();
          if (unfinished.length) {
            const which = unfinished
              .map(
                (u) =>
                  `${u.relation} (${count(u.scanned)} documents, checkpoint ${u.at.toISOString().slice(0, 16).replace('T', ' ')})`,
              )
              .join(', ');
            dispatch({
              type: 'message',
              text: `unfinished scan of ${which}: u resumes it, r scans from the start`,
              tone: 'warn',
            });
            return;
          }
        }
        const report = await services.scan(
          (p) => setProgress((old) => ({ ...old, [p.relation]: p })),
          controller.signal,
          {
            resume: options.resume,
            onNotice: (text) => dispatch({ type: 'message', text, tone: 'warn' }),
          },
        );
        if (controller.signal.aborted) return;
        setReports(Object.fromEntries(report.relations.map((r) => [r.name, r])));
        const failedScan = report.relations.find((r) => r.error);
        if (failedScan)
          dispatch({
            type: 'message',
            text: `scan of ${failedScan.name} failed: ${failedScan.error}`,
            tone: 'error',
          });
        const loaded = await Promise.all(
          relations.map(async (r) => [r.name, await services.trend(r.name)] as const),
        );
        setTrends(Object.fromEntries(loaded));
      } catch (error) {
        dispatch({ type: 'message', text: errorText(error), tone: 'error' });
      } finally {
        if (scanAbort.current === controller) setScanning(false);
      }
    },
    [services, relations, dispatch],
  );

  useEffect(() => {
    void scan({ offerResume: true });
    return () => scanAbort.current?.abort();
  }, [scan]);

  const refuseReadOnly = (what: string): boolean => {
    if (!services.readOnly) return false;
    say(`read-only mode: ${what} is disabled (start without --read-only to change data)`, 'warn');
    return true;
  };

  /** The question a prompt asks on behalf of the cleanup pipeline, answered by typing (or Esc: no). */
  const pendingAnswer = useRef<(accepted: boolean) => void>(undefined);
  const ask = (prompt: Prompt) =>
    new Promise<boolean>((resolve) => {
      pendingAnswer.current = resolve;
      dispatch({ type: 'prompt', prompt });
    });
  const settleAnswer = (accepted: boolean) => {
    const resolve = pendingAnswer.current;
    pendingAnswer.current = undefined;
    resolve?.(accepted);
  };

  /** A cleanup of one relation from the scan on screen, through the product's one cleanup pipeline. */
  const startCleanup = async (relation: string) => {
    if (refuseReadOnly('cleanup')) return;
    const report = reports[relation];
    if (!report) {
      say('wait for the scan of this relation to finish', 'warn');
      return;
    }
    const controller = new AbortController();
    cleanupAbort.current = controller;
    setCleanup({ relation, phase: 'planning', allowUnsafe: false, stopping: false });
    dispatch({ type: 'open', view: { name: 'cleanup', relation } });
    try {
      const outcome = await services.clean(report, {
        signal: controller.signal,
        onPlan: (plan) => setCleanup((old) => old && { ...old, phase: 'plan', plan }),
        askOverride: async () => {
          const accepted = await ask({
            id: 'overridePhrase',
            label: `This relation is UNSAFE. To proceed anyway type "override ${relation}". Esc cancels.`,
            subject: relation,
          });
          if (accepted) setCleanup((old) => old && { ...old, allowUnsafe: true });
          return accepted;
        },
        confirm: async (plan) => {
          const accepted = await ask({
            id: 'confirmName',
            label: `Type "${relation}" and Enter to back up and delete ${count(plan.relations[0].toDelete)} documents. Esc cancels.`,
            subject: relation,
          });
          if (accepted) setCleanup((old) => old && { ...old, phase: 'running' });
          return accepted;
        },
        onProgress: (p) => setCleanup((old) => old && { ...old, progress: p }),
      });
      if (outcome.kind === 'executed')
        setCleanup((old) => old && { ...old, phase: 'summary', result: outcome.result });
    } catch (error) {
      setCleanup((old) => old && { ...old, phase: 'error', error: errorText(error) });
    } finally {
      if (cleanupAbort.current === controller) cleanupAbort.current = undefined;
    }
  };

  const cleanupRunning = cleanup?.phase === 'running';

  const loadExceptions = async () => {
    setExceptions(undefined);
    try {
      setExceptions(await services.exceptions());
    } catch (error) {
      say(errorText(error), 'error');
      setExceptions([]);
    }
  };
  const loadBackups = async () => {
    setBackups(await services.backups());
  };

  const selectedSample = (view: View) => {
    if (view.name === 'relation') return samplesOf(view.relation, view.tab, view.filter)[view.row];
    if (view.name === 'document') return samplesOf(view.relation, view.tab, '')[view.index];
    return undefined;
  };

  const selectedBackup = (view: View) => (view.name === 'recovery' ? backups?.[view.row] : undefined);

  /** The last step of adding an exception, from a sample or from the exceptions screen: the reason. */
  const askReason = (relation: string, kind: 'document' | 'reference', value: unknown) =>
    dispatch({
      type: 'prompt',
      prompt: {
        id: 'exceptionReason',
        label: 'Reason for the exception (required), Enter to save, Esc cancels:',
        subject: { relation, kind, value },
      },
    });

  const answer = async (prompt: Prompt, value: string) => {
    dispatch({ type: 'prompt', prompt: undefined });
    const text = value.trim();
    switch (prompt.id) {
      case 'filter':
        dispatch({ type: 'setFilter', filter: text });
        return;
      case 'overridePhrase':
        if (text !== `override ${prompt.subject}`)
          say(`typed "${text}", expected "override ${prompt.subject}": nothing deleted`, 'warn');
        settleAnswer(text === `override ${prompt.subject}`);
        return;
      case 'confirmName':
        if (text !== prompt.subject)
          say(`typed "${text}", expected "${prompt.subject}": nothing deleted`, 'warn');
        settleAnswer(text === prompt.subject);
        return;
      case 'confirmStop':
      case 'confirmQuit':
        if (text.toLowerCase() !== STOP_WORD) return;
        cleanupAbort.current?.abort();
        setCleanup((old) => old && { ...old, stopping: true });
        if (prompt.id === 'confirmQuit')
          say('stopping after the current batch; quit again when it is done', 'warn');
        return;
      case 'exceptionKind': {
        const sample = prompt.subject as { relation: string; id: unknown; reference: unknown };
        if (text !== 'd' && text !== 'r') {
          say('type d (this document) or r (every child of this reference)', 'warn');
          return;
        }
        askReason(
          sample.relation,
          text === 'd' ? 'document' : 'reference',
          text === 'd' ? sample.id : sample.reference,
        );
        return;
      }
      case 'exceptionReason': {
        const subject = prompt.subject as {
          relation: string;
          kind: 'document' | 'reference';
          value: unknown;
        };
        if (!text) {
          say('a reason is required: nothing was added', 'warn');
          return;
        }
        try {
          const added = await services.addException(subject.relation, subject.kind, subject.value, text);
          say(
            `${addOutcomeText(added, subject.kind, displayValue(subject.value), subject.relation)}${added.outcome === 'exists' ? '' : '; rescanning'}`,
          );
          if (view.name === 'exceptions') await loadExceptions();
          void scan();
        } catch (error) {
          say(errorText(error), 'error');
        }
        return;
      }
      case 'exceptionValue': {
        const match = /^([dr]):(.+)$/.exec(text);
        if (!match) {
          say('type d:<child _id> or r:<reference>', 'warn');
          return;
        }
        askReason(
          prompt.subject as string,
          match[1] === 'd' ? 'document' : 'reference',
          parseValueArgument(match[2]),
        );
        return;
      }
      case 'confirmRemove': {
        if (text.toLowerCase() !== STOP_WORD) return;
        try {
          await services.removeException(prompt.subject as ExceptionEntry);
          say('exception removed');
          await loadExceptions();
        } catch (error) {
          say(errorText(error), 'error');
        }
        return;
      }
      case 'editSetting': {
        const field = prompt.subject as EditableSetting;
        try {
          services.updateSetting(field, text);
          const saved = services.settingsInfo().file ? 'saved' : 'changed for this session';
          say(
            `${EDITABLE_SETTINGS.find((setting) => setting.field === field)?.label} ${saved}: ${settingValue(services.settings, field)}`,
          );
        } catch (error) {
          say(`${errorText(error)}: nothing changed`, 'warn');
        }
        return;
      }
      case 'confirmRestore':
      case 'restoreRef': {
        const dir = prompt.subject as string;
        if (prompt.id === 'confirmRestore' && text !== RESTORE_WORD) {
          say(`typed "${text}", expected "${RESTORE_WORD}": nothing restored`, 'warn');
          return;
        }
        if (prompt.id === 'restoreRef' && !text) return;
        try {
          say('restoring…');
          const result = await services.restore(dir, prompt.id === 'restoreRef' ? { ref: text } : {});
          setRecoveryLines([
            ...result.notes.map((note) => `note: ${note}`),
            ...result.relations.map(
              (r) =>
                `restored ${r.name}: inserted ${r.inserted} of ${r.selected}, ${r.skippedExisting} already present`,
            ),
          ]);
          say('restore done; v verifies');
        } catch (error) {
          say(errorText(error), 'error');
        }
        return;
      }
    }
  };

  const askStop = (id: 'confirmStop' | 'confirmQuit') =>
    dispatch({
      type: 'prompt',
      prompt: {
        id,
        label:
          id === 'confirmQuit'
            ? `A delete is running. Stop after the current batch? Type ${STOP_WORD} and Enter.`
            : `Stop after the current batch? Type ${STOP_WORD} and Enter (Esc keeps going).`,
      },
    });

  /** What each command does on each screen (the keys are in keymap.ts). */
  const route = (view: View, command: Command, selectedRelation: string | undefined) => {
    const step = command === 'down' ? 1 : command === 'up' ? -1 : 0;
    switch (command) {
      case 'interrupt':
      case 'quit':
        if (cleanupRunning) askStop(command === 'quit' ? 'confirmQuit' : 'confirmStop');
        else exit();
        return;
      case 'help':
        dispatch({ type: 'help', open: true });
        return;
      case 'back':
        if (view.name === 'cleanup' && cleanupRunning) return askStop('confirmStop');
        if (view.name === 'cleanup' && cleanup?.phase === 'summary') void scan();
        if (view.name === 'recovery' && view.preview) {
          dispatch({ type: 'preview', dir: undefined });
          setPreview(undefined);
          return;
        }
        dispatch({ type: 'back' });
        return;
    }
    switch (view.name) {
      case 'dashboard':
        if (step) dispatch({ type: 'select', delta: step, size: relations.length });
        else if (command === 'open' && selectedRelation)
          dispatch({
            type: 'open',
            view: { name: 'relation', relation: selectedRelation, tab: 0, row: 0, filter: '' },
          });
        else if (command === 'rescan') void scan();
        else if (command === 'resume') void scan({ resume: true });
        else if (command === 'clean' && selectedRelation) void startCleanup(selectedRelation);
        else if (command === 'exceptions') {
          dispatch({ type: 'open', view: { name: 'exceptions', row: 0, filter: '' } });
          void loadExceptions();
        } else if (command === 'backups') {
          setPreview(undefined);
          setRecoveryLines([]);
          dispatch({ type: 'open', view: { name: 'recovery', row: 0 } });
          void loadBackups();
        } else if (command === 'history') {
          setHistory(undefined);
          dispatch({ type: 'open', view: { name: 'history', row: 0 } });
          void services.history().then(setHistory);
        } else if (command === 'settings') dispatch({ type: 'open', view: { name: 'settings', row: 0 } });
        return;
      case 'relation': {
        const size = samplesOf(view.relation, view.tab, view.filter).length;
        const page = Math.max(3, bodyHeight - 6);
        const moves: Partial<Record<Command, number>> = {
          down: 1,
          up: -1,
          pageDown: page,
          pageUp: -page,
          first: -size,
          last: size,
        };
        const delta = moves[command];
        if (delta !== undefined) dispatch({ type: 'move', delta, size });
        else if (command === 'everyChild') {
          if (allChildren.toggle(view.relation, view.tab)) dispatch({ type: 'move', delta: -view.row, size });
          else say('a lists every child of the Orphans and Parent inactive tabs', 'warn');
        } else if (command === 'previousTab' || command === 'nextTab')
          dispatch({ type: 'tab', delta: command === 'nextTab' ? 1 : -1 });
        else if (command === 'filter')
          dispatch({
            type: 'prompt',
            prompt: {
              id: 'filter',
              label: 'Filter samples (text in the document), Enter applies, empty clears:',
            },
          });
        else if (command === 'clean') void startCleanup(view.relation);
        else if (command === 'open') {
          const sample = samplesOf(view.relation, view.tab, view.filter)[view.row];
          if (sample && allChildren.all) void allChildren.loadDocument(view.relation, sample);
          if (size)
            dispatch({
              type: 'open',
              view: { name: 'document', relation: view.relation, tab: view.tab, index: view.row, scroll: 0 },
            });
        } else if (command === 'allowList') markException(view);
        return;
      }
      case 'document':
        if (step) dispatch({ type: 'scroll', delta: step });
        else if (command === 'allowList') markException(view);
        return;
      case 'exceptions': {
        const visible = visibleExceptions(exceptions ?? [], view.filter);
        if (step) dispatch({ type: 'move', delta: step, size: visible.length });
        else if (command === 'filter')
          dispatch({
            type: 'prompt',
            prompt: { id: 'filter', label: 'Filter exceptions, Enter applies, empty clears:' },
          });
        else if (command === 'addException' && selectedRelation) {
          if (refuseReadOnly('adding exceptions')) return;
          dispatch({
            type: 'prompt',
            prompt: {
              id: 'exceptionValue',
              label: `Allow-list in ${selectedRelation}: d:<child _id> or r:<reference>, Enter:`,
              subject: selectedRelation,
            },
          });
        } else if (command === 'removeException' && visible[view.row]) {
          if (refuseReadOnly('removing exceptions')) return;
          dispatch({
            type: 'prompt',
            prompt: {
              id: 'confirmRemove',
              label: `Remove this exception? It may then be deleted. Type ${STOP_WORD} and Enter.`,
              subject: visible[view.row],
            },
          });
        }
        return;
      }
      case 'recovery': {
        const backup = selectedBackup(view);
        if (step) {
          dispatch({ type: 'move', delta: step, size: backups?.length ?? 0 });
          setPreview(undefined);
        } else if (command === 'open' && backup) {
          dispatch({ type: 'preview', dir: backup.dir });
          void services.previewBackup(backup.dir).then(setPreview);
        } else if ((command === 'restoreAll' || command === 'restoreRef') && backup) {
          if (refuseReadOnly('restore')) return;
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
                    label: 'Restore only the children of this parent reference (restored content id), Enter:',
                    subject: backup.dir,
                  },
          });
        } else if (command === 'verify' && backup) {
          void services
            .verify(backup.dir, {})
            .then((result) =>
              setRecoveryLines(
                result.relations.map(
                  (r) =>
                    `verify ${r.name}: ${r.backedUp} backed up, ${r.present} present, ${r.absent} absent`,
                ),
              ),
            )
            .catch((error) => say(errorText(error), 'error'));
        }
        return;
      }
      case 'history':
        if (step) dispatch({ type: 'move', delta: step, size: history?.length ?? 0 });
        return;
      case 'settings': {
        const setting = EDITABLE_SETTINGS[view.row];
        if (step) dispatch({ type: 'move', delta: step, size: EDITABLE_SETTINGS.length });
        else if (command === 'open')
          dispatch({
            type: 'prompt',
            prompt: {
              id: 'editSetting',
              label: `New ${setting.label} (now: ${settingValue(services.settings, setting.field) || 'not set'}), Enter saves, Esc cancels:`,
              subject: setting.field,
            },
          });
        return;
      }
      case 'cleanup':
        return;
    }
  };

  useKeys((input, key) => {
    // The UI state after the last key, which may be newer than this render's (see useCurrentReducer).
    const ui = currentUi();
    const view = currentView(ui);
    const selectedRelation = relations[ui.selected]?.name;
    if (ui.prompt) {
      if (key.escape) {
        dispatch({ type: 'prompt', prompt: undefined });
        if (ui.prompt.id === 'confirmName' || ui.prompt.id === 'overridePhrase') {
          say('cancelled: nothing deleted');
          settleAnswer(false);
        }
      }
      return;
    }
    if (ui.help) {
      if (key.escape || input === '?' || input === 'q') dispatch({ type: 'help', open: false });
      return;
    }
    const command = commandFor(view.name, input, key);
    if (command) route(view, command, selectedRelation);
  });

  function markException(view: View & { relation: string }) {
    const { relation } = view;
    if (refuseReadOnly('adding exceptions')) return;
    const sample = selectedSample(view);
    if (!sample) return;
    dispatch({
      type: 'prompt',
      prompt: {
        id: 'exceptionKind',
        label: 'Allow-list: type d for this document, r for every child of its reference, then Enter:',
        subject: { relation, id: sample.id, reference: sample.reference },
      },
    });
  }

  const body = () => {
    switch (view.name) {
      case 'dashboard':
        return (
          <Dashboard
            relations={relations}
            selected={ui.selected}
            progress={progress}
            reports={reports}
            trends={trends}
            scanning={scanning}
            width={columns}
          />
        );
      case 'relation':
        return (
          <RelationReview
            report={reports[view.relation]}
            tab={view.tab}
            row={view.row}
            filter={view.filter}
            all={allChildren.all}
            width={columns}
            height={bodyHeight}
          />
        );
      case 'document':
        return (
          <DocumentView
            sample={samplesOf(view.relation, view.tab, '')[view.index]}
            scroll={view.scroll}
            height={bodyHeight}
          />
        );
      case 'cleanup':
        return cleanup ? <CleanupScreen state={cleanup} /> : null;
      case 'exceptions':
        return (
          <ExceptionsScreen entries={exceptions} row={view.row} filter={view.filter} height={bodyHeight} />
        );
      case 'recovery':
        return (
          <RecoveryScreen
            backups={backups}
            row={view.row}
            preview={preview}
            lines={recoveryLines}
            height={bodyHeight}
          />
        );
      case 'history':
        return <HistoryScreen runs={history} row={view.row} height={bodyHeight} />;
      case 'settings':
        return <SettingsScreen settings={services.settings} info={services.settingsInfo()} row={view.row} />;
    }
  };

  return (
    <Box flexDirection="column" width={columns}>
      <Header statuses={statuses} readOnly={services.readOnly} />
      <Box flexDirection="column" marginY={1}>
        {ui.help ? <HelpOverlay view={view.name} /> : body()}
      </Box>
      {ui.prompt && (
        <PromptLine
          key={ui.prompt.id}
          label={ui.prompt.label}
          onSubmit={(value) => void answer(ui.prompt!, value)}
        />
      )}
      <Footer view={view.name} message={ui.message} />
    </Box>
  );
}
