import { Box, Text } from 'ink';
import { BINDINGS, GLOBAL_BINDINGS } from '../keymap.ts';
import type { View } from '../state/reducer.ts';

/** Every key of the current screen, then the keys every screen shares: the table the routing reads. */
export function HelpOverlay({ view }: { view: View['name'] }) {
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text bold>Keys on this screen</Text>
      {[...BINDINGS[view], ...GLOBAL_BINDINGS].map(({ label, what, command }) => (
        <Text key={`${command}-${label}`}>
          {label.padEnd(14)} {what}
        </Text>
      ))}
      <Text>{'Esc ?'.padEnd(14)} close this help</Text>
    </Box>
  );
}
