import { Box, Text } from 'ink';
import { useElapsedSeconds } from '../hooks/use-elapsed-seconds.ts';
import { footerHints, type KeySet } from '../keymap.ts';
import type { UiState } from '../state/reducer.ts';
import { lineCount, theme, wrapHints } from '../theme.ts';

/** The footer's lines at `width`: the message as it wraps, then the key hints (wrapped between hints). */
export function footerLines(
  view: KeySet,
  message: UiState['message'],
  width: number,
  busy?: BusyWait,
): number {
  return (
    (busy ? 1 : 0) +
    (message ? lineCount(message.text, width) : 0) +
    wrapHints(footerHints(view), width).length
  );
}

/** A wait under way (a restore, a verify, a search of the backups): said with its elapsed time and its bound. */
export interface BusyWait {
  what: string;
  since: number;
  /** What ends the wait if the server goes silent, in words (`a silent server fails it after 90 s`). */
  bound: string;
}

function BusyLine({ busy }: { busy: BusyWait }) {
  const elapsed = useElapsedSeconds(busy.since);
  return (
    <Text color={theme.color('accent')} wrap="truncate-end">
      {busy.what}… {elapsed} s ({busy.bound})
    </Text>
  );
}

export function Footer({
  view,
  message,
  width,
  busy,
}: {
  view: KeySet;
  message: UiState['message'];
  width: number;
  busy?: BusyWait;
}) {
  const tone = message?.tone === 'error' ? 'danger' : message?.tone === 'warn' ? 'warn' : 'accent';
  return (
    <Box flexDirection="column">
      {busy && <BusyLine busy={busy} />}
      {message && <Text color={theme.color(tone)}>{message.text}</Text>}
      {wrapHints(footerHints(view), width).map((line) => (
        <Text key={line} color={theme.color('dim')} wrap="truncate-end">
          {line}
        </Text>
      ))}
    </Box>
  );
}
