/** Constants several layers share (config, cleanup, engine, console), below all of them. */

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** Where backups go when neither a flag, ORPHAN_CLEANUP_BACKUP_DIR nor the settings say. */
export const DEFAULT_BACKUP_ROOT = 'orphan-cleanup-backups';

/**
 * The backup folder given by the environment (`ORPHAN_CLEANUP_BACKUP_DIR`), else the default: so a second
 * terminal (the demo prints the export) finds the same backups. A `--backup-dir` flag wins over both.
 */
export function backupRootFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = env.ORPHAN_CLEANUP_BACKUP_DIR?.trim();
  return dir ? dir : undefined;
}

export function defaultBackupRoot(env: NodeJS.ProcessEnv = process.env): string {
  return backupRootFromEnv(env) ?? DEFAULT_BACKUP_ROOT;
}

/** A delete batch is one `$in` of `_id`s and one of references: at most 1,000 values each. */
export const MAX_BATCH_SIZE = 1000;

/** A delete batch size as typed (flag, settings, console); undefined when it is not a whole number in range. */
export function parseBatchSize(value: string): number | undefined {
  const n = Number(value);
  return value.trim() !== '' && Number.isInteger(n) && n >= 1 && n <= MAX_BATCH_SIZE ? n : undefined;
}
