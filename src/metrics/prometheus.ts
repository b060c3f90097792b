import { rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Gauge, Registry } from 'prom-client';
import type { CleanupResult } from '../cleanup/execute.ts';
import type { ScanReport } from '../engine/run-scan.ts';
import { writeFileSynced } from '../mongo/dump-layout.ts';

/** Metric names the tool exports (the alert rules refer to these). */
export const METRIC = {
  documents: 'orphan_cleanup_documents',
  scanned: 'orphan_cleanup_scanned_documents',
  scanDuration: 'orphan_cleanup_scan_duration_seconds',
  lastSuccess: 'orphan_cleanup_last_success_timestamp_seconds',
  safe: 'orphan_cleanup_relation_safe',
  growth: 'orphan_cleanup_orphan_growth_per_day',
} as const;

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
  }
  return registry;
}

/** Writes the registry in Prometheus text format atomically (temp file, fsync, rename), for node_exporter. */
export async function writeMetricsFile(path: string, registry: Registry): Promise<void> {
  const text = await registry.metrics();
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFileSynced(temp, text, 0o644);
  await rename(temp, path);
}

export const CLEANUP_METRIC = {
  deleted: 'orphan_cleanup_deleted_documents',
  skipped: 'orphan_cleanup_skipped_by_recheck_documents',
  duration: 'orphan_cleanup_cleanup_duration_seconds',
  backupBytes: 'orphan_cleanup_backup_bytes',
  mismatch: 'orphan_cleanup_backup_delete_mismatch_documents',
} as const;

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
  for (const outcome of result.relations) {
    const labels = { relation: outcome.name };
    deleted.set(labels, outcome.deleted);
    duration.set(labels, outcome.durationMs / 1000);
    backupBytes.set(labels, outcome.backupBytes);
    mismatch.set(labels, outcome.mismatch);
    for (const [reason, count] of Object.entries(outcome.skipped)) skipped.set({ ...labels, reason }, count);
  }
  return registry;
}
