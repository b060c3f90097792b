import { Box, Text } from 'ink';
import type { SourceStatus } from '../services.ts';
import { theme } from '../theme.ts';

export function Header({ statuses, readOnly }: { statuses?: SourceStatus[]; readOnly: boolean }) {
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
        {!statuses && <Text color={theme.color('dim')}>{'  connecting…'}</Text>}
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
