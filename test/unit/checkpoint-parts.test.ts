import { describe, expect, it } from 'vitest';
import { withCandidateParts } from '../../src/engine/checkpoint.ts';

const candidate = (n: number) => ({
  id: n,
  reference: `r${n}`,
  key: `sr${n}`,
  category: 'orphans',
  since: new Date(1_700_000_000_000 + n * 1000),
});

// Issue 27: a checkpoint's candidates are read back from its parts (written by any scan-role user): each entry is
// checked, and the kept ones are the oldest of them all.
describe('a checkpoint read back with its candidate parts', () => {
  it('keeps the oldest candidateLimit of the head and every part in its range', async () => {
    const head = { candidateLimit: 3, candidates: [candidate(9)], candidateParts: { from: 1, through: 2 } };
    let asked: unknown;
    const merged = (await withCandidateParts(head, async (range) => {
      asked = range;
      return [
        [candidate(5), candidate(1)],
        [candidate(7), candidate(2)],
      ];
    })) as { candidates: { id: number }[] };
    expect(asked).toEqual({ from: 1, through: 2 });
    expect(merged.candidates.map((c) => c.id)).toEqual([1, 2, 5]);
  });

  it('refuses a part holding something that is not a candidate', async () => {
    const head = { candidateLimit: 3, candidates: [], candidateParts: { from: 0, through: 0 } };
    await expect(
      withCandidateParts(head, async () => [[{ ...candidate(1), category: 'ok' }]]),
    ).rejects.toThrow(/a candidate part is malformed \(0\.category/);
    await expect(withCandidateParts(head, async () => [[{ ...candidate(1), extra: true }]])).rejects.toThrow(
      /a candidate part is malformed/,
    );
  });

  it('leaves a checkpoint without parts as it is (its schema check refuses what is wrong)', async () => {
    const head = { candidateLimit: 3, candidates: [candidate(1)] };
    expect(await withCandidateParts(head, async () => [])).toBe(head);
  });
});
