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
});
