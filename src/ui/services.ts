// Over 300 lines: the console's one boundary to the engine: each service is a few lines over it.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type Conf from 'conf';
import type { Document } from 'mongodb';
import { readManifest } from '../cleanup/backup.ts';
import { readBackup } from '../cleanup/backup-reader.ts';
import { describeForm, existingForm } from '../store/exception-forms.ts';
import type { CleanupProgress } from '../cleanup/execute.ts';
import { type PipelineOptions, type PipelineOutcome, runCleanupPipeline } from '../cleanup/pipeline.ts';
import type { CleanupPlan } from '../cleanup/plan.ts';
import {
  findBackupsOf,
  parentUnresolved,
  restoreCommandFor,
  restoreNeeds,
  type RestoreSelection,
  restoreBackup,
  verifyBackup,
} from '../cleanup/restore.ts';
import type { Relation, ResolvedConfig } from '../config/load.ts';
import type { AlertThresholds } from '../engine/alerts.ts';
import {
  describeProfile,
  type EditableSetting,
  parseSetting,
  readSettings,
  type Settings,
  tightenSettingsPermissions,
} from '../config/settings.ts';
import { type ListCategory, type ListedChild, listUnresolved } from '../engine/list.ts';
import { type RelationReport, runScan, type ScanReport } from '../engine/run-scan.ts';
import { type WatchStarter, watcherFor } from '../engine/watch.ts';
import type { ScanProgress } from '../engine/scan.ts';
import { CHECKPOINT_CANDIDATES } from '../engine/scan.ts';
import { probeCapabilities } from '../mongo/capabilities.ts';
import { redact, redactUri } from '../mongo/redact.ts';
import { socketTimeoutMs } from '../mongo/timeouts.ts';
import { displayHosts, type SourcePool } from '../mongo/sources.ts';
import type { WriteAccess } from '../store/access.ts';
import type { AddOutcome } from '../store/exceptions.ts';
import {
  type ExceptionEntry,
  type ExceptionKind,
  ExceptionsStore,
  exceptionKey,
} from '../store/exceptions.ts';
import { currentOperator, type RunRecord, RunsStore } from '../store/runs.ts';

/** The operator's settings the console uses (kept with conf; see settings.ts). */
export interface ConsoleSettings {
  operator?: string;
  backupRoot: string;
  batchSize: number;
}

/** Where the settings live and the connection profiles, for the settings screen. */
export interface SettingsInfo {
  /** The conf file; undefined when this session does not save its settings. */
  file?: string;
  activeProfile?: string;
  /** Settings a command-line flag set for this session (the file's value applies next time). */
  fromFlags: EditableSetting[];
  profiles: { name: string; sources: string[]; readOnly: boolean }[];
}

/** The settings file behind the console, when it has one: changes made on the settings screen are saved there. */
export interface SettingsPersistence {
  store: Conf<Settings>;
  activeProfile?: string;
  fromFlags?: EditableSetting[];
}

/** Whether a source answers: `quietMs` since its last heartbeat answer (undefined before its first connection). */
export interface SourceLiveness {
  quietMs?: number;
  silent: boolean;
}

export interface SourceStatus {
  name: string;
  uri: string;
  /** The URI's hosts (`mongodb+srv://` kept), without credentials or options: what the header shows. */
  hosts: string;
  database: string;
  ok: boolean;
  version?: string;
  topology?: string;
  sandbox?: boolean;
  latencyMs?: number;
  error?: string;
}

/** What past runs say about a relation: its orphan counts (oldest first) and the last cleanup. */
export interface UnfinishedScan {
  relation: string;
  runId: string;
  scanned: number;
  /** When its last checkpoint was written. */
  at: Date;
}

/**
 * Deletes one console cleanup may plan: the oldest this many per run (the rest wait for the next), so the
 * console's memory follows this bound, not the backlog, and its scan can be resumed from a checkpoint.
 */
export const CONSOLE_MAX_DELETES = CHECKPOINT_CANDIDATES;

export interface ConsoleCleanupHooks {
  signal: AbortSignal;
  onPlan: (plan: CleanupPlan) => void;
  askOverride: NonNullable<PipelineOptions['askOverride']>;
  confirm: NonNullable<PipelineOptions['confirm']>;
  onProgress: (progress: CleanupProgress) => void;
}

