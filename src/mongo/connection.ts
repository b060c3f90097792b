import { MongoClient, type MongoClientOptions } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import { RuntimeError, UsageError } from '../errors.ts';
import { redact, rememberSecretsOf } from './redact.ts';
import {
  CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_TIME_MS,
  SERVER_SELECTION_TIMEOUT_MS,
  socketTimeoutMs,
} from './timeouts.ts';

/** Checks a URI's syntax without connecting; the error names the source, never the credentials. */
export function validateUri(uri: string, what: string): void {
  rememberSecretsOf(uri);
  try {
    new ConnectionString(uri);
    // The driver's own parse (ports, options, SRV rules) without connecting, so its refusals are usage errors here.
    new MongoClient(uri);
  } catch (error) {
    throw new UsageError(`${what}: invalid MongoDB URI ${redact(uri)} (${redact((error as Error).message)})`);
  }
}

/**
 * What to check for a failure, by its kind: auth, DNS, refused, TLS, a server-side time limit, or a network
 * timeout; undefined when the kind is not recognised.
 */
export function failureHint(error: unknown): string | undefined {
  const e = error as {
    message?: string;
    code?: number;
    codeName?: string;
    cause?: { code?: string; message?: string };
  };
  const text = `${e.message ?? ''} ${e.cause?.message ?? ''} ${e.cause?.code ?? ''} ${e.codeName ?? ''}`;
  if (e.code === 18 || /auth/i.test(text))
    return 'authentication failed: check the user, password and authSource';
  if (/ENOTFOUND|EAI_AGAIN|querySrv/i.test(text))
    return 'host name not found: check the host in the URI and DNS';
  if (/ECONNREFUSED/.test(text)) return 'connection refused: is the server running and the port right?';
  if (/certificate|SSL|TLS/i.test(text)) return 'TLS handshake failed: check tls options and the CA file';
  if (e.code === 50 || /MaxTimeMSExpired|exceeded time limit/i.test(text))
    return 'the server did not finish within maxTimeMS: a slow or overloaded server, or raise maxTimeMS';
  if (/timed out|Server selection|ETIMEDOUT|ECONNRESET|socket/i.test(text))
    return 'no answer in time: check the host, port, firewall or IP access list, and whether the server is up';
  return undefined;
}

/** One line saying what to check for a failed connection: auth, DNS, timeout or TLS. */
export function describeConnectionError(error: unknown): string {
  return failureHint(error) ?? redact((error as Error).message ?? String(error));
}

/**
 * Connects and pings; failures become one redacted line naming the source. Server selection and silent
 * sockets are bounded (`timeouts.ts`); `maxTimeMS` is the server-side limit the operations will carry.
 */
export async function connectSource(
  name: string,
  uri: string,
  options: MongoClientOptions = {},
  maxTimeMS = DEFAULT_MAX_TIME_MS,
): Promise<MongoClient> {
  validateUri(uri, `source ${name}`);
  // Options given in the URI win over our defaults (the driver lets explicit options win over the URI).
  const inUri = new ConnectionString(uri).typedSearchParams<Record<string, string>>();
  const unlessInUri = (key: string, value: number) => (inUri.has(key) ? {} : { [key]: value });
  const client = new MongoClient(uri, {
    appName: 'orphan-cleanup',
    ...unlessInUri('serverSelectionTimeoutMS', SERVER_SELECTION_TIMEOUT_MS),
    ...unlessInUri('socketTimeoutMS', socketTimeoutMs(maxTimeMS)),
    ...unlessInUri('connectTimeoutMS', CONNECT_TIMEOUT_MS),
    ...options,
  });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
    return client;
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new RuntimeError(`source ${name} (${redact(uri)}): ${describeConnectionError(error)}`);
  }
}
