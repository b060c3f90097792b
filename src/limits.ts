/** Constants several layers share (config, cleanup, engine, console), below all of them. */

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** Where backups go when neither a flag nor the settings say. */
export const DEFAULT_BACKUP_ROOT = 'orphan-cleanup-backups';

/** A delete batch is one `$in` of `_id`s and one of references: at most 1,000 values each. */
export const MAX_BATCH_SIZE = 1000;

/** A delete batch size as typed (flag, settings, console); undefined when it is not a whole number in range. */
export function parseBatchSize(value: string): number | undefined {
  const n = Number(value);
  return value.trim() !== '' && Number.isInteger(n) && n >= 1 && n <= MAX_BATCH_SIZE ? n : undefined;
}
