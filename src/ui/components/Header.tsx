import { Box, Text } from 'ink';
import { SERVER_SELECTION_TIMEOUT_MS } from '../../mongo/timeouts.ts';
import { useElapsedSeconds } from '../hooks/use-elapsed-seconds.ts';
import type { SourceAnswer } from '../hooks/use-source-liveness.ts';
import type { SourceStatus } from '../services.ts';
import { lineCount, theme } from '../theme.ts';

/** A source's line after its mark and name: where it is, and its server or why it failed. */
export function statusDetail(s: SourceStatus): string {
  return ` ${s.hosts} db ${s.database}${
    s.ok
      ? `  ${s.sandbox ? 'sandbox' : 'MongoDB'} ${s.version} ${s.topology} ${s.latencyMs?.toFixed(1)} ms`
      : `  ${s.error ?? ''} (r retries)`
  }`;
}

/** The header's height at `width` columns: the title line, then each source's line as it wraps. */
export function headerLines(
  statuses: SourceStatus[] | undefined,
  width: number,
  liveness: Record<string, SourceAnswer> = {},
): number {
  return (
    1 +
    (statuses ?? []).reduce(
      (n, s) => n + lineCount(`${mark(s, liveness[s.name])}${statusDetail(s)}`, width),
      0,
    )
  );
}

/** A source's mark and name: ✓, or ✗ and for how long it has not answered its heartbeats. */
function mark(s: SourceStatus, answer: SourceAnswer | undefined): string {
  if (s.ok && answer?.answering === false) return `✗ ${s.name} no answer ${answer.quietSeconds ?? 0} s`;
  return `${s.ok ? '✓' : '✗'} ${s.name}`;
}

export function Header({
  statuses,
  readOnly,
  connectingSince,
  liveness = {},
}: {
  statuses?: SourceStatus[];
  /** Each source's heartbeat answers: one that stopped answering is shown with ✗ and how long. */
  liveness?: Record<string, SourceAnswer>;
  readOnly: boolean;
  /** A connection attempt under way since then: its elapsed time and timeout are shown. */
  connectingSince?: number;
}) {
  const elapsed = useElapsedSeconds(connectingSince);
  const limit = Math.round(SERVER_SELECTION_TIMEOUT_MS / 1000);
  return (
    <Box flexDirection="column">
      <Box>
        <Text bold color={theme.color('accent')}>
          orphan-cleanup
        </Text>
        {readOnly && (
          <Text color={theme.color('warn')} bold>
            {'  [READ-ONLY]'}
          </Text>
        )}
        {(!statuses || connectingSince !== undefined) && (
          <Text color={theme.color('dim')}>
            {connectingSince === undefined
              ? '  connecting…'
              : `  connecting… ${elapsed} s (gives up after ${limit} s)`}
          </Text>
        )}
      </Box>
      {statuses?.map((s) => (
        <Text key={s.name}>
          <Text color={theme.color(s.ok && liveness[s.name]?.answering !== false ? 'ok' : 'danger')}>
            {mark(s, liveness[s.name])}
          </Text>
          {statusDetail(s)}
        </Text>
      ))}
    </Box>
  );
}
