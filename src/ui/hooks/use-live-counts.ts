import { useEffect, useRef, useState } from 'react';
import type { RelationReport } from '../../engine/run-scan.ts';
import { type LiveCounts, LiveCountKeeper } from '../../engine/watch.ts';
import type { ConsoleServices } from '../services.ts';
import type { SourceAnswer } from './use-source-liveness.ts';

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
  liveness: Record<string, SourceAnswer> = {},
  exceptionsChanged?: { relation: string; n: number },
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

  // A source answering again: the watchers of its relations start again now (from their saved positions),
  // not at the end of their back-off.
  const answered = useRef<Record<string, SourceAnswer>>({});
  useEffect(() => {
    const before = answered.current;
    answered.current = liveness;
    const back = Object.keys(liveness).filter(
      (name) => liveness[name].answering && before[name]?.answering === false,
    );
    if (back.length === 0) return;
    for (const r of services.relations)
      if (back.includes(r.child.source) || back.includes(r.parent.source)) keeper.current?.watch(r.name);
  }, [liveness, services]);

  // Exceptions changed: live counts classify children by the exceptions they started with, so that relation's
  // watcher starts again from a new snapshot — quietly: the operator just did this, it is not drift.
  useEffect(() => {
    if (exceptionsChanged) keeper.current?.watch(exceptionsChanged.relation, true);
  }, [exceptionsChanged]);

  // The drift check, at each new scan report.
  // biome-ignore lint/correctness/useExhaustiveDependencies: compared once per new report
  useEffect(() => {
    for (const line of keeper.current?.checkDrift(Object.values(reports)) ?? []) say(line, 'warn');
  }, [reports]);

  return { counts };
}

/**
 * The relations whose live counts are not live now, with the line the dashboard shows instead of `● live`:
 * since when, and which source stopped answering.
 */
export function staleLiveCounts(
  services: ConsoleServices,
  liveness: Record<string, SourceAnswer>,
): Record<string, string> {
  const stale: Record<string, string> = {};
  for (const r of services.relations) {
    const quiet = [r.child.source, r.parent.source].filter((name) => liveness[name]?.answering === false);
    if (quiet.length === 0) continue;
    const since = quiet
      .map((name) => liveness[name].quietSince?.getTime() ?? Date.now())
      .reduce((a, b) => Math.min(a, b));
    stale[r.name] =
      `stale since ${new Date(since).toISOString().slice(11, 19)} UTC: ${[...new Set(quiet)].join(' and ')} not answering`;
  }
  return stale;
}
