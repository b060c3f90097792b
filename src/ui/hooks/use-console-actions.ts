// Over 300 lines: the console's state and every action on the databases, kept apart from keys and layout.
import { useCallback, useEffect, useRef, useState } from 'react';
import type { RelationReport } from '../../engine/run-scan.ts';
import type { ScanProgress } from '../../engine/scan.ts';
import { displayValue } from '../../mongo/keys.ts';
import { parseValueArgument, valueArgument } from '../../store/exception-input.ts';
import { escapeForTerminal } from '../../terminal-text.ts';
import { redact } from '../../mongo/redact.ts';
import {
  addOutcomeText,
  type ExceptionEntry,
  type ExceptionKind,
  exceptionKey,
} from '../../store/exceptions.ts';
import type { BusyWait } from '../components/Footer.tsx';
import type { RunRecord } from '../../store/runs.ts';
import { answerPrompt, type Prompt } from '../prompts.ts';
import type { CleanupState } from '../screens/Cleanup.tsx';
import { EDITABLE_SETTINGS, settingValue } from '../screens/Settings.tsx';
import type {
  BackupPreview,
  BackupSummary,
  ConsoleServices,
  RelationHistory,
  SourceStatus,
} from '../services.ts';
import type { UiAction } from '../state/reducer.ts';
import { count } from '../theme.ts';

/** An error as the console shows it: its message, credentials redacted. */
export function errorText(error: unknown): string {
  return redact(error instanceof Error ? error.message : String(error));
}

export type Tone = 'info' | 'warn' | 'error';

/** Everything the console shows that came from the databases. */
export interface ConsoleState {
  statuses?: SourceStatus[];
  scanning: boolean;
  progress: Record<string, ScanProgress>;
  /** The last complete figures per relation: kept on screen, with their time, while a rescan runs or fails. */
  reports: Record<string, RelationReport>;
  scannedAt?: Date;
  /** Relations whose last scan failed: their figures on screen are the last known ones. */
  staleRelations: string[];
  /** When the current connection attempt began (the header counts the seconds against its timeout). */
  connectingSince?: number;
  trends: Record<string, RelationHistory>;
  cleanup?: CleanupState;
  exceptions?: ExceptionEntry[];
  /** Why the exceptions could not be read (the list is then unknown, not empty). */
  exceptionsError?: string;
  /** The relation whose exceptions changed last (a counter makes each change new). */
  exceptionsChanged?: { relation: string; n: number };
  backups?: BackupSummary[];
  preview?: BackupPreview;
  recoveryLines: string[];
  /** The reference searched with `/` on the backups screen: only the backups holding it are listed, `v` verifies it. */
  found?: { ref: string; dirs: string[] };
  history?: RunRecord[];
  /** A long wait under way, shown with its elapsed time and bound. */
  busy?: BusyWait;
}

/** The backups the recovery screen lists: those holding the searched reference, or all. */
export function visibleBackups(state: Pick<ConsoleState, 'backups' | 'found'>): BackupSummary[] {
  const all = state.backups ?? [];
  return state.found ? all.filter((b) => state.found!.dirs.includes(b.dir)) : all;
}

/**
 * The console's state and its actions on the databases, apart from keys and layout (as gemini-cli keeps
 * UI state and UI actions apart): the screens read `state`, the key routing calls `actions`.
 */
