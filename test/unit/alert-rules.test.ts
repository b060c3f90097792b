import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { CleanupResult } from '../../src/cleanup/execute.ts';
import type { RelationReport, ScanReport } from '../../src/engine/run-scan.ts';
import { cleanupRegistry, scanRegistry } from '../../src/metrics/prometheus.ts';

const relation = {
  name: 'content_embeddings',
  child: {
    source: 'olorin',
    database: 'olorin_platform',
    collection: 'content_embeddings',
    field: 'content_id',
  },
  parent: { source: 'bayit', database: 'bayit_plus', collection: 'content', field: '_id' },
  scanned: 10,
  ok: 5,
  orphans: 3,
  parentInactive: 1,
  invalidReference: 1,
  excepted: 0,
  inGrace: 1,
  deletable: 3,
  safe: true,
  unsafeReasons: [],
  durationMs: 100,
  changeSincePrevious: 1,
  growthPerDay: 2,
  complete: true,
  probeLatencyMs: { count: 2, p50: 10, p95: 20, p99: 20 },
  probeDurationsMs: [10, 20],
  orphanBytes: 400,
} as unknown as RelationReport;

describe('Prometheus alert rules', () => {
  it('name only metrics the tool exports', async () => {
    const rules = parse(await readFile('deploy/prometheus/orphan-cleanup-rules.yml', 'utf8'));
    const exprs: string[] = rules.groups.flatMap((group: { rules: { expr: string }[] }) =>
      group.rules.map((rule) => rule.expr),
    );
    expect(exprs).toHaveLength(5);
    const report: ScanReport = { startedAt: new Date(), finishedAt: new Date(), relations: [relation] };
    const result = {
      runId: 'r',
      runDir: '/b/r',
      status: 'completed',
      relations: [
        {
          name: 'content_embeddings',
          planned: 3,
          deleted: 3,
          backedUp: 3,
          mismatch: 0,
          skipped: { gone: 0 },
          backupBytes: 300,
          reclaimedBytes: 300,
          backupMs: 1,
          durationMs: 5,
        },
      ],
    } as unknown as CleanupResult;
    const exported = await cleanupRegistry(result, scanRegistry(report)).metrics();
    const names = new Set(
      [...exported.matchAll(/^([a-z0-9_]+?)(?:_bucket|_sum|_count)?[{ ]/gm)].map((m) => m[1]),
    );
    for (const expr of exprs) {
      for (const [name] of expr.matchAll(/orphan_cleanup_[a-z0-9_]+/g))
        expect(names, `${name} in "${expr}"`).toContain(name);
    }
    expect(exported).toContain('orphan_cleanup_success_ratio{relation="content_embeddings"} 1');
    expect(exported).toContain(
      'orphan_cleanup_probe_duration_seconds_bucket{le="0.025",relation="content_embeddings",source="bayit"} 2',
    );
  });
});
