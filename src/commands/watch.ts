import { watchRelations } from '../engine/watch.ts';
import { RuntimeError } from '../errors.ts';
import { formatCount } from '../engine/format.ts';
import { abortOnSignals, type EngineFlags, printNotice, withEngine } from './engine-session.ts';

export interface WatchFlags extends EngineFlags {
  json?: boolean;
}

/**
 * `watch`: live orphan counts from change streams, one line per change, until SIGINT or SIGTERM (exit 0).
 * Headless, for a terminal or a log; `serve --watch` keeps the metrics current the same way.
 */
export async function runWatchCommand(flags: WatchFlags): Promise<number> {
  return withEngine(flags, async ({ config, pool, access }) => {
    const { signal, dispose } = abortOnSignals();
    try {
      await watchRelations({
        config,
        pool,
        access,
        signal,
        onNotice: printNotice,
        onCounts: ({ relation, counts, at, events, resumed }) => {
          process.stdout.write(
            flags.json
              ? `${JSON.stringify({ relation, ...counts, events, resumed, at: at.toISOString() })}\n`
              : `${at.toISOString()} ${relation}: ok ${formatCount(counts.ok)}, orphans ${formatCount(counts.orphans)}, parent inactive ${formatCount(counts.parentInactive)}, invalid ${formatCount(counts.invalidReference)}, excepted ${formatCount(counts.excepted)} (${formatCount(events)} events${resumed ? ', resumed' : ''})\n`,
          );
        },
      });
      // Every watcher ended without being asked to (none can be live): a scheduler must see it.
      if (!signal.aborted)
        throw new RuntimeError(
          'watch: no relation can be followed any more (each said why above); the scan figures stand',
        );
      return 0;
    } finally {
      dispose();
    }
  });
}
