import { rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Gauge, Histogram, Registry } from 'prom-client';
import type { CleanupResult } from '../cleanup/execute.ts';
import type { ScanReport } from '../engine/run-scan.ts';
import type { LiveCounts } from '../engine/watch.ts';
import { writeFileSynced } from '../mongo/dump-layout.ts';
import { removeTemporary, writeFailure } from '../paths.ts';

/** Metric names the tool exports (the alert rules refer to these). */
export const METRIC = {
  documents: 'orphan_cleanup_documents',
  scanned: 'orphan_cleanup_scanned_documents',
  scanDuration: 'orphan_cleanup_scan_duration_seconds',
  lastSuccess: 'orphan_cleanup_last_success_timestamp_seconds',
  safe: 'orphan_cleanup_relation_safe',
  growth: 'orphan_cleanup_orphan_growth_per_day',
  probeDuration: 'orphan_cleanup_probe_duration_seconds',
  orphanBytes: 'orphan_cleanup_orphan_bytes',
  probeP95: 'orphan_cleanup_probe_p95_seconds',
  live: 'orphan_cleanup_live',
  liveEvents: 'orphan_cleanup_live_events',
  sourceAnswering: 'orphan_cleanup_source_answering',
  sourceQuiet: 'orphan_cleanup_source_quiet_seconds',
} as const;

/** Probe latency buckets around the design note's 500 ms alert. */
const PROBE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const CATEGORY_LABELS = {
  ok: 'ok',
  orphans: 'orphans',
  parentInactive: 'parent_inactive',
  invalidReference: 'invalid_reference',
  excepted: 'excepted',
  inGrace: 'in_grace',
  deletable: 'deletable',
} as const;

/** A registry holding what a scan found, per relation and category. */
export function scanRegistry(report: ScanReport, registry = new Registry()): Registry {
  const documents = new Gauge({
    name: METRIC.documents,
    help: 'Child documents per relation and category at the last scan',
    labelNames: ['relation', 'category'],
    registers: [registry],
  });
  const scanned = new Gauge({
    name: METRIC.scanned,
    help: 'Child documents scanned',
    labelNames: ['relation'],
    registers: [registry],
  });
  const duration = new Gauge({
    name: METRIC.scanDuration,
    help: 'Duration of the last scan',
    labelNames: ['relation'],
    registers: [registry],
  });
  const lastSuccess = new Gauge({
    name: METRIC.lastSuccess,
    help: 'Unix time of the last complete scan',
    labelNames: ['relation'],
    registers: [registry],
  });
  const safe = new Gauge({
    name: METRIC.safe,
    help: '1 when the last scan passed every safety guard',
    labelNames: ['relation'],
    registers: [registry],
  });
  const growth = new Gauge({
    name: METRIC.growth,
    help: 'New orphans per day (absent on the first scan)',
    labelNames: ['relation'],
    registers: [registry],
  });
  const probes = new Histogram({
    name: METRIC.probeDuration,
    help: 'Cross-database parent probe latency',
    labelNames: ['relation', 'source'],
    buckets: PROBE_BUCKETS,
    registers: [registry],
  });
  const bytes = new Gauge({
    name: METRIC.orphanBytes,
    help: 'BSON bytes of orphaned and inactive children found by the last scan',
    labelNames: ['relation'],
    registers: [registry],
  });
  // A gauge as well as the histogram: a textfile collector replaces the file each run, so alert on this.
  const p95 = new Gauge({
    name: METRIC.probeP95,
    help: "p95 of the last scan's parent probe latency",
    labelNames: ['relation', 'source'],
    registers: [registry],
  });
  for (const relation of report.relations) {
    const labels = { relation: relation.name };
    for (const [field, category] of Object.entries(CATEGORY_LABELS)) {
      documents.set({ ...labels, category }, relation[field as keyof typeof CATEGORY_LABELS]);
    }
    scanned.set(labels, relation.scanned);
    duration.set(labels, relation.durationMs / 1000);
    safe.set(labels, relation.safe ? 1 : 0);
    if (relation.complete) lastSuccess.set(labels, Math.floor(report.finishedAt.getTime() / 1000));
    if (relation.growthPerDay !== null) growth.set(labels, relation.growthPerDay);
    bytes.set(labels, relation.orphanBytes);
    if (relation.probeLatencyMs.count)
      p95.set({ ...labels, source: relation.parent.source }, relation.probeLatencyMs.p95 / 1000);
    for (const ms of relation.probeDurationsMs)
      probes.observe({ ...labels, source: relation.parent.source }, ms / 1000);
  }
  return registry;
}

/**
 * `serve --watch`: whether each relation's counts are live (1) or the last scan's (0), and the change events
 * applied; before any scan, the live counts themselves as `orphan_cleanup_documents`.
 */
/** Each source's liveness (its heartbeats): answering or not, and seconds since its last answer. */
export function sourceRegistry(
  liveness: Record<string, { answering: boolean; quietSeconds?: number }>,
  registry: Registry,
): Registry {
  const answering = new Gauge({
    name: METRIC.sourceAnswering,
    help: "1 while the source answers its heartbeats, 0 once one is late (see the README's bounds)",
    labelNames: ['source'],
    registers: [registry],
  });
  const quiet = new Gauge({
    name: METRIC.sourceQuiet,
    help: 'Seconds since the source last answered a heartbeat',
    labelNames: ['source'],
    registers: [registry],
  });
  for (const [source, state] of Object.entries(liveness)) {
    answering.set({ source }, state.answering ? 1 : 0);
    if (state.quietSeconds !== undefined) quiet.set({ source }, state.quietSeconds);
  }
  return registry;
}

