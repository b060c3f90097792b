import stringWidth from 'string-width';

/** The columns plain-text reports are laid out for: 80, or the terminal's width when it is wider. */
export function reportWidth(stream: { isTTY?: boolean; columns?: number } = process.stdout): number {
  return stream.isTTY && stream.columns && stream.columns > 80 ? stream.columns : 80;
}

/**
 * A line wrapped at spaces to `width` columns, continuation lines indented by `indent` spaces (a hanging
 * indent under the text after the line's own leading spaces when not given). A word longer than a line (a
 * command to copy, a path) stays whole on a line of its own rather than being cut.
 */
export function wrapLine(line: string, width: number, indent?: number): string[] {
  if (stringWidth(line) <= width) return [line];
  const lead = /^ */.exec(line)![0];
  const hang = ' '.repeat(indent ?? lead.length + 2);
  const words = line.slice(lead.length).split(' ');
  const lines: string[] = [];
  let current = lead;
  for (const word of words) {
    const start = current === lead || current === hang;
    const candidate = start ? `${current}${word}` : `${current} ${word}`;
    if (stringWidth(candidate) <= width || start) current = candidate;
    else {
      lines.push(current);
      current = `${hang}${word}`;
    }
  }
  lines.push(current);
  return lines;
}

/**
 * Rows of cells as an aligned table (the first column left-aligned, the others right-aligned, two spaces
 * apart) that fits `width`: when all columns do not fit side by side, the table is printed in parts, each
 * repeating the first column, so nothing is cut and every figure keeps its header.
 */
export function fittedTable(rows: string[][], width: number): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => stringWidth(row[i]))));
  const parts: number[][] = [];
  let part: number[] = [];
  let used = widths[0];
  for (let i = 1; i < widths.length; i++) {
    if (part.length && used + 2 + widths[i] > width) {
      parts.push(part);
      part = [];
      used = widths[0];
    }
    part.push(i);
    used += 2 + widths[i];
  }
  if (part.length) parts.push(part);
  const lines: string[] = [];
  for (const [n, columns] of parts.entries()) {
    if (n > 0) lines.push('');
    for (const row of rows)
      lines.push(
        [0, ...columns]
          .map((i) => {
            const pad = ' '.repeat(Math.max(0, widths[i] - stringWidth(row[i])));
            return i === 0 ? row[i] + pad : pad + row[i];
          })
          .join('  ')
          .trimEnd(),
      );
  }
  return lines;
}
