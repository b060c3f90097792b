import type { WriteConcernSettings } from 'mongodb';

/**
 * Every bound the tool puts on a wait for a server, in one place (the README's "Running against production"
 * lists them). A value given in a source's URI wins over these.
 */

/** How long to look for a suitable server: the driver's default, above the ~10–12 s an election takes. */
export const SERVER_SELECTION_TIMEOUT_MS = 30_000;

/**
 * How long opening a connection (TCP, TLS and the `hello` handshake) may take, and each heartbeat: a silent
 * server accepts TCP and then says nothing, so this bounds a retry's new connection after a source is given
 * up on (liveness.ts). Well above what a connection to Atlas takes (well under a second).
 */
export const CONNECT_TIMEOUT_MS = 10_000;

/** The server-side limit every read and write carries unless the config's `maxTimeMS` says otherwise. */
export const DEFAULT_MAX_TIME_MS = 60_000;

/**
 * A socket that stays silent this long fails its operation: what ends the wait on a hung server (SIGSTOP,
 * a dead network path) that `maxTimeMS` cannot, since the server is not running to enforce it. Set above
 * `maxTimeMS` so a slow but healthy server answers with its own error first.
 */
export function socketTimeoutMs(maxTimeMS: number): number {
  return maxTimeMS + 30_000;
}

/** Majority-acknowledged writes that give up (error 64, nothing lost) when a majority does not confirm in time. */
export function majorityWrite(wtimeoutMS: number): WriteConcernSettings {
  return { w: 'majority', wtimeoutMS };
}

/** How long `--max-lag-seconds` waits for lagging secondaries before the cleanup stops with one line. */
export const LAG_WAIT_LIMIT_MS = 10 * 60_000;

/** How far the client's clock may be from the server's before the tool warns (it uses the server's). */
export const CLOCK_SKEW_WARN_MS = 30_000;
