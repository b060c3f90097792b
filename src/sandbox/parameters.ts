import { type Document, Timestamp } from 'bson';
import { CommandError, ErrorCodes } from './command-error.ts';
import { GENERIC_ARGUMENTS } from './commands/generic-arguments.ts';

/**
 * The server parameters the sandbox follows, as mongod names them, readable with `getParameter` and settable
 * at run time with `setParameter` (tests shorten them to make mongod's limits reachable in seconds).
 */
export interface ServerParameters {
  /** Idle cursors are killed after this long (mongod: 600000). */
  cursorTimeoutMillis: number;
  /** A transaction open longer than this is aborted (mongod: 60). */
  transactionLifetimeLimitSeconds: number;
  /** How far back snapshot reads may go (mongod: 300). */
  minSnapshotHistoryWindowInSeconds: number;
  /** Sandbox only (`--majority-lag-ms`): how far the majority commit point trails the last applied write. */
  sandboxMajorityLagMillis: number;
  /** Sandbox only (`--secondary-lag-ms`): how far the secondary port's reads trail the primary. */
  sandboxSecondaryLagMillis: number;
  /** Sandbox only: how many oplog entries are kept (mongod sizes its oplog in bytes); older ones roll off. */
  sandboxOplogEntries: number;
}

export function defaultParameters(): ServerParameters {
  return {
    cursorTimeoutMillis: 600_000,
    transactionLifetimeLimitSeconds: 60,
    minSnapshotHistoryWindowInSeconds: 300,
    sandboxMajorityLagMillis: 0,
    sandboxSecondaryLagMillis: 0,
    sandboxOplogEntries: 200_000,
  };
}

/** Lags may be 0; every mongod parameter here must be positive. */
function parameterValue(name: string, value: unknown): number {
  const n = typeof value === 'number' ? value : Number((value as { valueOf?: () => unknown })?.valueOf?.());
  const least = name === 'sandboxOplogEntries' ? 1000 : name.startsWith('sandbox') ? 0 : Number.MIN_VALUE;
  if (!Number.isFinite(n) || n < least)
    throw new CommandError(
      ErrorCodes.BadValue,
      `${name} must be a number of at least ${least === Number.MIN_VALUE ? 'more than 0' : least}, got ${String(value)}`,
    );
  return n;
}

/** `setParameter`: sets each named parameter, answering the previous value of the last one as `was`. */
export function setParameters(parameters: ServerParameters, body: Document): Document {
  let was: unknown;
  let any = false;
  for (const [name, value] of Object.entries(body)) {
    if (name === 'setParameter' || GENERIC_ARGUMENTS.has(name)) continue;
    if (!Object.hasOwn(parameters, name))
      throw new CommandError(
        ErrorCodes.BadValue,
        `attempted to set unrecognized parameter [${name}], use help:true to see options`,
      );
    const key = name as keyof ServerParameters;
    was = parameters[key];
    parameters[key] = parameterValue(name, value);
    any = true;
  }
  if (!any)
    throw new CommandError(ErrorCodes.BadValue, 'no option found to set, use help:true to see options');
  return { was, ok: 1 };
}

/** `getParameter`: the named parameters (or all with `'*'`); featureCompatibilityVersion is always 7.0. */
export function getParameters(parameters: ServerParameters, body: Document): Document {
  const all: Document = { ...parameters, featureCompatibilityVersion: { version: '7.0' } };
  if (body.getParameter === '*') return { ...all, ok: 1 };
  const reply: Document = {};
  for (const name of Object.keys(body)) {
    if (name === 'getParameter' || GENERIC_ARGUMENTS.has(name)) continue;
    if (!Object.hasOwn(all, name))
      throw new CommandError(ErrorCodes.InvalidOptions, `no option found to get: ${name}`);
    reply[name] = all[name];
  }
  return { ...reply, ok: 1 };
}

/**
 * The cluster parameters the sandbox keeps (`getClusterParameter`/`setClusterParameter`, replica sets only):
 * `changeStreamOptions.preAndPostImages.expireAfterSeconds` — `'off'` (mongod's default: pre-images live as
 * long as their oplog entry) or seconds after which a pre- or post-image is gone.
 */
export interface ClusterParameters {
  preImagesExpireAfterSeconds: 'off' | number;
}

export function defaultClusterParameters(): ClusterParameters {
  return { preImagesExpireAfterSeconds: 'off' };
}

function changeStreamOptions(cluster: ClusterParameters): Document {
  return {
    _id: 'changeStreamOptions',
    clusterParameterTime: new Timestamp({ t: 0, i: 0 }),
    preAndPostImages: { expireAfterSeconds: cluster.preImagesExpireAfterSeconds },
  };
}

/** `getClusterParameter`: one name, a list of names, or `'*'`; only changeStreamOptions is known. */
export function getClusterParameter(cluster: ClusterParameters | undefined, body: Document): Document {
  if (!cluster)
    throw new CommandError(
      ErrorCodes.IllegalOperation,
      'getClusterParameter is only supported on replica sets and sharded clusters',
    );
  const asked = body.getClusterParameter;
  const names = asked === '*' ? ['changeStreamOptions'] : Array.isArray(asked) ? asked : [asked];
  for (const name of names)
    if (name !== 'changeStreamOptions')
      throw new CommandError(ErrorCodes.BadValue, `Unknown Cluster Parameter ${String(name)}`);
  return { clusterParameters: names.map(() => changeStreamOptions(cluster)), ok: 1 };
}

/** `setClusterParameter: {changeStreamOptions: {preAndPostImages: {expireAfterSeconds}}}`. */
export function setClusterParameter(cluster: ClusterParameters | undefined, body: Document): Document {
  if (!cluster)
    throw new CommandError(
      ErrorCodes.IllegalOperation,
      'setClusterParameter is only supported on replica sets and sharded clusters',
    );
  const spec = body.setClusterParameter as Document | undefined;
  const keys = spec && typeof spec === 'object' ? Object.keys(spec) : [];
  if (keys.length !== 1 || keys[0] !== 'changeStreamOptions')
    throw new CommandError(ErrorCodes.BadValue, `Unknown Cluster Parameter ${keys[0] ?? '(none)'}`);
  const expire = (spec as Document).changeStreamOptions?.preAndPostImages?.expireAfterSeconds;
  const seconds =
    typeof expire === 'number' ? expire : Number((expire as { valueOf?: () => unknown })?.valueOf?.());
  if (expire === 'off') cluster.preImagesExpireAfterSeconds = 'off';
  else if (Number.isInteger(seconds) && seconds > 0) cluster.preImagesExpireAfterSeconds = seconds;
  else
    throw new CommandError(
      ErrorCodes.BadValue,
      `expireAfterSeconds must be 'off' or a positive number of seconds, got ${String(expire)}`,
    );
  return { ok: 1 };
}
