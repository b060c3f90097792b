import { resolve } from 'node:path';
import { BSON, type Document } from 'bson';
import type { ResolvedConfig } from '../config/load.ts';
import { formatBatches, formatBytes, formatCount as n, relationHeading } from '../engine/format.ts';
import type { RelationReport, ScanReport } from '../engine/run-scan.ts';
import type { Candidate } from '../engine/scan.ts';
import { defaultBackupRoot } from '../limits.ts';
import type { SourcePool } from '../mongo/sources.ts';

/** Candidates a dry run keeps: enough to estimate the backup, independent of the backlog. */
export const PLAN_SAMPLE_SIZE = 20;

export interface RelationPlan {
  name: string;
  child: RelationReport['child'];
  parent: RelationReport['parent'];
  /** Deletable after exceptions and grace. */
  deletable: number;
  /** What this run will try to delete (after --max-deletes). */
  toDelete: number;
  deferred: number;
  batches: number;
  estimatedBackupBytes: number;
  excepted: number;
  inGrace: number;
  invalidReference: number;
  safe: boolean;
  unsafeReasons: string[];
  /** Oldest first, capped by --max-deletes; only a sample when `sampled` (a dry run's plan). */
  candidates: Candidate[];
  /** The plan was built from a scan that kept a sample of the candidates: it shows, it cannot execute. */
  sampled: boolean;
}

export interface CleanupPlan {
  backupRoot: string;
  /** Documents per delete batch (a relation's `batchSize` is its parent probes'). */
  deleteBatchSize: number;
  relations: RelationPlan[];
  /** Reasons nothing may be deleted, whatever the overrides (the separation switch). */
  refusals: string[];
}

export interface PlanOptions {
  backupRoot?: string;
  deleteBatchSize: number;
  maxDeletes?: number;
}

/** Average BSON size of a few candidates, read once, to estimate the backup. */
async function averageSize(pool: SourcePool, plan: RelationReport, candidates: Candidate[]): Promise<number> {
  if (candidates.length === 0) return 0;
  const db = await pool.db(plan.child.source);
  const docs: Document[] = await db
    .collection(plan.child.collection)
    .find({ _id: { $in: candidates.slice(0, PLAN_SAMPLE_SIZE).map((c) => c.id) } } as Document)
    .toArray();
  if (docs.length === 0) return 0;
  return docs.reduce((sum, doc) => sum + BSON.calculateObjectSize(doc), 0) / docs.length;
}

/** What a cleanup would do, per relation, from a scan that collected its candidates. */
export async function buildPlan(
  report: ScanReport,
  config: ResolvedConfig,
  pool: SourcePool,
  options: PlanOptions,
): Promise<CleanupPlan> {
  let remaining = options.maxDeletes ?? Number.POSITIVE_INFINITY;
  const relations: RelationPlan[] = [];
  for (const relation of report.relations) {
    // The scan kept the oldest candidates (all, --max-deletes of them, or a dry run's sample).
    const toDelete = Math.max(0, Math.min(relation.deletable, remaining));
    remaining -= toDelete;
    const chosen = relation.candidates.slice(0, toDelete);
    const average = await averageSize(pool, relation, chosen);
    relations.push({
      name: relation.name,
      child: relation.child,
      parent: relation.parent,
      deletable: relation.deletable,
      toDelete,
      deferred: relation.deletable - toDelete,
      batches: Math.ceil(toDelete / options.deleteBatchSize),
      estimatedBackupBytes: Math.ceil(average * toDelete),
      excepted: relation.excepted,
      inGrace: relation.inGrace,
      invalidReference: relation.invalidReference,
      safe: relation.safe,
      unsafeReasons: relation.unsafeReasons,
      candidates: chosen,
      sampled: chosen.length < toDelete,
    });
  }
  return {
    backupRoot: resolve(options.backupRoot ?? defaultBackupRoot()),
    deleteBatchSize: options.deleteBatchSize,
    relations,
    refusals: separationRefusals(config),
  };
}

/** Deletes need the design note's switch explicitly on; no override reaches past it. */
function separationRefusals(config: ResolvedConfig): string[] {
  const enable =
    'set OLORIN_USE_SEPARATE_DATABASE=true once the Olorin and Bayit+ data live in separate databases';
  if (config.separation === 'off')
    return [
      `OLORIN_USE_SEPARATE_DATABASE=false: the design note requires separate databases before any cleanup; ${enable}`,
    ];
  if (config.separation === 'unset')
    return [`OLORIN_USE_SEPARATE_DATABASE is not set: deletes need it; ${enable}`];
  return [];
}

/** The plan in words: what a dry run would delete, or, before an executed run, what it will. */
export function planText(plan: CleanupPlan, executing = false): string {
  const lines: string[] = [];
  const idle = plan.relations.filter((r) => r.toDelete === 0 && r.safe);
  for (const r of plan.relations) {
    if (idle.includes(r)) continue;
    lines.push(relationHeading(r));
    lines.push(
      `  ${executing ? 'will delete' : 'would delete'} ${n(r.toDelete)} of ${n(r.deletable)} deletable in ${formatBatches(r.batches, plan.deleteBatchSize)}${r.deferred ? ` (${n(r.deferred)} deferred by --max-deletes)` : ''}`,
    );
    lines.push(
      `  kept: ${n(r.excepted)} excepted, ${n(r.inGrace)} in grace, ${n(r.invalidReference)} invalid references (never deleted)`,
    );
    lines.push(
      `  backup: ~${formatBytes(r.estimatedBackupBytes)} to ${plan.backupRoot}/<run id>/${r.child.database}/${r.child.collection}.bson`,
    );
    lines.push(
      r.safe
        ? '  guards: safe'
        : `  guards: UNSAFE - ${r.unsafeReasons.join('; ')} (refused without --allow-unsafe)`,
    );
  }
  // Relations with nothing to delete: one line between them, with why (grace, exceptions, invalid references).
  if (idle.length)
    lines.push(
      `nothing to delete in ${idle
        .map(
          (r) =>
            `${r.name} (${n(r.inGrace)} in grace, ${n(r.excepted)} excepted, ${n(r.invalidReference)} invalid)`,
        )
        .join(', ')}`,
    );
  for (const refusal of plan.refusals) lines.push(`refused: ${refusal}`);
  return `${lines.join('\n')}\n`;
}
