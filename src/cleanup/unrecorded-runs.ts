import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { ResolvedConfig } from '../config/load.ts';
import { log } from '../logging.ts';
import { redact } from '../mongo/redact.ts';
import type { SourcePool } from '../mongo/sources.ts';
import type { WriteAccess } from '../store/access.ts';
import { type RunRecord, RunsStore } from '../store/runs.ts';
import { AUDIT_FILE, appendAudit } from './audit.ts';

/**
 * A run record that could not be written to `orphan_cleanup_runs` (its cluster was silent), as the audit line
 * carries it: read back as input, so every field is checked and anything else is skipped.
 */
const unrecordedRun = z
  .object({
    runId: z.string().min(1).max(200),
    kind: z.enum(['clean', 'restore']),
    relation: z.string().min(1).max(200),
    startedAt: z.coerce.date(),
    finishedAt: z.coerce.date(),
    durationMs: z.number().nonnegative(),
    operator: z.string().max(200),
    host: z.string().max(300),
    outcome: z.enum(['succeeded', 'failed', 'aborted']),
    complete: z.boolean(),
    counts: z.record(z.string(), z.number()),
    backupPath: z.string().max(4096).optional(),
    error: z.string().max(10_000).optional(),
  })
  .strict();

const auditLine = z.object({
  runId: z.string().optional(),
  relation: z.string().optional(),
  kind: z.string().optional(),
  unrecordedRuns: z.array(z.unknown()).optional(),
});

/**
 * Writes the run records that earlier runs could not (their child cluster was silent when they ended), from
 * the audit log under `backupRoot`, to each relation's child cluster that answers now; each one written is
 * noted in the audit log so it is written once. Failures are logged and left for the next run.
 */
export async function writeMissingRunRecords(
  backupRoot: string,
  config: ResolvedConfig,
  pool: SourcePool,
  access: WriteAccess,
): Promise<number> {
  if (access.readOnly) return 0;
  let text: string;
  try {
    text = await readFile(join(backupRoot, AUDIT_FILE), 'utf8');
  } catch {
    return 0;
  }
  const missing = new Map<string, RunRecord>();
  const written = new Set<string>();
  const keyOf = (run: { runId: string; relation: string }) => `${run.runId}\u0000${run.relation}`;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let parsed: z.infer<typeof auditLine>;
    try {
      parsed = auditLine.parse(JSON.parse(line));
    } catch {
      continue;
    }
    if (parsed.kind === 'run-recorded' && parsed.runId && parsed.relation) {
      written.add(keyOf({ runId: parsed.runId, relation: parsed.relation }));
      continue;
    }
    for (const candidate of parsed.unrecordedRuns ?? []) {
      const run = unrecordedRun.safeParse(candidate);
      if (run.success) missing.set(keyOf(run.data), run.data as RunRecord);
      else
        log.warn(
          { error: run.error.issues[0]?.message },
          'audit log: an unrecorded run record is malformed; skipped',
        );
    }
  }
  let count = 0;
  for (const [key, run] of missing) {
    if (written.has(key)) continue;
    const relation = config.relations.find((r) => r.name === run.relation);
    if (!relation) continue;
    try {
      await new RunsStore(await pool.primaryDb(relation.child.source), access).record(run);
      await appendAudit(backupRoot, { kind: 'run-recorded', runId: run.runId, relation: run.relation });
      count++;
    } catch (error) {
      log.warn(
        { runId: run.runId, relation: run.relation, error: redact((error as Error).message) },
        'an earlier run record is still not written',
      );
    }
  }
  return count;
}