export interface RelationHistory {
  orphans: number[];
  lastCleanup?: { deleted: number; planned: number; at: Date };
}

export interface BackupSummary {
  dir: string;
  runId: string;
  status: string;
  operator: string;
  createdAt: string;
  relations: { name: string; backedUp: number; deleted: number }[];
}

export interface BackupPreview extends BackupSummary {
  checksumsOk: boolean;
  problem?: string;
}

/**
 * Everything the console does to the databases, as the headless commands do it: the same engine, cleanup
 * and store functions. Injected, so tests run the console against the sandbox through the real engine.
 */
export interface ConsoleServices {
  readOnly: boolean;
  /** What ends a wait on a database that goes silent, in words, for the console's wait lines. */
  waitBound: string;
  relations: Relation[];
  /** The config's alert thresholds (the overview marks a relation that crossed one). */
  thresholds: AlertThresholds;
  /** The settings in effect; `updateSetting` changes them for the rest of the session (and saves them). */
  settings: ConsoleSettings;
  settingsInfo(): SettingsInfo;
  /** Returns what it had to say about the file's permissions (tightened to 0600/0700, or could not be). */
  updateSetting(field: EditableSetting, typed: string): string[];
  connect(): Promise<SourceStatus[]>;
  /**
   * Each source's liveness now (its heartbeats: `mongo/liveness.ts`); a source whose client was given up on is
   * connected again (bounded) as a side effect, so the console notices when it answers again.
   */
  sourceLiveness(): Record<string, SourceLiveness>;
  scan(
    onProgress: (progress: ScanProgress) => void,
    signal: AbortSignal,
    options?: { resume?: boolean; onNotice?: (message: string) => void },
  ): Promise<ScanReport>;
  /** Scans stopped before the end that `u` can continue from their checkpoints. */
  unfinishedScans(): Promise<UnfinishedScan[]>;
  trend(relation: string): Promise<RelationHistory>;
  history(limit?: number): Promise<RunRecord[]>;
  /**
   * One relation's cleanup from the scan on screen, through the product's one cleanup pipeline: the console
   * shows the plan and answers the override and the confirmation through its prompts.
   */
  clean(report: RelationReport, hooks: ConsoleCleanupHooks): Promise<PipelineOutcome>;
  exceptions(): Promise<ExceptionEntry[]>;
  addException(
    relation: string,
    kind: ExceptionKind,
    value: unknown,
    reason: string,
    expiresAt?: Date,
  ): Promise<AddOutcome & { value: unknown; form: string }>;
  removeException(entry: ExceptionEntry): Promise<boolean>;
  /** The command that restores a run, runnable as printed from another shell, and what that shell needs. */
  restoreCommand(runDir: string): { command: string; needs: string };
  backups(): Promise<BackupSummary[]>;
  previewBackup(dir: string): Promise<BackupPreview>;
  restore(dir: string, selection: RestoreSelection): ReturnType<typeof restoreBackup>;
  verify(dir: string, selection: RestoreSelection): ReturnType<typeof verifyBackup>;
  /** Every child of a category as of the last complete scan, a page at a time (`scan --list`). */
  listChildren(relation: string, category: ListCategory): AsyncGenerator<ListedChild>;
  /** Every backup under the backup root holding children of a reference (read from the files alone). */
  findBackups(ref: string): ReturnType<typeof findBackupsOf>;
  /** Undefined when the parent is there and active; else why the restored children are orphans again, and their grace. */
  parentUnresolved(relation: string, ref: string): Promise<string | undefined>;
  /**
   * Live counts from change streams until the signal (engine/watch.ts); a relation that cannot be watched is
   * said through `onNotice` and stays on scan figures.
   */
  watch: WatchStarter;
  /** One child document, for the viewer (undefined when it is gone). */
  childDocument(relation: string, id: unknown): Promise<Document | undefined>;
}

