// One scan in its own process, so its peak RSS is its own:
//   node bin/run-ts bench/scan-worker.ts URI DB COLLECTION [scan|plan|resume] [read-only|write]
// `plan` is what `clean` does without --execute: a scan keeping a sample of the candidates, then the plan;
// `resume` continues the collection's unfinished scan. BENCH_PARALLEL=n reads n `_id` ranges at once;
// BENCH_CHECKPOINT_MS sets how often the scan records its checkpoint.
import { buildPlan, PLAN_SAMPLE_SIZE } from '../src/cleanup/plan.ts';
import { loadConfig } from '../src/config/load.ts';
import { runScan } from '../src/engine/run-scan.ts';
import { SourcePool } from '../src/mongo/sources.ts';
import { peakRssMb } from './support.ts';

const [uri, database, collection, mode = 'scan', access = 'read-only'] = process.argv.slice(2);
const { writeFile, mkdtemp } = await import('node:fs/promises');
const { join } = await import('node:path');
const { tmpdir } = await import('node:os');
const path = join(await mkdtemp(join(tmpdir(), 'oc-bench-')), 'config.json');
await writeFile(
  path,
  JSON.stringify({
    sources: { child: { uri, database }, parent: { uri, database: `${database}_parents` } },
    relations: [
      {
        name: 'bench',
        child: { source: 'child', collection, field: 'content_id' },
        parent: { source: 'parent', collection: 'content', softDeleteField: 'deleted_at' },
        keyMatch: 'objectid-or-hex',
      },
    ],
  }),
);
const config = await loadConfig({ configPath: path });
const pool = new SourcePool(config.sources);
const cpuBefore = process.cpuUsage();
const started = performance.now();
const report = await runScan({
  config,
  pool,
  access: { readOnly: access === 'read-only' },
  record: false,
  resume: mode === 'resume',
  parallel: Number(process.env.BENCH_PARALLEL ?? 1),
  ...(process.env.BENCH_CHECKPOINT_MS
    ? { checkpointIntervalMs: Number(process.env.BENCH_CHECKPOINT_MS) }
    : {}),
  ...(mode === 'plan' ? { candidateLimit: PLAN_SAMPLE_SIZE } : {}),
});
if (mode === 'plan') await buildPlan(report, config, pool, { deleteBatchSize: 1000 });
const scanMs = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
const cpuMs = (cpu.user + cpu.system) / 1000;
await pool.close();
const [relation] = report.relations;
process.stdout.write(
  `${JSON.stringify({ scanMs, cpuMs, rssMb: peakRssMb(), scanned: relation.scanned, documentsRead: relation.documentsRead, ok: relation.ok, orphans: relation.orphans, inGrace: relation.inGrace, deletable: relation.deletable, roundTrips: relation.roundTrips, p95: relation.probeLatencyMs.p95 })}\n`,
);