/** `stale`: relations whose live counts are not live now (a source not answering): reported as 0. */
export function liveRegistry(
  latest: Map<string, LiveCounts>,
  relations: string[],
  registry: Registry,
  stale: ReadonlySet<string> = new Set(),
): Registry {
  const live = new Gauge({
    name: METRIC.live,
    help: '1 when the relation counts are kept current by change streams, 0 when they are the last scan',
    labelNames: ['relation'],
    registers: [registry],
  });
  const events = new Gauge({
    name: METRIC.liveEvents,
    help: 'Change events applied to the live counts since the watcher started',
    labelNames: ['relation'],
    registers: [registry],
  });
  for (const relation of relations) {
    const counts = latest.get(relation);
    live.set({ relation }, counts && !stale.has(relation) ? 1 : 0);
    if (counts) events.set({ relation }, counts.events);
  }
  if (!registry.getSingleMetric(METRIC.documents)) {
    const documents = new Gauge({
      name: METRIC.documents,
      help: 'Child documents per relation and category (live counts; no scan yet)',
      labelNames: ['relation', 'category'],
      registers: [registry],
    });
    for (const counts of latest.values())
      for (const [field, category] of Object.entries(CATEGORY_LABELS))
        if (field in counts.counts)
          documents.set(
            { relation: counts.relation, category },
            counts.counts[field as keyof LiveCounts['counts']],
          );
  }
  return registry;
}

/** Writes the registry in Prometheus text format atomically (temp file, fsync, rename), for node_exporter. */
export async function writeMetricsFile(path: string, registry: Registry): Promise<void> {
  const text = await registry.metrics();
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFileSynced(temp, text, 0o644);
    await rename(temp, path);
  } catch (error) {
    await removeTemporary(temp);
    throw writeFailure(path, error);
  }
}

export const CLEANUP_METRIC = {
  deleted: 'orphan_cleanup_deleted_documents',
  skipped: 'orphan_cleanup_skipped_by_recheck_documents',
  duration: 'orphan_cleanup_cleanup_duration_seconds',
  backupBytes: 'orphan_cleanup_backup_bytes',
  mismatch: 'orphan_cleanup_backup_delete_mismatch_documents',
  successRatio: 'orphan_cleanup_success_ratio',
  reclaimed: 'orphan_cleanup_reclaimed_bytes',
} as const;

/** Deleted ÷ deletable at plan time; 1 when nothing was planned. */
export function successRatio(outcome: { planned: number; deleted: number }): number {
  return outcome.planned === 0 ? 1 : outcome.deleted / outcome.planned;
}

/** What a cleanup run did, per relation: deleted, skipped by the re-check (by reason), duration, backup bytes. */
export function cleanupRegistry(result: CleanupResult, registry = new Registry()): Registry {
  const deleted = new Gauge({
    name: CLEANUP_METRIC.deleted,
    help: 'Documents deleted by the last cleanup',
    labelNames: ['relation'],
    registers: [registry],
  });
  const skipped = new Gauge({
    name: CLEANUP_METRIC.skipped,
    help: 'Candidates kept by the re-check before delete, by reason',
    labelNames: ['relation', 'reason'],
    registers: [registry],
  });
  const duration = new Gauge({
    name: CLEANUP_METRIC.duration,
    help: 'Duration of the last cleanup',
    labelNames: ['relation'],
    registers: [registry],
  });
  const backupBytes = new Gauge({
    name: CLEANUP_METRIC.backupBytes,
    help: 'Bytes written to the backup by the last cleanup',
    labelNames: ['relation'],
    registers: [registry],
  });
  const mismatch = new Gauge({
    name: CLEANUP_METRIC.mismatch,
    help: 'Backed up but not deleted (changed or removed meanwhile)',
    labelNames: ['relation'],
    registers: [registry],
  });
  const success = new Gauge({
    name: CLEANUP_METRIC.successRatio,
    help: 'Deleted / deletable at plan time, last cleanup',
    labelNames: ['relation'],
    registers: [registry],
  });
  const reclaimed = new Gauge({
    name: CLEANUP_METRIC.reclaimed,
    help: 'Logical (BSON) bytes of the documents the last cleanup deleted; disk space is reclaimed by the storage engine later, if at all',
    labelNames: ['relation'],
    registers: [registry],
  });
  for (const outcome of result.relations) {
    const labels = { relation: outcome.name };
    deleted.set(labels, outcome.deleted);
    duration.set(labels, outcome.durationMs / 1000);
    backupBytes.set(labels, outcome.backupBytes);
    mismatch.set(labels, outcome.mismatch);
    success.set(labels, successRatio(outcome));
    reclaimed.set(labels, outcome.reclaimedBytes);
    for (const [reason, count] of Object.entries(outcome.skipped)) skipped.set({ ...labels, reason }, count);
  }
  return registry;
}
