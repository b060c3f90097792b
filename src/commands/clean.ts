import { createInterface } from 'node:readline/promises';
import { type CleanupResult, refusalsOf } from '../cleanup/execute.ts';
import { runCleanupPipeline } from '../cleanup/pipeline.ts';
import { restoreCommandFor, restoreNeeds } from '../cleanup/restore.ts';
import type { ResolvedConfig } from '../config/load.ts';
import { type CleanupPlan, planText } from '../cleanup/plan.ts';
import { CHECKPOINT_CANDIDATES } from '../engine/scan.ts';
import { ExitCode, RuntimeError, UsageError } from '../errors.ts';
import { defaultBackupRoot } from '../limits.ts';
import { cleanupRegistry, scanRegistry, writeMetricsFile } from '../metrics/prometheus.ts';
import { ensureWritableDir } from '../paths.ts';
import {
  abortOnSignals,
  type EngineFlags,
  printNotice,
  type ScanReadFlags,
  withEngine,
} from './engine-session.ts';

export interface CleanFlags extends EngineFlags, ScanReadFlags {
  dryRun?: boolean;
  execute?: boolean;
  yes?: boolean;
  batchSize: number;
  sleepMs?: number;
  maxRate?: number;
  maxLagSeconds?: number;
  maxDeletes?: number;
  allowUnsafe?: boolean;
  backupDir?: string;
  metricsFile?: string;
  operator?: string;
  /** One JSON document on stdout: the plan and the outcome (progress and errors stay on stderr). */
  json?: boolean;
}

/** The plan without its candidates (document ids are data, and a scheduler needs the figures). */
function planJson(plan: CleanupPlan) {
  return {
    backupRoot: plan.backupRoot,
    deleteBatchSize: plan.deleteBatchSize,
    refusals: plan.refusals,
    relations: plan.relations.map(({ candidates: _, sampled: __, ...relation }) => relation),
  };
}

/** Asks the operator to type each relation's name; anything else cancels (Cancel is the default). */
async function confirmByTyping(plan: CleanupPlan): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    for (const relation of plan.relations) {
      if (relation.toDelete === 0) continue;
      const answer = await prompt.question(
        `Type "${relation.name}" to back up and delete ${relation.toDelete.toLocaleString('en-US')} documents (anything else cancels): `,
      );
      if (answer.trim() !== relation.name) return false;
    }
    return true;
  } finally {
    prompt.close();
  }
}

function summaryText(result: CleanupResult, config: ResolvedConfig): string {
  const lines = [`run ${result.runId}: ${result.status}${result.error ? ` (${result.error})` : ''}`];
  for (const r of result.relations) {
    const skipped = Object.entries(r.skipped)
      .filter(([, count]) => count > 0)
      .map(([reason, count]) => `${reason} ${count}`)
      .join(', ');
    lines.push(
      `  ${r.name}: backed up ${r.backedUp}, deleted ${r.deleted} of ${r.planned} planned${skipped ? `; kept by re-check: ${skipped}` : ''}`,
    );
    if (r.mismatch)
      lines.push(
        `  ${r.name}: WARNING ${r.mismatch} documents were backed up but not deleted (changed or removed meanwhile)`,
      );
  }
  if (result.runDir) {
    lines.push(`backup: ${result.runDir}`);
    lines.push(`restore with: ${restoreCommandFor(result.runDir, config)}`);
    const needs = restoreNeeds(config);
    if (needs) lines.push(`  (${needs})`);
  } else lines.push('nothing was backed up or deleted: there is nothing to restore');
  return `${lines.join('\n')}\n`;
}

