import { Box, Text, useInput } from 'ink';
import { useEffect, useRef, useState } from 'react';
import { lineCount, theme } from '../theme.ts';

/** The prompt's height at `width` columns: its border, its label as it wraps, and the input line. */
export function promptLines(label: string, width: number): number {
  return 2 + lineCount(label, width - 4) + 1;
}

/**
 * One question answered by typing and Enter; Esc (handled by the app's key router) cancels.
 * The typed text lives in a ref as well as in state: text and Enter pasted in one chunk arrive in the
 * same tick, and Enter must see the text typed just before it, not the last rendered value.
 */
export function PromptLine({ label, onSubmit }: { label: string; onSubmit: (value: string) => void }) {
  const value = useRef('');
  const [shown, setShown] = useState('');
  // Declared after useInput's own effect, so "> " appears only once keys reach this prompt.
  const [ready, setReady] = useState(false);
  useInput((input, key) => {
    if (key.return) {
      onSubmit(value.current);
      return;
    }
    if (key.backspace || key.delete) value.current = value.current.slice(0, -1);
    else if (
      key.escape ||
      key.ctrl ||
      key.meta ||
      key.tab ||
      key.upArrow ||
      key.downArrow ||
      key.leftArrow ||
      key.rightArrow
    )
      return;
    else {
      // A paste of "text<Enter>" can arrive as one input: the text, then the submit.
      const newline = input.search(/[\r\n]/);
      value.current += newline >= 0 ? input.slice(0, newline) : input;
      if (newline >= 0) {
        onSubmit(value.current);
        return;
      }
    }
    setShown(value.current);
  });
  useEffect(() => setReady(true), []);
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={theme.color('warn')} paddingX={1}>
      <Text>{label}</Text>
      {/* One line whatever is typed: the end of a long answer stays in view. */}
      <Text wrap="truncate-start">
        <Text color={theme.color('accent')}>{ready ? '> ' : '  '}</Text>
        {shown}
        <Text inverse> </Text>
      </Text>
    </Box>
  );
}
