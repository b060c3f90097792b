import type { ResolvedConfig } from '../config/load.ts';
import { formatCount as count } from './format.ts';
import type { RelationReport } from './run-scan.ts';

export type AlertThresholds = Pick<ResolvedConfig, 'alertThreshold' | 'growthAlertPerDay' | 'latencyAlertMs'>;

/** One crossed threshold: which figure, its value and the threshold, in words. */
export interface RelationAlert {
  figure: 'orphans' | 'growth' | 'latency';
  /** With the setting's name (the CLI, logs). */
  text: string;
  /** The figure and its threshold alone (the console's overview line). */
  short: string;
}

/**
 * The thresholds a relation's scan crossed — orphans above `alertThreshold`, growth above `growthAlertPerDay`,
 * parent-probe p95 above `latencyAlertMs` — each said with its value and its threshold: what `scan` exits 3 for,
 * `/metrics` exposes, and the console marks in its overview. (An orphan ratio above `maxOrphanRatio` is not an
 * alert but a guard: the relation is unsafe, and says so.)
 */
export function relationAlerts(r: RelationReport, thresholds: AlertThresholds): RelationAlert[] {
  const alerts: RelationAlert[] = [];
  if (r.orphans > thresholds.alertThreshold)
    alerts.push({
      figure: 'orphans',
      text: `${r.orphans} orphans > alertThreshold ${thresholds.alertThreshold}`,
      short: `orphans ${count(r.orphans)} > ${count(thresholds.alertThreshold)}`,
    });
  if (r.growthPerDay !== null && r.growthPerDay > thresholds.growthAlertPerDay)
    alerts.push({
      figure: 'growth',
      text: `growth ${r.growthPerDay}/day > growthAlertPerDay ${thresholds.growthAlertPerDay}`,
      short: `growth ${count(r.growthPerDay)}/day > ${count(thresholds.growthAlertPerDay)}/day`,
    });
  if (r.probeLatencyMs.count && r.probeLatencyMs.p95 > thresholds.latencyAlertMs)
    alerts.push({
      figure: 'latency',
      text: `parent probe p95 ${Math.round(r.probeLatencyMs.p95)} ms > latencyAlertMs ${thresholds.latencyAlertMs}`,
      short: `probe p95 ${Math.round(r.probeLatencyMs.p95)} ms > ${thresholds.latencyAlertMs} ms`,
    });
  return alerts;
}
