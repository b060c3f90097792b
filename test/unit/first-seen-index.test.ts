import { ObjectId } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { FirstSeenIndex } from '../../src/store/first-seen-index.ts';

describe('the in-memory first-seen index', () => {
  it('answers exactly for 200,000 stored keys and 200,000 others, across growth, to the millisecond', () => {
    const index = new FirstSeenIndex(10);
    const stored = Array.from({ length: 200_000 }, () => new ObjectId().toHexString());
    const others = Array.from({ length: 200_000 }, () => new ObjectId().toHexString());
    for (const [i, key] of stored.entries())
      index.add(key, new Date(1_700_000_000_123 + i), i % 3 ? 'missing' : 'inactive');
    expect(index.size).toBe(200_000);
    expect(index.seen(stored[2])).toBe(false);
    // A confirmed key answers with its stored date and state, and takes the new state.
    const now = new Date(1_800_000_000_000);
    expect(index.sight(stored[1], 'inactive', now)).toEqual({
      firstSeenAt: new Date(1_700_000_000_124),
      state: 'missing',
    });
    expect(index.seen(stored[1])).toBe(true);
    expect(index.seen(stored[2])).toBe(false);
    expect(index.sight(stored[1], 'missing', now)).toMatchObject({ state: 'inactive' });
    // Every stored key to the millisecond, with its state.
    const answers = stored.map((key) => index.sight(key, 'missing', now));
    expect(
      answers.every(
        (answer, i) => typeof answer === 'object' && answer.firstSeenAt.getTime() === 1_700_000_000_123 + i,
      ),
    ).toBe(true);
    expect(answers[3]).toMatchObject({ state: 'inactive' });
    // A key not held is this scan's first sighting (new, then fresh), never confirmed.
    expect(index.seen(others[1])).toBe(false);
    expect(others.every((key) => index.sight(key, 'missing', now) === 'new')).toBe(true);
    expect(index.sight(others[0], 'missing', now)).toBe('fresh');
    expect(index.seen(others[0])).toBe(true);
    expect(index.size).toBe(400_000);
  });

  it('names the keys a scan staged and the confirmed keys it did not see, whatever their text, across growth', () => {
    const index = new FirstSeenIndex(0);
    const confirmed = Array.from({ length: 50_000 }, (_, i) =>
      i % 2 ? new ObjectId().toHexString() : `k${i}·é漢${'x'.repeat(i % 40)}`,
    );
    for (const key of confirmed) index.add(key, new Date(0), 'missing');
    const seen = new Set(confirmed.filter((_, i) => i % 7 !== 0));
    for (const key of seen) index.sight(key, 'missing', new Date());
    // ObjectId-shaped keys are kept as their 12 bytes; uppercase hex is text like any other.
    const staged = Array.from({ length: 3000 }, (_, i) =>
      i % 3 === 0
        ? new ObjectId().toHexString()
        : i % 3 === 1
          ? new ObjectId().toHexString().toUpperCase()
          : `new-${i}`,
    );
    for (const key of staged) expect(index.sight(key, 'inactive', new Date())).toBe('new');
    expect([...index.unseenConfirmed()].sort()).toEqual(confirmed.filter((key) => !seen.has(key)).sort());
    expect([...index.staged()].sort()).toEqual([...staged].sort());
  });
});
