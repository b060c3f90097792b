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

export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}
