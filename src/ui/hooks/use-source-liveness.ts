import { useEffect, useState } from 'react';
import { STALE_AFTER_MS } from '../../mongo/liveness.ts';
import type { ConsoleServices } from '../services.ts';

const CHECK_MS = 1000;

/** What the console shows of one source's liveness. */
export interface SourceAnswer {
  answering: boolean;
  /** When it stopped answering (its last heartbeat answer), while it does not. */
  quietSince?: Date;
  quietSeconds?: number;
}

/**
 * Each source's liveness, checked every second from its heartbeats (the same signal that makes every face give
 * up on a silent source). A source not yet connected counts as answering: the header says so otherwise.
 */
export function useSourceLiveness(services: ConsoleServices): Record<string, SourceAnswer> {
  const [answers, setAnswers] = useState<Record<string, SourceAnswer>>({});
  useEffect(() => {
    const check = () => {
      const now = Date.now();
      const next = Object.fromEntries(
        Object.entries(services.sourceLiveness()).map(([name, state]) => {
          const quiet = state.silent || (state.quietMs ?? 0) > STALE_AFTER_MS;
          const answer: SourceAnswer = quiet
            ? {
                answering: false,
                quietSince: new Date(now - (state.quietMs ?? 0)),
                quietSeconds: Math.round((state.quietMs ?? 0) / 1000),
              }
            : { answering: true };
          return [name, answer];
        }),
      );
      setAnswers((old) => (JSON.stringify(old) === JSON.stringify(next) ? old : next));
    };
    const timer = setInterval(check, CHECK_MS);
    return () => clearInterval(timer);
  }, [services]);
  return answers;
}