export function createConsoleServices(
  config: ResolvedConfig,
  pool: SourcePool,
  access: WriteAccess,
  settings: ConsoleSettings,
  persistence?: SettingsPersistence,
): ConsoleServices {
  const relation = (name: string) => {
    const found = config.relations.find((r) => r.name === name);
    if (!found) throw new Error(`unknown relation ${name}`);
    return found;
  };
  const fromFlags = new Set(persistence?.fromFlags);
  const exceptionsStore = async (name: string) =>
    new ExceptionsStore(await pool.primaryDb(relation(name).child.source), access);
  const childDbs = async () => {
    const seen = new Map<string, RunsStore>();
    for (const r of config.relations) {
      const source = config.sources[r.child.source];
      const key = `${source.uri}\0${source.database}`;
      if (!seen.has(key)) seen.set(key, new RunsStore(await pool.primaryDb(r.child.source), access));
    }
    return [...seen.values()];
  };
  return {
    readOnly: access.readOnly,
    waitBound: `each operation ends after ${Math.round(socketTimeoutMs(config.maxTimeMS) / 1000)} s of silence from the server`,
    relations: config.relations,
    thresholds: {
      alertThreshold: config.alertThreshold,
      growthAlertPerDay: config.growthAlertPerDay,
      latencyAlertMs: config.latencyAlertMs,
    },
    settings,
    settingsInfo() {
      const profiles = persistence ? readSettings(persistence.store).profiles : {};
      return {
        file: persistence?.store.path,
        activeProfile: persistence?.activeProfile,
        fromFlags: [...fromFlags],
        profiles: Object.entries(profiles).map(([name, profile]) => ({
          name,
          sources: describeProfile(profile),
          readOnly: Boolean(profile.readOnly),
        })),
      };
    },
    updateSetting(field, typed) {
      const value = parseSetting(field, typed);
      persistence?.store.set(field, value);
      Object.assign(settings, { [field]: value });
      fromFlags.delete(field);
      // As `settings` does: the file may hold credentials.
      return persistence ? tightenSettingsPermissions(persistence.store) : [];
    },
    async connect() {
      return Promise.all(
        Object.values(config.sources).map(async (source): Promise<SourceStatus> => {
          const base = {
            name: source.name,
            uri: redactUri(source.uri),
            hosts: displayHosts(source.uri),
            database: source.database,
          };
          try {
            const caps = await probeCapabilities(await pool.client(source.name));
            return {
              ...base,
              ok: true,
              version: caps.version,
              topology: caps.topology,
              sandbox: caps.sandbox,
              latencyMs: caps.roundTripMs,
            };
          } catch (error) {
            return { ...base, ok: false, error: redact((error as Error).message) };
          }
        }),
      );
    },
    sourceLiveness() {
      return Object.fromEntries(
        Object.keys(config.sources).map((name) => {
          const state = pool.liveness(name);
          // A source given up on is tried again here (the pool bounds and spaces the attempts).
          if (!state || state.silent) pool.client(name).catch(() => undefined);
          return [
            name,
            { silent: state?.silent ?? false, quietMs: state ? Date.now() - state.lastAnswerAt : undefined },
          ];
        }),
      );
    },
    scan: (onProgress, signal, options = {}) =>
      runScan({
        config,
        pool,
        access,
        onProgress,
        signal,
        resume: options.resume,
        onNotice: options.onNotice,
        // The console plans and executes from one scan.
        candidateLimit: CONSOLE_MAX_DELETES,
        sampleDocuments: true,
        operator: settings.operator,
      }),
    async trend(name) {
      const store = new RunsStore(await pool.primaryDb(relation(name).child.source), access);
      const scans = await store.recent({ relation: name, kind: 'scan', limit: 30 });
      const [clean] = await store.recent({ relation: name, kind: 'clean', limit: 1 });
      return {
        orphans: scans
          .filter((run) => run.complete)
          .reverse()
          .map((run) => run.counts.orphans ?? 0),
        ...(clean
          ? {
              lastCleanup: {
                deleted: clean.counts.deleted ?? 0,
                planned: clean.counts.planned ?? 0,
                at: clean.startedAt,
              },
            }
          : {}),
      };
    },
    async history(limit = 50) {
      const all = (await Promise.all((await childDbs()).map((runs) => runs.recent({ limit })))).flat();
      return all.sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime()).slice(0, limit);
    },
    clean: (report, hooks) =>
      runCleanupPipeline({
        config,
        pool,
        access,
        execute: true,
        report: { startedAt: new Date(), finishedAt: new Date(), relations: [report] },
        maxDeletes: CONSOLE_MAX_DELETES,
        deleteBatchSize: settings.batchSize,
        backupRoot: settings.backupRoot,
        operator: settings.operator,
        signal: hooks.signal,
        onPlan: hooks.onPlan,
        askOverride: hooks.askOverride,
        confirm: hooks.confirm,
        execution: { onProgress: hooks.onProgress },
      }),
    async unfinishedScans() {
      const found: UnfinishedScan[] = [];
      for (const r of config.relations) {
        const run = await new RunsStore(await pool.primaryDb(r.child.source), access).resumable(r.name);
        if (run)
          found.push({
            relation: r.name,
            runId: run.runId,
            scanned: run.counts.scanned ?? 0,
            at: run.finishedAt,
          });
      }
      return found;
    },
    async exceptions() {
      const lists = await Promise.all(
        config.relations.map(async (r) => (await exceptionsStore(r.name)).list(r.name)),
      );
      return lists.flat();
    },
    async addException(name, kind, typed, reason, expiresAt) {
      // Bound to what exists, as `exceptions add` is: a typed `d:5f5f…` is stored as the child's _id is
      // (a string or an ObjectId); none of the forms existing is refused with the forms tried.
      const r = relation(name);
      exceptionKey(kind, typed, r.keyMatch); // a value that can never be a key is said first
      const children = (await pool.primaryDb(r.child.source)).collection(r.child.collection);
      const value = await existingForm(children, r, { kind, value: typed }, config.maxTimeMS);
      const added = await (await exceptionsStore(name)).add({
        relation: name,
        kind,
        value,
        valueKey: exceptionKey(kind, value, r.keyMatch),
        reason,
        createdBy: currentOperator(settings.operator),
        createdAt: new Date(),
        ...(expiresAt ? { expiresAt } : {}),
      });
      return { ...added, value, form: describeForm(value) };
    },
    restoreCommand: (runDir) => ({
      command: restoreCommandFor(runDir, config),
      needs: restoreNeeds(config),
    }),
    async removeException(entry) {
      return (await exceptionsStore(entry.relation)).remove(entry, currentOperator(settings.operator));
    },
    async backups() {
      const entries = await readdir(settings.backupRoot, { withFileTypes: true }).catch(() => []);
      const out: BackupSummary[] = [];
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        const preview = await summarize(join(settings.backupRoot, entry.name));
        if (preview) out.push(preview);
      }
      return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },
    async previewBackup(dir) {
      const summary = (await summarize(dir)) ?? {
        dir,
        runId: '?',
        status: 'unknown',
        operator: '?',
        createdAt: '',
        relations: [],
      };
      try {
        await readBackup(dir);
        return { ...summary, checksumsOk: true };
      } catch (error) {
        return { ...summary, checksumsOk: false, problem: (error as Error).message };
      }
    },
    restore: (dir, selection) =>
      restoreBackup(dir, { config, pool, access, selection, dryRun: false, operator: settings.operator }),
    verify: (dir, selection) => verifyBackup(dir, { config, pool, selection }),
    async *listChildren(name, category) {
      const listing = await listUnresolved({ config, pool, relation: relation(name), category });
      yield* listing.children;
    },
    findBackups: (ref) => findBackupsOf(ref, settings.backupRoot),
    parentUnresolved: (name, ref) => parentUnresolved(config, pool, name, ref),
    watch: watcherFor(config, pool, access),
    async childDocument(name, id) {
      const r = relation(name);
      const doc = await (await pool.db(r.child.source))
        .collection(r.child.collection)
        .findOne({ _id: id } as Document, { maxTimeMS: config.maxTimeMS });
      return doc ?? undefined;
    },
  };
}

/** The manifest's headline, without checking checksums (the preview does); undefined when it is not a backup. */
async function summarize(dir: string): Promise<BackupSummary | undefined> {
  try {
    const manifest = await readManifest(dir);
    return {
      dir,
      runId: manifest.runId,
      status: manifest.status,
      operator: manifest.operator,
      createdAt: manifest.createdAt,
      relations: manifest.relations.map((r) => ({ name: r.name, backedUp: r.backedUp, deleted: r.deleted })),
    };
  } catch {
    return undefined;
  }
}
