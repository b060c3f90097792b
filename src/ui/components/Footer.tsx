import { Box, Text } from 'ink';
import { footerHints } from '../keymap.ts';
import type { UiState, View } from '../state/reducer.ts';
import { theme } from '../theme.ts';

export function Footer({ view, message }: { view: View['name']; message: UiState['message'] }) {
  const tone = message?.tone === 'error' ? 'danger' : message?.tone === 'warn' ? 'warn' : 'accent';
  return (
    <Box flexDirection="column">
      {message && <Text color={theme.color(tone)}>{message.text}</Text>}
      <Text color={theme.color('dim')} wrap="truncate-end">
        {footerHints(view)} · ? help
      </Text>
    </Box>
  );
}
