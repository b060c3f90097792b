import type { ResolvedConfig } from '../config/load.ts';
import { type RunScanOptions, runScan, type ScanReport } from '../engine/run-scan.ts';
import { RuntimeError } from '../errors.ts';
import type { SourcePool } from '../mongo/sources.ts';
import type { WriteAccess } from '../store/access.ts';
import { type CleanupOptions, type CleanupResult, executeCleanup, refusalsOf } from './execute.ts';
import { buildPlan, type CleanupPlan, PLAN_SAMPLE_SIZE } from './plan.ts';

/**
 * What every face (the console, `clean`, `serve`, the tests, the bench) passes to the one cleanup sequence.
 * Faces differ only in how they confirm and what they display.
 */
export interface PipelineOptions {
  config: ResolvedConfig;
  pool: SourcePool;
  access: WriteAccess;
  /** Back up and delete; without it the pipeline stops at the plan (a dry run). */
  execute: boolean;
  /** A fresh scan to plan from (the console's, already on screen); else the pipeline scans. */
  report?: ScanReport;
  /** Delete at most this many this run, oldest first. */
  maxDeletes?: number;
  /** Documents per delete batch. */
  deleteBatchSize: number;
  backupRoot?: string;
  /** Proceed with relations whose scan looked suspicious (`--allow-unsafe`). */
  allowUnsafe?: boolean;
  operator?: string;
  signal?: AbortSignal;
  /** How the scan reads the children (resume, partitions) and what it reports while it runs. */
  scan?: Pick<RunScanOptions, 'resume' | 'parallel' | 'checkpointIntervalMs' | 'onProgress'>;
  /** Throttling and the execution's callbacks and test seams. */
  execution?: Pick<
    CleanupOptions,
    | 'sleepMs'
    | 'maxRate'
    | 'maxLagSeconds'
    | 'maxLagWaitMs'
    | 'now'
    | 'onProgress'
    | 'beforeBatch'
    | 'beforeDelete'
  >;
  onNotice?: (message: string) => void;
  /** The plan, once built: the face shows it. */
  onPlan?: (plan: CleanupPlan, report: ScanReport) => void;
  /**
   * Asked when relations that would be deleted from are unsafe and `allowUnsafe` is not set: true proceeds
   * with them (the console's typed override); absent, the cleanup is refused.
   */
  askOverride?: (plan: CleanupPlan, reasons: string[]) => Promise<boolean>;
  /** The face's last word before anything is deleted (typed relation names); absent = already confirmed. */
  confirm?: (plan: CleanupPlan) => Promise<boolean>;
}

interface Planned {
  report: ScanReport;
  plan: CleanupPlan;
}

/** A dry run's plan; nothing to delete; not confirmed; or the execution's result. */
export type PipelineOutcome =
  | (Planned & { kind: 'planned' })
  | (Planned & { kind: 'nothing' })
  | (Planned & { kind: 'cancelled' })
  | (Planned & { kind: 'executed'; result: CleanupResult });

/**
 * The cleanup sequence, written once: scan (or take the face's fresh scan) → stop on an interrupted or failed
 * scan → plan → refusals and overrides → the face's confirmation → back up, re-check and delete. Every refusal
 * is a RuntimeError whose message ends "nothing was deleted".
 */
export async function runCleanupPipeline(options: PipelineOptions): Promise<PipelineOutcome> {
  const { config, pool, access, signal } = options;
  const report =
    options.report ??
    (await runScan({
      config,
      pool,
      access,
      signal,
      ...options.scan,
      // A dry run keeps a sample of the candidates; an execution the oldest --max-deletes (or all) of them.
      candidateLimit: options.execute ? (options.maxDeletes ?? Number.POSITIVE_INFINITY) : PLAN_SAMPLE_SIZE,
      // A dry run records nothing but first-seen state.
      record: options.execute,
      operator: options.operator,
      onNotice: options.onNotice,
    }));
  if (signal?.aborted)
    throw new RuntimeError(
      'interrupted during the scan; nothing was deleted (`--resume` continues the scan from its last checkpoint)',
    );
  const failed = report.relations.find((r) => r.error);
  if (failed) throw new RuntimeError(`scan of ${failed.name} failed: ${failed.error}; nothing was deleted`);
  const plan = await buildPlan(report, config, pool, {
    backupRoot: options.backupRoot,
    deleteBatchSize: options.deleteBatchSize,
    maxDeletes: options.maxDeletes,
  });
  options.onPlan?.(plan, report);
  if (!options.execute) return { kind: 'planned', report, plan };
  if (plan.refusals.length)
    throw new RuntimeError(`cleanup refused: ${plan.refusals.join('; ')}; nothing was deleted`);
  let allowUnsafe = Boolean(options.allowUnsafe);
  const unsafe = refusalsOf(plan, allowUnsafe);
  if (unsafe.length) {
    allowUnsafe = options.askOverride ? await options.askOverride(plan, unsafe) : false;
    if (!allowUnsafe) throw new RuntimeError(`cleanup refused: ${unsafe.join('; ')}; nothing was deleted`);
  }
  if (!plan.relations.some((r) => r.toDelete > 0)) return { kind: 'nothing', report, plan };
  if (options.confirm && !(await options.confirm(plan))) return { kind: 'cancelled', report, plan };
  const result = await executeCleanup({
    ...options.execution,
    plan,
    config,
    pool,
    access,
    allowUnsafe,
    operator: options.operator,
    signal,
    onNotice: options.onNotice,
  });
  return { kind: 'executed', report, plan, result };
}
