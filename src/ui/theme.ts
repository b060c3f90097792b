import cliTruncate from 'cli-truncate';
import stringWidth from 'string-width';

/** Colours by meaning; none at all under NO_COLOR (https://no-color.org). */
const noColor = () => Boolean(process.env.NO_COLOR);

export const theme = {
  color(name: 'accent' | 'danger' | 'warn' | 'ok' | 'dim'): string | undefined {
    if (noColor()) return undefined;
    return { accent: 'cyan', danger: 'red', warn: 'yellow', ok: 'green', dim: 'gray' }[name];
  },
};

/** A sparkline of counts, oldest first: drawn, not listed. */
export function sparkline(values: number[]): string {
  if (values.length === 0) return '';
  const bars = '▁▂▃▄▅▆▇█';
  const max = Math.max(...values);
  const min = Math.min(...values);
  return values
    .map((v) => bars[max === min ? 3 : Math.round(((v - min) / (max - min)) * (bars.length - 1))])
    .join('');
}

export { formatBytes as bytes, formatCount as count } from '../engine/format.ts';

/** `text` cut to `width` terminal columns (wide characters count two), with `…` where it was cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  return stringWidth(text) <= width ? text : cliTruncate(text, width, { position: 'end' });
}

/** A table cell: `text` cut to `width` columns and padded to exactly that many. */
export function cell(text: string, width: number): string {
  const cut = truncate(text, width);
  return cut + ' '.repeat(Math.max(0, width - stringWidth(cut)));
}

/**
 * Key hints laid out in lines of at most `width` columns, breaking only between hints (the footer wraps
 * rather than cutting a hint in half).
 */
export function wrapHints(hints: string[], width: number, separator = ' · '): string[] {
  const lines: string[] = [];
  let line = '';
  // The closing pair (`? help · q quit`) stays together on the last line.
  const units =
    hints.length > 2 ? [...hints.slice(0, -2), `${hints.at(-2)}${separator}${hints.at(-1)}`] : hints;
  for (const hint of units) {
    const next = line ? `${line}${separator}${hint}` : hint;
    if (line && stringWidth(next) > width) {
      lines.push(line);
      line = hint;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines.map((l) => truncate(l, width));
}

/** How many terminal lines `text` takes at `width` columns when wrapped. */
export function lineCount(text: string, width: number): number {
  return text
    .split('\n')
    .reduce((total, line) => total + Math.max(1, Math.ceil(stringWidth(line) / Math.max(1, width))), 0);
}