export function useConsoleActions(services: ConsoleServices, dispatch: (action: UiAction) => void) {
  const [statuses, setStatuses] = useState<SourceStatus[]>();
  const [scanning, setScanning] = useState(false);
  const [progress, setProgress] = useState<Record<string, ScanProgress>>({});
  const [found, setFound] = useState<ConsoleState['found']>();
  const [busy, setBusy] = useState<BusyWait>();
  /** Runs `work` with its wait on screen: what, for how long, and what bounds it. */
  const whileBusy = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    setBusy({ what, since: Date.now(), bound: services.waitBound });
    try {
      return await work();
    } finally {
      setBusy(undefined);
    }
  };
  const [reports, setReports] = useState<Record<string, RelationReport>>({});
  const [scannedAt, setScannedAt] = useState<Date>();
  const [staleRelations, setStaleRelations] = useState<string[]>([]);
  const [connectingSince, setConnectingSince] = useState<number>();
  const [trends, setTrends] = useState<Record<string, RelationHistory>>({});
  const [cleanup, setCleanup] = useState<CleanupState>();
  const [exceptions, setExceptions] = useState<ExceptionEntry[]>();
  /** The relation whose exceptions changed last, and a counter: its live counts start again from a snapshot. */
  const [exceptionsChanged, setExceptionsChanged] = useState<{ relation: string; n: number }>();
  const [exceptionsError, setExceptionsError] = useState<string>();
  const [backups, setBackups] = useState<BackupSummary[]>();
  const [preview, setPreview] = useState<BackupPreview>();
  const [recoveryLines, setRecoveryLines] = useState<string[]>([]);
  const [history, setHistory] = useState<RunRecord[]>();
  const scanAbort = useRef<AbortController>(undefined);
  const cleanupAbort = useRef<AbortController>(undefined);
  /** The question a prompt asks on behalf of the cleanup pipeline, answered by typing (or Esc: no). */
  const pendingAnswer = useRef<(accepted: boolean) => void>(undefined);
  const relations = services.relations;
  const say = useCallback(
    (text: string, tone: Tone = 'info') => dispatch({ type: 'message', text, tone }),
    [dispatch],
  );

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
      setProgress({});
      try {
        setConnectingSince(Date.now());
        const connected = await services.connect().finally(() => setConnectingSince(undefined));
        setStatuses(connected);
        const failed = connected.filter((s) => !s.ok);
        if (failed.length) {
          setStaleRelations(relations.map((r) => r.name));
          // Each source's error already says what to check for its kind of failure (refused, DNS, auth, TLS, timeout).
          say(`cannot reach ${failed.map((s) => `${s.name}: ${s.error}`).join('; ')}; r retries`, 'error');
          return;
        }
        // `u` with nothing to resume says so, and does not start a whole new scan in its place.
        if (options.resume && (await services.unfinishedScans()).length === 0) {
          say('nothing to resume: no unfinished scan (r scans from the start)', 'info');
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
            say(`unfinished scan of ${which}: u resumes it, r scans from the start`, 'warn');
            return;
          }
        }
        const report = await services.scan(
          (p) => setProgress((old) => ({ ...old, [p.relation]: p })),
          controller.signal,
          { resume: options.resume, onNotice: (text) => say(text, 'warn') },
        );
        if (controller.signal.aborted) return;
        // A relation whose scan failed keeps its last known figures (marked as such); the others are new.
        const fresh = report.relations.filter((r) => !r.error);
        setReports((old) => ({ ...old, ...Object.fromEntries(fresh.map((r) => [r.name, r])) }));
        setScannedAt(new Date());
        const failedScan = report.relations.find((r) => r.error);
        setStaleRelations(report.relations.filter((r) => r.error).map((r) => r.name));
        if (failedScan) say(`scan of ${failedScan.name} failed: ${failedScan.error}`, 'error');
        const loaded = await Promise.all(
          relations.map(async (r) => [r.name, await services.trend(r.name)] as const),
        );
        setTrends(Object.fromEntries(loaded));
      } catch (error) {
        setStaleRelations(relations.map((r) => r.name));
        say(errorText(error), 'error');
      } finally {
        if (scanAbort.current === controller) setScanning(false);
      }
    },
    [services, relations, say],
  );

  useEffect(() => {
    void scan({ offerResume: true });
    return () => scanAbort.current?.abort();
  }, [scan]);

  /** Refuses a change in read-only mode, saying why (the engine refuses it too). */
  const refuseReadOnly = (what: string): boolean => {
    if (!services.readOnly) return false;
    say(`read-only mode: ${what} is disabled (start without --read-only to change data)`, 'warn');
    return true;
  };

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
    // Only a current scan may lead to a delete: the last known figures of a failed (or running) rescan could hide
    // what the new scan would call unsafe (a parent collection emptied meanwhile).
    if (!report || scanning) {
      say('wait for the scan of this relation to finish', 'warn');
      return;
    }
    if (staleRelations.includes(relation)) {
      say(
        `the last scan of ${relation} failed: its figures are the last known, not current; r scans again, then c`,
        'warn',
      );
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
      // "Stop after this batch?" means nothing once the run is over.
      dispatch({ type: 'dismissPrompt', ids: ['confirmStop', 'confirmQuit'] });
      if (cleanupAbort.current === controller) cleanupAbort.current = undefined;
    }
  };

  const loadExceptions = async () => {
    setExceptions(undefined);
    setExceptionsError(undefined);
    try {
      setExceptions(await services.exceptions());
    } catch (error) {
      setExceptionsError(errorText(error));
    }
  };

  /** Asks what to allow-list for a sample: the document itself or every child of its reference. */
  const markException = (relation: string, sample: { id: unknown; reference: unknown } | undefined) => {
    if (refuseReadOnly('adding exceptions') || !sample) return;
    dispatch({
      type: 'prompt',
      prompt: {
        id: 'exceptionKind',
        label: 'Allow-list: type d for this document, r for every child of its reference, then Enter:',
        subject: { relation, id: sample.id, reference: sample.reference },
      },
    });
  };

  const askReason = (relation: string, kind: ExceptionKind, value: unknown) =>
    dispatch({
      type: 'prompt',
      prompt: {
        id: 'exceptionReason',
        label: `Reason for allow-listing ${kind} ${displayValue(value)} in ${relation} (required), Enter, Esc cancels:`,
        subject: { relation, kind, value },
      },
    });

  /** Does what the typed answer to a prompt asks (the rules are `answerPrompt`'s). */
  const answer = async (prompt: Prompt, typed: string, onExceptionsScreen: boolean) => {
    dispatch({ type: 'prompt', prompt: undefined });
    // Answering is the operator's next action: what the status line said before it (a mistyped name) is over.
    dispatch({ type: 'message' });
    const next = answerPrompt(prompt, typed);
    try {
      switch (next.do) {
        case 'filter':
          return dispatch({ type: 'setFilter', filter: next.filter });
        case 'settle':
          return settleAnswer(next.accepted);
        case 'reask':
          say(next.warning, 'warn');
          return dispatch({ type: 'prompt', prompt });
        case 'stop':
          cleanupAbort.current?.abort();
          setCleanup((old) => old && { ...old, stopping: true });
          if (next.quit) say('stopping after the current batch; quit again when it is done', 'warn');
          return;
        case 'askReason': {
          // A reference that can never match is refused before the reason is typed, and asked again.
          const keyMatch = relations.find((r) => r.name === next.relation)?.keyMatch;
          try {
            if (keyMatch) exceptionKey(next.kind, next.value, keyMatch);
          } catch (error) {
            say(`${errorText(error)}: nothing was added; type it again, or Esc cancels`, 'warn');
            return dispatch({ type: 'prompt', prompt });
          }
          return askReason(next.relation, next.kind, next.value);
        }
        case 'askExpiry':
          return dispatch({
            type: 'prompt',
            prompt: {
              id: 'exceptionExpiry',
              label: `Allow-list ${next.kind} ${displayValue(next.value)} until: 30d, 12h, 90m, an ISO date, or Enter for never:`,
              subject: { relation: next.relation, kind: next.kind, value: next.value, reason: next.reason },
            },
          });
        case 'addException': {
          const added = await services.addException(
            next.relation,
            next.kind,
            next.value,
            next.reason,
            next.expiresAt,
          );
          const child = next.kind === 'document' ? "child's _id" : 'reference';
          say(
            `${addOutcomeText(added, next.kind, displayValue(added.value), next.relation)} (the ${child} is ${added.form})${added.outcome === 'exists' ? '' : '; rescanning'}`,
          );
          if (added.outcome !== 'exists')
            setExceptionsChanged((old) => ({ relation: next.relation, n: (old?.n ?? 0) + 1 }));
          if (onExceptionsScreen) await loadExceptions();
          void scan();
          return;
        }
        case 'removeException':
          await services.removeException(next.entry);
          setExceptionsChanged((old) => ({ relation: next.entry.relation, n: (old?.n ?? 0) + 1 }));
          // Its children count as orphans again from the next scan on: that scan starts now.
          say(
            `exception removed: ${next.entry.kind} ${displayValue(next.entry.value)} in ${next.entry.relation}; its children count again, their grace period starting now; rescanning`,
          );
          await loadExceptions();
          void scan();
          return;
        case 'updateSetting': {
          let notes: string[];
          try {
            notes = services.updateSetting(next.field, next.text);
          } catch (error) {
            return say(`${errorText(error)}: nothing changed`, 'warn');
          }
          const saved = services.settingsInfo().file ? 'saved' : 'changed for this session';
          const label = EDITABLE_SETTINGS.find((setting) => setting.field === next.field)?.label;
          return say(
            `${label} ${saved}: ${settingValue(services.settings, next.field)}${notes.length ? `; ${notes.map(escapeForTerminal).join('; ')}` : ''}`,
            notes.some((note) => note.startsWith('warning')) ? 'warn' : 'info',
          );
        }
        case 'restore': {
          const result = await whileBusy('restoring', () =>
            services.restore(next.dir, next.ref !== undefined ? { ref: next.ref } : {}),
          );
          const run = next.dir.split('/').pop();
          const selected = result.relations.reduce((sum, r) => sum + r.selected, 0);
          const inserted = result.relations.reduce((sum, r) => sum + r.inserted, 0);
          setRecoveryLines([
            ...result.notes.map((note) => `note: ${note}`),
            ...result.relations
              .filter((r) => r.selected > 0)
              .map(
                (r) =>
                  `restored ${r.name}: inserted ${count(r.inserted)} of ${count(r.selected)}, ${count(r.skippedExisting)} already present`,
              ),
          ]);
          if (selected === 0)
            return say(
              `no child of ${next.ref !== undefined ? `reference ${next.ref}` : 'this selection'} is in backup ${run}: nothing restored; / finds the backups that hold it`,
              'warn',
            );
          // The restore is complete whatever the parent check finds; a parent source that does not answer
          // is said, not taken for the restore failing.
          const stillMissing =
            next.ref !== undefined && inserted > 0
              ? await Promise.all(
                  result.relations
                    .filter((r) => r.inserted > 0)
                    .map((r) => services.parentUnresolved(r.name, next.ref!)),
                )
                  .then((lines) => lines.find(Boolean))
                  .catch((error: Error) => error)
              : undefined;
          const unchecked = stillMissing instanceof Error;
          say(
            `restore done: ${count(inserted)} inserted${
              unchecked
                ? `; the parent check failed (${stillMissing.message}): scan when it answers`
                : stillMissing
                  ? `; WARNING the restored children are orphans again: ${stillMissing}`
                  : ''
            }; rescanning; v verifies`,
            stillMissing ? 'warn' : 'info',
          );
          // The overview and the review show the restored children.
          if (inserted > 0) void scan();
          return;
        }
        case 'find': {
          dispatch({ type: 'move', delta: -Number.MAX_SAFE_INTEGER, size: 1 });
          setPreview(undefined);
          if (!next.ref) {
            setFound(undefined);
            return setRecoveryLines([]);
          }
          // Typed in any notation the tool shows (ObjectId(…), oid …, "text"); kept and shown in one form.
          const ref = valueArgument(parseValueArgument(next.ref));
          const { holdings, unreadable } = await whileBusy('searching the backups', () =>
            services.findBackups(ref),
          );
          setFound({ ref, dirs: holdings.map((h) => h.dir) });
          setRecoveryLines([
            holdings.length
              ? `reference ${escapeForTerminal(ref)}: children in ${holdings.length} backup(s)`
              : `reference ${escapeForTerminal(ref)}: in no backup under ${escapeForTerminal(services.settings.backupRoot)}`,
            ...holdings.map(
              (h) =>
                `${h.runId}  ${h.createdAt.slice(0, 16).replace('T', ' ')}  ${h.relation}  ${count(h.children)} children`,
            ),
            ...unreadable.map((problem) => `skipped (failed its checks): ${problem}`),
          ]);
          return;
        }
        case 'warn':
          return say(next.text, 'warn');
        case 'nothing':
          return;
      }
    } catch (error) {
      say(errorText(error), 'error');
    }
  };

  /** Esc on a prompt: nothing happens, and a pending cleanup question is answered no. */
  const cancelPrompt = (prompt: Prompt) => {
    dispatch({ type: 'prompt', prompt: undefined });
    if (prompt.id === 'confirmName' || prompt.id === 'overridePhrase') {
      say('cancelled: nothing deleted');
      settleAnswer(false);
    }
  };

  const openBackups = () => {
    setPreview(undefined);
    setFound(undefined);
    setRecoveryLines([]);
    void services.backups().then(setBackups, (error) => say(errorText(error), 'error'));
  };
  const openHistory = () => {
    setHistory(undefined);
    void services.history().then(setHistory, (error) => say(errorText(error), 'error'));
  };
  const previewBackup = (dir: string | undefined) => {
    setPreview(undefined);
    if (dir)
      void whileBusy('checking the backup', () => services.previewBackup(dir)).then(setPreview, (error) =>
        say(errorText(error), 'error'),
      );
  };
  /** Verifies a backup: only the searched reference's children when one was found with `/`. */
  const verify = (dir: string) =>
    void whileBusy('verifying', () => services.verify(dir, found ? { ref: found.ref } : {}))
      .then((result) =>
        setRecoveryLines(
          result.relations.map(
            (r) =>
              `verify ${r.name}${found ? ` (reference ${found.ref})` : ''}: ${count(r.backedUp)} backed up, ${count(r.present)} present, ${count(r.absent)} absent`,
          ),
        ),
      )
      .catch((error) => say(errorText(error), 'error'));

  const state: ConsoleState = {
    statuses,
    scanning,
    progress,
    reports,
    scannedAt,
    staleRelations,
    connectingSince,
    trends,
    cleanup,
    exceptions,
    exceptionsError,
    exceptionsChanged,
    backups,
    preview,
    recoveryLines,
    found,
    history,
    busy,
  };
  const actions = {
    say,
    scan,
    startCleanup,
    refuseReadOnly,
    loadExceptions,
    markException,
    answer,
    cancelPrompt,
    openBackups,
    openHistory,
    previewBackup,
    verify,
    cleanupRunning: cleanup?.phase === 'running',
  };
  return { state, actions };
}

export type ConsoleActions = ReturnType<typeof useConsoleActions>['actions'];
