import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PipelineOptions, runCleanupPipeline } from '../../src/cleanup/pipeline.ts';
import { restoreBackup } from '../../src/cleanup/restore.ts';
import type { ResolvedConfig } from '../../src/config/load.ts';
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

/** What `clean --execute --yes` does: the product's cleanup pipeline, deleting in batches of 100 unless told. */
export async function scanAndClean(
  demo: Pick<CleanableDemo, 'config' | 'backupRoot'>,
  options: NonNullable<PipelineOptions['execution']> &
    Pick<PipelineOptions, 'allowUnsafe' | 'signal' | 'onNotice' | 'operator' | 'maxDeletes'> & {
      config?: ResolvedConfig;
      batchSize?: number;
    } = {},
) {
  const {
    config: configOverride,
    batchSize,
    allowUnsafe,
    signal,
    onNotice,
    operator,
    maxDeletes,
    ...execution
  } = options;
  const config = configOverride ?? demo.config;
  const pool = new SourcePool(config.sources);
  try {
    const outcome = await runCleanupPipeline({
      config,
      pool,
      access: { readOnly: false },
      execute: true,
      maxDeletes,
      deleteBatchSize: batchSize ?? 100,
      backupRoot: demo.backupRoot,
      allowUnsafe,
      signal,
      onNotice,
      operator,
      execution,
    });
    if (outcome.kind !== 'executed') throw new Error(`the cleanup did not run: ${outcome.kind}`);
    return outcome;
  } finally {
    await pool.close();
  }
}

/** What `restore <run> --yes` does: every document of the run's backup put back, through a pool of its own. */
export async function restoreAll(runDir: string, config: ResolvedConfig) {
  const pool = new SourcePool(config.sources);
  try {
    return await restoreBackup(runDir, {
      config,
      pool,
      access: { readOnly: false },
      selection: {},
      dryRun: false,
    });
  } finally {
    await pool.close();
  }
}
