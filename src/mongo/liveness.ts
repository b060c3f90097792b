import type { MongoClient } from 'mongodb';
import { RuntimeError } from '../errors.ts';

/**
 * How often the driver's server monitoring asks each server `hello` (`heartbeatFrequencyMS`): what tells a
 * silent source from a slow one, since heartbeats travel on their own connection.
 */
export const HEARTBEAT_MS = 2000;

/**
 * A source none of whose servers has answered a heartbeat for this long is given up on: every operation in
 * flight on it is ended at once (a server that is not running cannot enforce `maxTimeMS`), whatever the
 * face. Settable with `ORPHAN_CLEANUP_SILENCE_SECONDS`. A slow query on a source that still answers its
 * heartbeats keeps its `maxTimeMS`.
 */
export const DEFAULT_SILENCE_LIMIT_MS = 20_000;

export function silenceLimitMs(env: NodeJS.ProcessEnv = process.env): number {
  const seconds = Number(env.ORPHAN_CLEANUP_SILENCE_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_SILENCE_LIMIT_MS;
}

/** A source given up on for silence, in plain words: its name, its hosts and how long it said nothing. */
export class SilentSourceError extends RuntimeError {
  constructor(
    readonly source: string,
    readonly hosts: string,
    readonly silentMs: number,
  ) {
    super(`source ${source} (${hosts}) answered nothing for ${Math.round(silentMs / 1000)} s`);
  }
}

/**
 * A source is shown as not answering (✗ in the console, `answering: false` in `/healthz`, live counts stale)
 * once a heartbeat is 1.5 s late (its answers come every 2 s): within 5 s of going silent.
 */
export const STALE_AFTER_MS = HEARTBEAT_MS + 1500;

/** Whether a source answers now, from its liveness (a source not connected yet counts as answering). */
export function isAnswering(state: LivenessState | undefined, now = Date.now()): boolean {
  return !state || (!state.silent && now - state.lastAnswerAt <= STALE_AFTER_MS);
}

/** What a source's liveness looks like now, for headers, `/healthz` and metrics. */
export interface LivenessState {
  /** When a server of the source last answered a heartbeat (ms since the epoch). */
  lastAnswerAt: number;
  silent: boolean;
}

/**
 * Follows one client's heartbeats (`serverHeartbeatSucceeded`). When none has come for `silenceMs`, calls
 * `onSilent` once; `stop` ends the watch. The check runs every second, so silence is noticed within a second
 * of the limit.
 */
export class HeartbeatWatch {
  lastAnswerAt = Date.now();
  private silent = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onHeartbeat = () => {
    this.lastAnswerAt = Date.now();
  };

  constructor(
    private readonly client: MongoClient,
    private readonly silenceMs: number,
    private readonly onSilent: (silentMs: number) => void,
  ) {
    client.on('serverHeartbeatSucceeded', this.onHeartbeat);
    this.timer = setInterval(() => this.check(), Math.min(1000, silenceMs / 4));
    this.timer.unref();
  }

  state(): LivenessState {
    return { lastAnswerAt: this.lastAnswerAt, silent: this.silent };
  }

  private check(): void {
    const quiet = Date.now() - this.lastAnswerAt;
    if (this.silent || quiet < this.silenceMs) return;
    this.silent = true;
    this.onSilent(quiet);
  }

  stop(): void {
    clearInterval(this.timer);
    this.client.off('serverHeartbeatSucceeded', this.onHeartbeat);
  }
}
