import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The source stays a place one can live in (issue 23): no module imports itself back through others, and a
 * sandbox file over 300 lines says why on its first line.
 */
const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : /\.tsx?$/.test(entry.name)
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Each file's relative imports that load code at run time (`import type` loads nothing). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps: string[] = [];
    for (const match of text.matchAll(/^(import|export)(\s+type)?\s[^;]*?from\s+'(\.[^']+)'/gms)) {
      if (match[2]) continue;
      deps.push(normalize(join(dirname(file), match[3])));
    }
    graph.set(file, deps);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[] {
  const found = new Set<string>();
  const done = new Set<string>();
  const visit = (node: string, path: string[]) => {
    const at = path.indexOf(node);
    if (at >= 0) {
      found.add([...path.slice(at), node].map((f) => relative(SRC, f)).join(' → '));
      return;
    }
    if (done.has(node)) return;
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
    done.add(node);
  };
  for (const node of graph.keys()) visit(node, []);
  return [...found];
}

describe('the source layout', () => {
  it('has no import cycles', () => {
    const graph = importGraph();
    expect(graph.size).toBeGreaterThan(50);
    expect(cycles(graph)).toEqual([]);
  });

  it('keeps sandbox files under 300 lines, or says why on the first line', () => {
    const long = sourceFiles(join(SRC, 'sandbox'))
      .map((file) => ({ file: relative(SRC, file), lines: readFileSync(file, 'utf8').split('\n') }))
      .filter(({ lines }) => lines.length > 300 && !/^\/\/ Over 300 lines: /.test(lines[0]))
      .map(({ file, lines }) => `${file}: ${lines.length} lines`);
    expect(long).toEqual([]);
  });
});
