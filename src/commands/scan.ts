import { RuntimeError } from '../errors.ts';
import { scanReportText } from '../engine/report-text.ts';
import { runScan, type ScanReport, scanReportJson } from '../engine/run-scan.ts';
import { scanRegistry, writeMetricsFile } from '../metrics/prometheus.ts';
import type { ResolvedConfig } from '../config/load.ts';
import {
  abortOnSignals,
  printNotice,
  type EngineFlags,
  type ScanReadFlags,
  withEngine,
} from './engine-session.ts';

export interface ScanFlags extends EngineFlags, ScanReadFlags {
  json?: boolean;
  metricsFile?: string;
}

/** Exit 3 when a relation's orphans or growth cross the alert thresholds (for cron alerting). */
export function alertsOf(report: ScanReport, config: ResolvedConfig): string[] {
  const alerts: string[] = [];
  for (const r of report.relations) {
    if (r.orphans > config.alertThreshold)
      alerts.push(`${r.name}: ${r.orphans} orphans > alertThreshold ${config.alertThreshold}`);
    if (r.growthPerDay !== null && r.growthPerDay > config.growthAlertPerDay) {
      alerts.push(`${r.name}: growth ${r.growthPerDay}/day > growthAlertPerDay ${config.growthAlertPerDay}`);
    }
    if (r.probeLatencyMs.count && r.probeLatencyMs.p95 > config.latencyAlertMs) {
      alerts.push(
        `${r.name}: parent probe p95 ${Math.round(r.probeLatencyMs.p95)} ms > latencyAlertMs ${config.latencyAlertMs}`,
      );
    }
  }
  return alerts;
}

export async function runScanCommand(flags: ScanFlags): Promise<number> {
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
        process.stdout.write(scanReportText(report));
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