/** `orphan-cleanup clean`: a dry run by default; `--execute` backs up, re-checks and deletes in batches. */
export async function runCleanCommand(flags: CleanFlags): Promise<number> {
  if (flags.execute && flags.dryRun) throw new UsageError('--execute and --dry-run contradict each other');
  if (flags.execute && !flags.yes && !process.stdin.isTTY) {
    throw new UsageError('--execute needs --yes when stdin is not a terminal (cron); nothing was deleted');
  }
  if (flags.resume && flags.execute && !((flags.maxDeletes ?? Infinity) <= CHECKPOINT_CANDIDATES))
    throw new UsageError(
      `--resume with --execute needs --max-deletes of at most ${CHECKPOINT_CANDIDATES.toLocaleString('en-US')} (the candidates a checkpoint keeps); nothing was deleted`,
    );
  return withEngine(flags, async ({ config, pool, access }) => {
    // Where the backups go is checked before the scan: a bad path fails in a second, not after it.
    if (flags.execute) await ensureWritableDir(flags.backupDir ?? defaultBackupRoot(), '--backup-dir');
    const { signal, dispose } = abortOnSignals();
    const json = Boolean(flags.json);
    let planned: CleanupPlan | undefined;
    /** With --json: the one document a scheduler reads, whatever the outcome. */
    const report = (outcome: string, extra: Record<string, unknown> = {}) => {
      if (json)
        process.stdout.write(
          `${JSON.stringify({ mode: flags.execute ? 'execute' : 'dry-run', outcome, plan: planned ? planJson(planned) : null, ...extra }, null, 2)}\n`,
        );
    };
    try {
      const outcome = await runCleanupPipeline({
        config,
        pool,
        access,
        execute: Boolean(flags.execute),
        maxDeletes: flags.maxDeletes,
        deleteBatchSize: flags.batchSize,
        backupRoot: flags.backupDir,
        allowUnsafe: flags.allowUnsafe,
        operator: flags.operator,
        signal,
        scan: {
          resume: flags.resume,
          parallel: flags.parallel,
          checkpointIntervalMs:
            flags.checkpointSeconds !== undefined ? Math.max(10, flags.checkpointSeconds * 1000) : undefined,
        },
        execution: {
          sleepMs: flags.sleepMs,
          maxRate: flags.maxRate,
          maxLagSeconds: flags.maxLagSeconds,
          onProgress: (p) =>
            process.stderr.write(
              `${p.relation}: batch ${p.batch}/${p.batches}, backed up ${p.backedUp}, deleted ${p.deleted}, kept ${p.skipped}\n`,
            ),
        },
        onNotice: printNotice,
        onPlan: (plan) => {
          planned = plan;
          if (!json) process.stdout.write(planText(plan, Boolean(flags.execute)));
        },
        confirm: flags.yes ? undefined : confirmByTyping,
      });
      if (outcome.kind === 'planned') {
        if (!json)
          process.stdout.write('dry run: nothing was deleted (add --execute to back up and delete)\n');
        if (flags.metricsFile) await writeMetricsFile(flags.metricsFile, scanRegistry(outcome.report));
        // A scheduler must not read a plan that would be refused as a plan that would run.
        const refusals = refusalsOf(outcome.plan, Boolean(flags.allowUnsafe));
        report(refusals.length ? 'refused' : 'planned', { refusedBecause: refusals });
        if (refusals.length) {
          process.stderr.write(`dry run: an execution would be refused: ${refusals.join('; ')}\n`);
          return ExitCode.PlanRefused;
        }
        return 0;
      }
      if (outcome.kind === 'nothing') {
        if (json) report('nothing');
        else process.stdout.write('nothing to delete\n');
        return 0;
      }
      if (outcome.kind === 'cancelled') {
        report('cancelled');
        throw new RuntimeError('not confirmed; nothing was deleted');
      }
      const { result, report: scan } = outcome;
      if (json) report(result.status, { result });
      else process.stdout.write(summaryText(result, config));
      if (flags.metricsFile)
        await writeMetricsFile(flags.metricsFile, cleanupRegistry(result, scanRegistry(scan)));
      if (result.status === 'failed')
        throw new RuntimeError(
          `cleanup failed: ${result.error}${result.runDir ? ` (backup: ${result.runDir})` : '; nothing was deleted'}`,
        );
      if (result.status === 'aborted')
        throw new RuntimeError(
          `cleanup interrupted after the current batch${result.runDir ? ` (backup: ${result.runDir})` : '; nothing was deleted'}`,
        );
      return 0;
    } finally {
      dispose();
    }
  });
}
