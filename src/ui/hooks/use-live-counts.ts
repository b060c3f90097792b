import { useEffect, useRef, useState } from 'react';
import type { RelationReport } from '../../engine/run-scan.ts';
import { driftBetween, type LiveCounts } from '../../engine/watch.ts';
import type { ConsoleServices } from '../services.ts';

/** How often live counts reach the screen (events arrive faster than a terminal should redraw). */
const REDRAW_MS = 250;

export interface LiveState {
  /** Each watched relation's live counts, once its start snapshot is taken. */
  counts: Record<string, LiveCounts>;
  /** Why a relation is not live (standalone server, no pre-images…): its figures are the scan's. */
  unavailable: Record<string, string>;
}

/**
 * Live counts for every relation from change streams (engine/watch.ts), one watcher per relation. Each
 * complete scan is compared with them (the drift check): on a difference the operator is told, the scan's
 * figures stand, and that relation's watcher starts again from a new snapshot.
 */
export function useLiveCounts(
  services: ConsoleServices,
  reports: Record<string, RelationReport>,
  say: (text: string, tone?: 'info' | 'warn' | 'error') => void,
): LiveState {
  const [state, setState] = useState<LiveState>({ counts: {}, unavailable: {} });
  const pending = useRef<Record<string, LiveCounts>>({});
  const latest = useRef<Record<string, LiveCounts>>({});
  const controllers = useRef(new Map<string, AbortController>());

  const start = (relation: string, fresh: boolean) => {
    controllers.current.get(relation)?.abort();
    const controller = new AbortController();
    controllers.current.set(relation, controller);
    void services.watch({
      relations: [relation],
      fresh,
      signal: controller.signal,
      onCounts: (live) => {
        pending.current[live.relation] = live;
        latest.current[live.relation] = live;
      },
      onNotice: (message, name, live) => {
        if (controller.signal.aborted) return;
        if (!live) {
          delete latest.current[name];
          setState((old) => {
            const { [name]: _gone, ...counts } = old.counts;
            return { counts, unavailable: { ...old.unavailable, [name]: message } };
          });
        }
        // A standalone server is expected (no live counts, the badge says so); anything else is worth a line.
        if (live || !/standalone/.test(message)) say(message, 'warn');
      },
    });
  };

  // biome-ignore lint/correctness/useExhaustiveDependencies: the watchers start once per console session
  useEffect(() => {
    for (const r of services.relations) start(r.name, false);
    const timer = setInterval(() => {
      const batch = pending.current;
      if (Object.keys(batch).length === 0) return;
      pending.current = {};
      setState((old) => ({ ...old, counts: { ...old.counts, ...batch } }));
    }, REDRAW_MS);
    return () => {
      clearInterval(timer);
      for (const controller of controllers.current.values()) controller.abort();
    };
  }, [services]);

  // The drift check, at each new scan report.
  // biome-ignore lint/correctness/useExhaustiveDependencies: compared once per new report
  useEffect(() => {
    for (const [name, report] of Object.entries(reports)) {
      const live = latest.current[name];
      if (!live || !report.complete) continue;
      const drift = driftBetween(name, live.counts, report);
      if (!drift) continue;
      say(drift, 'warn');
      delete latest.current[name];
      setState((old) => {
        const { [name]: _restarting, ...counts } = old.counts;
        return { ...old, counts };
      });
      start(name, true);
    }
  }, [reports]);

  return state;
}
