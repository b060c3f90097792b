import { describe, expect, it } from 'vitest';
import { storageSampled } from '../../src/engine/scan.ts';

/** The queries a scan sends to measure the storage of `batches` batches of unresolved children, and what they stand for. */
function sample(batches: number) {
  let queries = 0;
  let represented = 0;
  for (let n = 0; n < batches; n++) {
    const weight = storageSampled(n);
    if (weight > 0) queries++;
    represented += weight;
  }
  return { queries, represented };
}

describe('orphan storage measured on a thinning sample', () => {
  it('measures every batch of a small backlog, so its bytes are exact', () => {
    expect(sample(8)).toEqual({ queries: 8, represented: 8 });
  });

  it('sends queries that grow with the logarithm of a large backlog, each standing for the batches it skips', () => {
    // 2,000 batches of 5,000: ten million unresolved children.
    const { queries, represented } = sample(2000);
    expect(queries).toBeLessThanOrEqual(40);
    // Every batch is stood for by exactly one measured batch, up to the last stride not yet complete.
    expect(represented).toBeGreaterThanOrEqual(2000);
    expect(represented).toBeLessThan(2000 + 256);
    // One doubling more adds four queries.
    expect(sample(4000).queries - queries).toBe(4);
  });
});
