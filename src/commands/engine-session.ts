import { type LoadConfigOptions, loadConfig, type ResolvedConfig } from '../config/load.ts';
import { configureLogging } from '../logging.ts';
import { SourcePool } from '../mongo/sources.ts';
import { ensureWritableFile } from '../paths.ts';
import type { WriteAccess } from '../store/access.ts';

/** Flags every engine command shares. */
export interface EngineFlags {
  config?: string;
  source?: string[];
  relation?: string[];
  graceDays?: number;
  readOnly?: boolean;
  logLevel?: string;
  logFile?: string;
  allowCollectionScan?: boolean;
  /** Commands that write Prometheus text: checked before any work, so a bad path fails at once. */
  metricsFile?: string;
}

/** How a scan reads the children (`scan` and `clean`). */
export interface ScanReadFlags {
  resume?: boolean;
  parallel?: number;
  checkpointSeconds?: number;
}

export interface EngineSession {
  config: ResolvedConfig;
  pool: SourcePool;
  access: WriteAccess;
}

/** Loads the config, opens the sources lazily, and always closes them. */
export async function withEngine<T>(
  flags: EngineFlags,
  run: (session: EngineSession) => Promise<T>,
  sourcesNeeded: LoadConfigOptions['sourcesNeeded'] = 'all',
): Promise<T> {
  await configureLogging({ level: flags.logLevel, file: flags.logFile });
  if (flags.metricsFile) await ensureWritableFile(flags.metricsFile, '--metrics-file');
  const config = await loadConfig({
    configPath: flags.config,
    sourceOverrides: flags.source,
    relationNames: flags.relation,
    graceDays: flags.graceDays,
    sourcesNeeded,
    allowCollectionScan: flags.allowCollectionScan,
  });
  const pool = new SourcePool(config.sources, { maxTimeMS: config.maxTimeMS });
  try {
    return await run({ config, pool, access: { readOnly: Boolean(flags.readOnly) } });
  } finally {
    await pool.close();
  }
}

/** An AbortSignal raised by the first SIGINT/SIGTERM, so work stops at a clean point. */
export function abortOnSignals(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

/** A notice for the operator at the terminal (stderr, so stdout stays the report). */
export function printNotice(message: string): void {
  process.stderr.write(`${message}\n`);
}
