import { Box, Text, useInput } from 'ink';
import { useEffect, useRef, useState } from 'react';
import { lineCount, theme } from '../theme.ts';

/** The prompt's height at `width` columns: its border, its label as it wraps, and the input line. */
export function promptLines(label: string, width: number): number {
  return 2 + lineCount(label, width - 4) + 1;
}

/**
 * What a chunk of typed input does to the text: key repeat, a paste or a slow link deliver several keys at
 * once, so each character counts — every Backspace (DEL or BS) deletes one character, a newline submits, and
 * every other control character and escape sequence (bracketed-paste markers, arrows) is dropped, never kept
 * as invisible bytes in the answer.
 */
export function applyTyping(value: string, input: string): { value: string; submitted: boolean } {
  let text = value;
  // Escape sequences whole (CSI: ESC [ … final byte; and two-character ones), then one character at a time.
  const plain = input.replace(/\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-_]/g, '');
  for (const char of plain) {
    if (char === '\r' || char === '\n') return { value: text, submitted: true };
    if (char === '\x7f' || char === '\b') text = [...text].slice(0, -1).join('');
    else if (!/[\u0000-\u001f\u007f-\u009f]/.test(char)) text += char;
  }
  return { value: text, submitted: false };
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
    if (
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
    const typed = applyTyping(value.current, key.backspace || key.delete ? '\x7f' : input);
    value.current = typed.value;
    if (typed.submitted) {
      onSubmit(value.current);
      return;
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
