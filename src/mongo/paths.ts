/**
 * Every value found at a dotted path, descending into arrays the way MongoDB does: a parent key inside an
 * array of subdocuments (`aliases.id`) yields each element's key. A missing path gives an empty list; an
 * array at the end contributes its elements (an empty array counts as one undefined, as MongoDB indexes it).
 */
export function valuesAtPath(doc: unknown, path: string): unknown[] {
  const out: unknown[] = [];
  collect(doc, path.split('.'), 0, out);
  return out;
}

function collect(value: unknown, parts: string[], i: number, out: unknown[]): void {
  if (i === parts.length) {
    if (Array.isArray(value)) {
      if (value.length === 0) out.push(undefined);
      for (const v of value) out.push(v);
    } else out.push(value);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    const asIndex = Number(parts[i]);
    if (Number.isInteger(asIndex) && String(asIndex) === parts[i]) {
      collect(value[asIndex], parts, i + 1, out);
      return;
    }
    for (const element of value) collect(element, parts, i, out);
    return;
  }
  const next = (value as Record<string, unknown>)[parts[i]];
  if (next === undefined) return;
  collect(next, parts, i + 1, out);
}
