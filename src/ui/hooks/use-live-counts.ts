import { useEffect, useRef, useState } from 'react';
import type { RelationReport } from '../../engine/run-scan.ts';
import { type LiveCounts, LiveCountKeeper } from '../../engine/watch.ts';
import type { ConsoleServices } from '../services.ts';

/** How often live counts reach the screen (events arrive faster than a terminal should redraw). */
const REDRAW_MS = 250;

export interface LiveState {
  /** Each watched relation's live counts, once its start snapshot is taken. */
  counts: Record<string, LiveCounts>;
}

/**
 * Live counts for every relation (engine/watch.ts's LiveCountKeeper, as `serve --watch` keeps them). Each
 * new scan report is compared with them (the drift check): on a difference the operator is told, the scan's
 * figures stand, and that relation's watcher starts again from a new snapshot.
 */
export function useLiveCounts(
  services: ConsoleServices,
  reports: Record<string, RelationReport>,
  say: (text: string, tone?: 'info' | 'warn' | 'error') => void,
): LiveState {
  const [counts, setCounts] = useState<Record<string, LiveCounts>>({});
  const keeper = useRef<LiveCountKeeper>(undefined);

  // biome-ignore lint/correctness/useExhaustiveDependencies: the watchers start once per console session
  useEffect(() => {
    const said = new Map<string, string>();
    const live = new LiveCountKeeper(services.watch, {
      // A standalone server is expected (no live counts, the badge says so); anything else is worth a line,
      // once (a watcher retrying through an outage repeats itself).
      onNotice: (message, relation, stillLive) => {
        if (!stillLive && /standalone/.test(message)) return;
        const gist = message.replace(/\d+ s$/, '');
        if (said.get(relation) === gist) return;
        said.set(relation, gist);
        say(message, 'warn');
      },
    });
    keeper.current = live;
    for (const r of services.relations) live.watch(r.name);
    const timer = setInterval(() => {
      const next = Object.fromEntries(live.latest);
      setCounts((old) =>
        Object.keys(next).length === Object.keys(old).length &&
        Object.entries(next).every(([name, counts]) => old[name] === counts)
          ? old
          : next,
      );
    }, REDRAW_MS);
    return () => {
      clearInterval(timer);
      live.stop();
    };
  }, [services]);

  // The drift check, at each new scan report.
  // biome-ignore lint/correctness/useExhaustiveDependencies: compared once per new report
  useEffect(() => {
    for (const line of keeper.current?.checkDrift(Object.values(reports)) ?? []) say(line, 'warn');
  }, [reports]);

  return { counts };
}
