import { redact } from './mongo/redact.ts';

/** Exit codes, in one place: what cron and schedulers act on. */
/**
 * 4: a dry run whose plan an execution would refuse (unsafe relations, the separation switch): nothing to run.
 * 5: `restore`/`verify` selected nothing (no document of that reference or relation in the backup).
 * 6: `restore` had nothing to do: every selected document is already present.
 * 7: `verify` found backed-up documents absent from the database.
 */
export const ExitCode = {
  Ok: 0,
  Runtime: 1,
  Usage: 2,
  Alert: 3,
  PlanRefused: 4,
  NothingSelected: 5,
  AllPresent: 6,
  SomeAbsent: 7,
} as const;

/** Bad flags, config, URIs or names: the operator must change the command. Exit 2. */
export class UsageError extends Error {}

/** Something failed while running (unreachable server, corrupted backup, refused guard). Exit 1. */
export class RuntimeError extends Error {}

export function exitCodeFor(error: unknown): number {
  return error instanceof UsageError ? ExitCode.Usage : ExitCode.Runtime;
}

/** The one line printed for an error: its message, redacted, without a stack. */
export function formatError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const firstLine = message.split('\n').find((line) => line.trim()) ?? 'unknown error';
  return `orphan-cleanup: ${redact(firstLine.trim())}`;
}
