import { Box, Text } from 'ink';
import { KEYS } from '../keymap.ts';
import type { View } from '../state/reducer.ts';

/** Every key of the current screen; Esc or ? closes it. */
export function HelpOverlay({ view }: { view: View['name'] }) {
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text bold>Keys on this screen</Text>
      {KEYS[view].map(([keys, what]) => (
        <Text key={keys}>
          {keys.padEnd(14)} {what}
        </Text>
      ))}
      <Text>{'?'.padEnd(14)} close this help</Text>
    </Box>
  );
}
