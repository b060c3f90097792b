import { EJSON } from 'bson';
import type { ResolvedConfig } from '../config/load.ts';
import { type ListCategory, listUnresolved } from '../engine/list.ts';
import { scanReportText } from '../engine/report-text.ts';
import { runScan, type ScanReport, scanReportJson } from '../engine/run-scan.ts';
import { describeId } from '../engine/scan.ts';
import { relationAlerts } from '../engine/alerts.ts';
import { reportWidth } from '../engine/text-layout.ts';
import { RuntimeError, UsageError } from '../errors.ts';
import { scanRegistry, writeMetricsFile } from '../metrics/prometheus.ts';
import { displayValue } from '../mongo/keys.ts';
import { parseValueArgument } from '../store/exception-input.ts';
import {
  abortOnSignals,
  type EngineFlags,
  printNotice,
  type ScanReadFlags,
  withEngine,
} from './engine-session.ts';

export interface ScanFlags extends EngineFlags, ScanReadFlags {
  json?: boolean;
  metricsFile?: string;
}

/** Exit 3 when a relation's orphans, growth or probe latency cross the alert thresholds (for cron alerting). */
export function alertsOf(report: ScanReport, config: ResolvedConfig): string[] {
  return report.relations.flatMap((r) =>
    relationAlerts(r, config).map((alert) => `${r.name}: ${alert.text}`),
  );
}

export async function runScanCommand(flags: ScanFlags & Partial<ListFlags>): Promise<number> {
  if (flags.list !== undefined) return runListCommand(flags as ListFlags);
  if (flags.category !== undefined || flags.ref !== undefined)
    throw new UsageError('--category and --ref go with --list RELATION');
  return withEngine(flags, async ({ config, pool, access }) => {
    const { signal, dispose } = abortOnSignals();
    try {
      const report = await runScan({
        config,
        pool,
        access,
        signal,
        resume: flags.resume,
        parallel: flags.parallel,
        checkpointIntervalMs:
          flags.checkpointSeconds !== undefined ? Math.max(10, flags.checkpointSeconds * 1000) : undefined,
        onNotice: printNotice,
      });
      if (flags.metricsFile) await writeMetricsFile(flags.metricsFile, scanRegistry(report));
      if (flags.json) process.stdout.write(`${JSON.stringify(scanReportJson(report), null, 2)}\n`);
      else {
        process.stdout.write(scanReportText(report, reportWidth()));
        if (access.readOnly)
          process.stdout.write('read-only: nothing recorded (no run history, no first-seen state)\n');
      }
      const resumeHint = access.readOnly ? '' : '; `scan --resume` continues from the last checkpoint';
      const failed = report.relations.filter((r) => r.error);
      if (failed.length)
        throw new RuntimeError(
          `scan of ${failed.map((r) => r.name).join(', ')} failed: ${failed[0].error}${resumeHint}`,
        );
      if (signal.aborted) throw new RuntimeError(`scan interrupted${resumeHint}`);
      const alerts = alertsOf(report, config);
      for (const alert of alerts) process.stderr.write(`alert: ${alert}\n`);
      return alerts.length ? 3 : 0;
    } finally {
      dispose();
    }
  });
}

export interface ListFlags extends EngineFlags {
  list: string;
  category?: string;
  ref?: string;
  json?: boolean;
}

const LIST_CATEGORIES = ['orphans', 'parentInactive'] as const;

/**
 * `scan --list RELATION`: every child the last complete scan found orphaned or inactive (narrowed by
 * `--category` or `--ref`), streamed a line each; `--json` gives one Extended JSON object per line.
 */
export async function runListCommand(flags: ListFlags): Promise<number> {
  if (flags.category !== undefined && !LIST_CATEGORIES.includes(flags.category as ListCategory))
    throw new UsageError(
      `--category ${flags.category}: listable categories are ${LIST_CATEGORIES.join(' and ')} (the scan stores no others)`,
    );
  return withEngine(
    flags,
    async ({ config, pool }) => {
      const relation = config.relations.find((r) => r.name === flags.list);
      if (!relation)
        throw new UsageError(
          `--list ${flags.list}: unknown relation (known: ${config.relations.map((r) => r.name).join(', ')})`,
        );
      const listing = await listUnresolved({
        config,
        pool,
        relation,
        category: flags.category as ListCategory | undefined,
        ref: flags.ref !== undefined ? parseValueArgument(flags.ref) : undefined,
      });
      if (!listing.asOf)
        throw new RuntimeError(
          `${relation.name} has no complete scan yet: run \`orphan-cleanup scan\` first, then list`,
        );
      const out = process.stdout;
      if (!flags.json)
        out.write(
          `${relation.name}: children of unresolved references as of scan ${listing.asOf.runId} (${listing.asOf.finishedAt.toISOString()}); grace ${relation.graceDays} days from first seen\n`,
        );
      let count = 0;
      for await (const child of listing.children) {
        count++;
        const line = flags.json
          ? EJSON.stringify(
              {
                _id: child.id,
                reference: child.reference,
                category: child.category,
                firstSeenAt: child.firstSeenAt,
                pastGrace: child.pastGrace,
              },
              { relaxed: true },
            )
          : [
              describeId(child.id),
              displayValue(child.reference),
              child.category,
              child.firstSeenAt.toISOString(),
              child.pastGrace ? 'past grace' : 'in grace',
            ].join('  ');
        // Respect the pipe's back-pressure: a listing of millions streams at the reader's pace.
        if (!out.write(`${line}\n`)) await new Promise((resolve) => out.once('drain', resolve));
      }
      if (!flags.json) out.write(`${count.toLocaleString('en-US')} children\n`);
      if (count === 0 && flags.ref !== undefined)
        throw new RuntimeError(
          `--ref ${flags.ref}: no child of ${relation.name} points at it among the unresolved references of the last complete scan`,
        );
      return 0;
    },
    // Only the child database is read: the parent may be down while an operator lists what was found.
    'children',
  );
}
