import { describe, expect, it } from 'vitest';
import { OldestFirst } from '../../src/engine/oldest-first.ts';

describe('OldestFirst', () => {
  it('keeps the smallest keys offered, however many come, and gives them oldest first', () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 10_007);
    const kept = new OldestFirst<number>(25, (n) => n);
    for (const key of keys) kept.offer(key);
    expect(kept.sorted()).toEqual([...keys].sort((a, b) => a - b).slice(0, 25));
  });

  it('keeps everything without a limit, and nothing with a limit of 0', () => {
    const all = new OldestFirst<number>(Number.POSITIVE_INFINITY, (n) => n);
    const none = new OldestFirst<number>(0, (n) => n);
    for (const key of [3, 1, 2]) {
      all.offer(key);
      none.offer(key);
    }
    expect(all.sorted()).toEqual([1, 2, 3]);
    expect(none.sorted()).toEqual([]);
  });

  it('what was kept since each checkpoint, appended, gives back exactly what is kept (issue 27)', async () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 20; round++) {
      const kept = new OldestFirst<{ since: number }>(50, (c) => c.since, true);
      const parts: { since: number }[][] = [];
      for (let i = 0; i < 2000; i++) {
        // Older ones keep coming (the kept set changes all along), sometimes in runs.
        kept.offer({ since: Math.floor(random() * 100_000) - i * (round % 3) });
        if (random() < 0.01) parts.push(kept.takeAdded());
      }
      parts.push(kept.takeAdded());
      const union = new OldestFirst<{ since: number }>(50, (c) => c.since);
      for (const part of parts) for (const item of part) union.offer(item);
      expect(union.sorted().map((c) => c.since)).toEqual(kept.sorted().map((c) => c.since));
      // Far less than a copy of everything kept at every checkpoint.
      expect(parts.flat().length).toBeLessThan(parts.length * 50);
    }
  });
});
