import { redact } from './mongo/redact.ts';

/** Exit codes, in one place: what cron and schedulers act on. */
/** 4: a dry run whose plan an execution would refuse (unsafe relations, the separation switch): nothing to run. */
export const ExitCode = { Ok: 0, Runtime: 1, Usage: 2, Alert: 3, PlanRefused: 4 } as const;

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
