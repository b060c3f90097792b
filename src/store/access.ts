import { RuntimeError } from '../errors.ts';

/** Names of the collections the tool owns, kept in each child's database. */
export const OWNED_COLLECTIONS = {
  runs: 'orphan_cleanup_runs',
  firstSeen: 'orphan_cleanup_first_seen',
  exceptions: 'orphan_cleanup_exceptions',
  locks: 'orphan_cleanup_locks',
  /** The live-count watcher's saved state per relation (counts, unresolved references, stream positions). */
  watch: 'orphan_cleanup_watch',
} as const;

/** Raised by every write path when the session is read-only: enforced where writes happen, not in the UI. */
export class ReadOnlyError extends RuntimeError {}

export interface WriteAccess {
  readOnly: boolean;
}

export function assertWritable(access: WriteAccess, what: string): void {
  if (access.readOnly) throw new ReadOnlyError(`read-only mode: refusing to ${what}`);
}
