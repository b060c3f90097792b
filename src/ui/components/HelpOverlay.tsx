import { Box, Text } from 'ink';
import { BINDINGS, GLOBAL_BINDINGS, type KeySet } from '../keymap.ts';
import { cell } from '../theme.ts';

/**
 * Every key of the current screen, then the keys every screen shares: the table the routing reads. When the
 * list is taller than the space it has, it is laid out in two columns.
 */
export function HelpOverlay({
  view,
  width = 100,
  height = 40,
}: {
  view: KeySet;
  width?: number;
  height?: number;
}) {
  const rows = [
    ...[...BINDINGS[view], ...GLOBAL_BINDINGS].map(({ label, what }) => [label, what] as const),
    ['Esc ?', 'close this help'] as const,
  ];
  const columns = rows.length + 3 > height ? 2 : 1;
  const perColumn = Math.ceil(rows.length / columns);
  const columnWidth = Math.floor((width - 4) / columns);
  const labelWidth = columns === 2 ? 10 : 14;
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text bold>Keys on this screen</Text>
      <Box>
        {(columns === 2 ? ['left', 'right'] : ['only']).map((side, c) => (
          <Box key={side} flexDirection="column" width={columnWidth}>
            {rows.slice(c * perColumn, (c + 1) * perColumn).map(([label, what]) => (
              <Text key={label + what} wrap="truncate-end">
                {cell(label, labelWidth)} {what}
              </Text>
            ))}
          </Box>
        ))}
      </Box>
    </Box>
  );
}
