import { describe, expect, it } from 'vitest';
import { driftBetween, LiveCountKeeper, type WatchStarter } from '../../src/engine/watch.ts';

const counts = { ok: 10, orphans: 3, parentInactive: 2, invalidReference: 1, excepted: 0 };

describe('the drift check', () => {
  it('names the relation and each differing category with both figures; equal counts pass', () => {
    expect(driftBetween('embeddings', counts, { ...counts })).toBeUndefined();
    expect(driftBetween('embeddings', counts, { ...counts, ok: 9, orphans: 4 })).toBe(
      "live counts of embeddings drifted from the full scan (ok live 10 vs scan 9, orphans live 3 vs scan 4); the scan's figures stand and live counts start again from a new snapshot",
    );
  });

  it('restarts a drifted relation from a new snapshot (its saved state forgotten), and only that one', () => {
    const starts: { relations: string[]; fresh?: boolean }[] = [];
    const starter: WatchStarter = async (options) => {
      starts.push({ relations: options.relations, fresh: options.fresh });
      for (const relation of options.relations)
        options.onCounts({ relation, counts: { ...counts }, at: new Date(), events: 0, resumed: false });
    };
    const keeper = new LiveCountKeeper(starter);
    keeper.watch('a');
    keeper.watch('b');
    const lines = keeper.checkDrift([
      { name: 'a', complete: true, ...counts, orphans: 4 },
      { name: 'b', complete: true, ...counts },
      // An incomplete scan is not compared.
      { name: 'c', complete: false, ...counts, ok: 0 },
    ]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^live counts of a drifted/);
    expect(starts).toEqual([
      { relations: ['a'], fresh: false },
      { relations: ['b'], fresh: false },
      { relations: ['a'], fresh: true },
    ]);
    keeper.stop();
  });

  it('a watcher that fails before it runs is said once, the relation left on scan figures', async () => {
    const notices: [string, string, boolean][] = [];
    const keeper = new LiveCountKeeper(
      async () => {
        throw new Error('source olorin (mongodb://h1/): connection refused');
      },
      { onNotice: (message, relation, live) => notices.push([message, relation, live]) },
    );
    keeper.watch('a', true);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(notices).toEqual([
      ['a: live counts stopped: source olorin (mongodb://h1/): connection refused', 'a', false],
    ]);
    expect(keeper.unavailable.get('a')).toBe(notices[0][0]);
    keeper.stop();
  });
});
