import { Box, Text } from 'ink';
import { useEffect, useState } from 'react';
import { SERVER_SELECTION_TIMEOUT_MS } from '../../mongo/timeouts.ts';
import type { SourceStatus } from '../services.ts';
import { theme } from '../theme.ts';

/** Seconds since `since`, ticking once a second while it is set. */
function useElapsedSeconds(since: number | undefined): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (since === undefined) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [since]);
  return since === undefined ? 0 : Math.max(0, Math.floor((now - since) / 1000));
}

export function Header({
  statuses,
  readOnly,
  connectingSince,
}: {
  statuses?: SourceStatus[];
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
        <Text key={s.name} wrap="truncate-end">
          {s.ok ? (
            <Text color={theme.color('ok')}>{`✓ ${s.name}`}</Text>
          ) : (
            <Text color={theme.color('danger')}>{`✗ ${s.name}`}</Text>
          )}
          {` ${s.uri} db ${s.database}`}
          {s.ok
            ? `  ${s.sandbox ? 'sandbox' : 'MongoDB'} ${s.version} ${s.topology} ${s.latencyMs?.toFixed(1)} ms`
            : `  ${s.error ?? ''} (r retries)`}
        </Text>
      ))}
    </Box>
  );
}
