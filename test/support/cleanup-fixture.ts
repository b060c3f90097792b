import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executeCleanup } from '../../src/cleanup/execute.ts';
import { buildPlan } from '../../src/cleanup/plan.ts';
import type { ResolvedConfig } from '../../src/config/load.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { loadOlorinDemo, type OlorinFixture } from './olorin-fixture.ts';
import type { TestServer } from './sandbox.ts';

export type CleanableDemo = OlorinFixture & { backupRoot: string };

let fixtures = 0;

/** Fresh demo data with no grace period, so every orphan and inactive child is deletable at once; a backup root. */
export async function freshDemo(
  server: TestServer,
  extra: Parameters<typeof loadOlorinDemo>[1] = {},
): Promise<CleanableDemo> {
  const demo = await loadOlorinDemo(server, { name: `c${fixtures++}`, graceDays: 0, ...extra });
  return { ...demo, backupRoot: await mkdtemp(join(tmpdir(), 'oc-backups-')) };
}

/** What `clean --execute --yes` does: scan, plan (batches of 100 unless told), execute. */
export async function scanAndClean(
  demo: Pick<CleanableDemo, 'config' | 'backupRoot'>,
  options: Partial<Parameters<typeof executeCleanup>[0]> & {
    maxDeletes?: number;
    config?: ResolvedConfig;
    batchSize?: number;
  } = {},
) {
  const config = options.config ?? demo.config;
  const pool = new SourcePool(config.sources);
  try {
    const report = await runScan({
      config,
      pool,
      access: { readOnly: false },
      candidateLimit: options.maxDeletes ?? Number.POSITIVE_INFINITY,
    });
    const plan = await buildPlan(report, config, pool, {
      backupRoot: demo.backupRoot,
      batchSize: options.batchSize ?? 100,
      maxDeletes: options.maxDeletes,
    });
    const result = await executeCleanup({ access: { readOnly: false }, ...options, plan, config, pool });
    return { report, plan, result };
  } finally {
    await pool.close();
  }
}
