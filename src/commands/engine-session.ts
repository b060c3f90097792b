import { type LoadConfigOptions, loadConfig, type ResolvedConfig } from '../config/load.ts';
import { RuntimeError, UsageError } from '../errors.ts';
import { configureLogging } from '../logging.ts';
import { SilentSourceError } from '../mongo/liveness.ts';
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
  /** What the command is doing now, for the line that ends it if a source goes silent. */
  activity: SessionActivity;
}

/**
 * What a command is doing (`restoring batch 2 of 5 of content_embeddings`), what it has done so far
 * (`1000 inserted`) and what to do when the silent source answers again: said in the line that ends a
 * command whose source went silent, instead of the driver's error for the ended operation.
 */
export interface SessionActivity {
  command: string;
  doing: string;
  done?: string;
  next: string;
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
  const activity: SessionActivity = { command: 'the command', doing: 'connecting', next: 'run it again' };
  try {
    return await run({ config, pool, access: { readOnly: Boolean(flags.readOnly) }, activity });
  } catch (error) {
    // Lines the command already wrote in plain words (clean's, scan's) stand; a driver error for an operation
    // ended because its source went silent is replaced by what the command was doing.
    const silent =
      error instanceof SilentSourceError
        ? error
        : error instanceof RuntimeError || error instanceof UsageError
          ? undefined
          : pool.silentSources()[0];
    if (!silent) throw error;
    throw new RuntimeError(silentLine(silent, activity));
  } finally {
    await pool.close();
  }
}

/** The plain-words end of a command whose source went silent: which, where, doing what, done what, what next. */
export function silentLine(silent: SilentSourceError, activity: SessionActivity): string {
  const next = activity.next.replaceAll('{source}', silent.source);
  return `${activity.command} failed: ${silent.message} while ${activity.doing}${activity.done ? `; ${activity.done}` : ''}; ${next}`;
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
