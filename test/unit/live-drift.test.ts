import { describe, expect, it } from 'vitest';
import { driftBetween, type LiveCounts, LiveCountKeeper, type WatchStarter } from '../../src/engine/watch.ts';

const counts = { ok: 10, orphans: 3, parentInactive: 2, invalidReference: 1, excepted: 0 };
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * A starter whose watchers publish what the test tells them (`publish`), and end a little after they are
 * stopped (their final save), noting when.
 */
function scriptedStarter() {
  const log: string[] = [];
  const publishers = new Map<string, (live: Omit<LiveCounts, 'relation' | 'resumed' | 'events'>) => void>();
  const starter: WatchStarter = async (options) => {
    const [relation] = options.relations;
    log.push(`start ${relation}${options.fresh ? ' fresh' : ''}`);
    publishers.set(relation, (live) => options.onCounts({ relation, resumed: false, events: 0, ...live }));
    await new Promise<void>((resolve) =>
      options.signal.addEventListener('abort', () => setTimeout(resolve, 30), { once: true }),
    );
    log.push(`saved ${relation}`);
  };
  return {
    starter,
    log,
    publish: (relation: string, live: Omit<LiveCounts, 'relation' | 'resumed' | 'events'>) =>
      publishers.get(relation)!(live),
  };
}

describe('the drift check', () => {
  it('names the relation and each differing category with both figures; equal counts pass', () => {
    expect(driftBetween('embeddings', counts, { ...counts })).toBeUndefined();
    expect(driftBetween('embeddings', counts, { ...counts, ok: 9, orphans: 4 })).toBe(
      "live counts of embeddings drifted from the full scan (ok live 10 vs scan 9, orphans live 3 vs scan 4); the scan's figures stand and live counts start again from a new snapshot",
    );
  });

  it('restarts a drifted relation from a new snapshot (its saved state forgotten), and only that one', async () => {
    const starts: { relations: string[]; fresh?: boolean }[] = [];
    const starter: WatchStarter = async (options) => {
      starts.push({ relations: options.relations, fresh: options.fresh });
      for (const relation of options.relations)
        options.onCounts({ relation, counts: { ...counts }, at: new Date(), events: 0, resumed: false });
    };
    const keeper = new LiveCountKeeper(starter);
    keeper.watch('a');
    keeper.watch('b');
    await tick();
    const lines = keeper.checkDrift([
      { name: 'a', complete: true, ...counts, orphans: 4 },
      { name: 'b', complete: true, ...counts },
      // An incomplete scan is not compared.
      { name: 'c', complete: false, ...counts, ok: 0 },
    ]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^live counts of a drifted/);
    await tick();
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

  // Issue 24 item 7: a busy collection does not restart the watcher at every scheduled scan.
  it('allows what moved during and since the scan; beyond it, or with nothing moved, a difference is drift', async () => {
    const { starter, publish } = scriptedStarter();
    const keeper = new LiveCountKeeper(starter);
    keeper.watch('a');
    await tick();
    const series = new Date(Date.now() - 60_000);
    publish('a', { counts: { ...counts }, at: new Date(Date.now() - 50_000), churn: 0, series });
    const scanStarted = new Date(Date.now() - 40_000);
    // Five children moved while the scan read (three new orphans, two removed ok).
    publish('a', {
      counts: { ...counts, orphans: 6, ok: 8 },
      at: new Date(Date.now() - 20_000),
      churn: 5,
      series,
    });
    const scan = { name: 'a', complete: true, startedAt: scanStarted };
    // The scan saw part of it: within the 5 changes, not drift.
    expect(keeper.checkDrift([{ ...scan, ...counts, orphans: 4 }])).toEqual([]);
    // Beyond them: drift, said with the allowance.
    expect(keeper.checkDrift([{ ...scan, ...counts, orphans: 12, ok: 8 }])).toEqual([
      "live counts of a drifted from the full scan (orphans live 6 vs scan 12, beyond the 5 changes applied since the scan began); the scan's figures stand and live counts start again from a new snapshot",
    ]);
    keeper.stop();
  });

  it('with nothing moved since the scan began, any difference is drift; counts begun after the scan are not compared', async () => {
    const { starter, publish } = scriptedStarter();
    const keeper = new LiveCountKeeper(starter);
    keeper.watch('quiet');
    keeper.watch('late');
    await tick();
    const scanStarted = new Date(Date.now() - 10_000);
    publish('quiet', {
      counts: { ...counts },
      at: new Date(Date.now() - 30_000),
      churn: 7,
      series: new Date(Date.now() - 60_000),
    });
    publish('late', { counts: { ...counts }, at: new Date(), churn: 0, series: new Date() });
    const lines = keeper.checkDrift([
      { name: 'quiet', complete: true, startedAt: scanStarted, ...counts, orphans: 4 },
      { name: 'late', complete: true, startedAt: scanStarted, ...counts, orphans: 40 },
    ]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^live counts of quiet drifted .*orphans live 3 vs scan 4\)/);
    keeper.stop();
  });

  it('a drift restart forgets the saved state only after the old watcher made its final save', async () => {
    const { starter, publish, log } = scriptedStarter();
    const keeper = new LiveCountKeeper(starter);
    keeper.watch('a');
    await tick();
    publish('a', { counts: { ...counts }, at: new Date(), churn: 0, series: new Date(Date.now() - 1000) });
    expect(keeper.checkDrift([{ name: 'a', complete: true, ...counts, orphans: 9 }])).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(log).toEqual(['start a', 'saved a', 'start a fresh']);
    keeper.stop();
  });
});
