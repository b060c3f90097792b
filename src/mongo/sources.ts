import { type Db, type MongoClient, ReadPreference, type ReadPreferenceMode } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import type { ResolvedSource } from '../config/load.ts';
import { log } from '../logging.ts';
import { connectSource } from './connection.ts';
import {
  HEARTBEAT_MS,
  HeartbeatWatch,
  type LivenessState,
  SilentSourceError,
  silenceLimitMs,
} from './liveness.ts';
import { redactUri } from './redact.ts';

/** After a source was given up on for silence, uses fail at once for this long before a reconnection is tried. */
const RECONNECT_AFTER_MS = 5000;
/** A reconnection to a source that went silent looks for a server this long (not the usual 30 s). */
const RECONNECT_SELECTION_MS = 5000;

interface PooledClient {
  client: Promise<MongoClient>;
  watch?: HeartbeatWatch;
}

/**
 * One client per distinct URI (two sources on one cluster share it), opened on first use and closed
 * together. Every database handle carries its source's read preference. Each client's heartbeats are
 * watched (`liveness.ts`): a source silent past the limit is given up on — its client closed, which ends every
 * operation in flight on it at once — and using it fails at once with `SilentSourceError` until a reconnection,
 * tried at most every 5 s and bounded to 5 s, finds it answering again.
 */
export class SourcePool {
  private readonly clients = new Map<string, PooledClient>();
  private readonly silenced = new Map<string, { error: SilentSourceError; at: number }>();
  private readonly silenceMs: number;

  constructor(
    private readonly sources: Record<string, ResolvedSource>,
    private readonly options: {
      maxTimeMS?: number;
      /** Default `silenceLimitMs()` (20 s, or ORPHAN_CLEANUP_SILENCE_SECONDS). */
      silenceMs?: number;
      /** Told when a source is given up on for silence. */
      onSilent?: (error: SilentSourceError) => void;
    } = {},
  ) {
    this.silenceMs = options.silenceMs ?? silenceLimitMs();
  }

  source(name: string): ResolvedSource {
    const source = this.sources[name];
    if (!source) throw new Error(`unknown source ${name}`);
    return source;
  }

  client(name: string): Promise<MongoClient> {
    const source = this.source(name);
    const silenced = this.silenced.get(source.uri);
    if (silenced && Date.now() - silenced.at < RECONNECT_AFTER_MS) return Promise.reject(silenced.error);
    const existing = this.clients.get(source.uri);
    if (existing) return existing.client;
    const entry: PooledClient = {
      client: connectSource(
        name,
        source.uri,
        {
          heartbeatFrequencyMS: HEARTBEAT_MS,
          ...(silenced ? { serverSelectionTimeoutMS: RECONNECT_SELECTION_MS } : {}),
        },
        this.options.maxTimeMS,
      ),
    };
    this.clients.set(source.uri, entry);
    entry.client.then(
      (client) => {
        this.silenced.delete(source.uri);
        entry.watch = new HeartbeatWatch(client, this.silenceMs, (silentMs) =>
          this.giveUp(name, source.uri, entry, silentMs),
        );
      },
      () => {
        this.clients.delete(source.uri);
        if (silenced) this.silenced.set(source.uri, { ...silenced, at: Date.now() });
      },
    );
    return entry.client;
  }

  private giveUp(name: string, uri: string, entry: PooledClient, silentMs: number): void {
    const error = new SilentSourceError(name, displayHosts(uri), silentMs);
    this.silenced.set(uri, { error, at: Date.now() });
    if (this.clients.get(uri) === entry) this.clients.delete(uri);
    entry.watch?.stop();
    log.warn({ source: name, hosts: error.hosts, silentMs }, 'source silent: its operations are ended');
    this.options.onSilent?.(error);
    void entry.client.then((client) => endEveryOperation(client)).catch(() => undefined);
  }

  /** The sources given up on for silence and not answering again since, with how long they said nothing. */
  silentSources(): SilentSourceError[] {
    return [...this.silenced.values()].map(({ error }) => error);
  }

  /** A source's liveness: silent, or when it last answered (undefined before its first connection). */
  liveness(name: string): LivenessState | undefined {
    const { uri } = this.source(name);
    const silenced = this.silenced.get(uri);
    if (silenced) return { lastAnswerAt: silenced.at - silenced.error.silentMs, silent: true };
    return this.clients.get(uri)?.watch?.state();
  }

  /**
   * The source's database with its read preference: the URI's when it names one (mode, tags and
   * maxStalenessSeconds, so a scan can go to an analytics node), else the config's, else secondaryPreferred.
   */
  async db(name: string): Promise<Db> {
    const source = this.source(name);
    const client = await this.client(name);
    return client.db(
      source.database,
      uriReadPreference(source.uri) ? {} : { readPreference: configuredReadPreference(source) },
    );
  }

  /** The source's database read from the primary: for re-checks right before a delete, and for writes. */
  async primaryDb(name: string): Promise<Db> {
    return (await this.client(name)).db(this.source(name).database, { readPreference: 'primary' });
  }

  async close(): Promise<void> {
    const entries = [...this.clients.values()];
    this.clients.clear();
    for (const entry of entries) entry.watch?.stop();
    await Promise.all(entries.map(async (entry) => (await entry.client.catch(() => undefined))?.close()));
  }
}

/**
 * Ends every operation on a client at once, and every one started later: its in-use connections are closed
 * and its topology (the driver's internal `client.topology`) closed, so a retry's server selection fails at
 * once instead of opening a connection to the silent server. `client.close()` alone would first wait on that
 * server (killCursors, endSessions), leaving the client usable meanwhile; it follows, not awaited.
 */
function endEveryOperation(client: MongoClient): void {
  const topology = (
    client as unknown as { topology?: { closeCheckedOutConnections?(): void; close?(): void } }
  ).topology;
  topology?.closeCheckedOutConnections?.();
  topology?.close?.();
  void client.close().catch(() => undefined);
}

function uriReadPreference(uri: string): boolean {
  try {
    return new ConnectionString(uri).searchParams.has('readPreference');
  } catch {
    return false;
  }
}

function configuredReadPreference(source: ResolvedSource): ReadPreference {
  return new ReadPreference(
    (source.readPreference ?? 'secondaryPreferred') as ReadPreferenceMode,
    source.readPreferenceTags,
    source.maxStalenessSeconds ? { maxStalenessSeconds: source.maxStalenessSeconds } : undefined,
  );
}

/** Where a source is, for the console's header: its hosts (`mongodb+srv://` kept), no credentials or options. */
export function displayHosts(uri: string): string {
  try {
    const parsed = new ConnectionString(uri);
    return `${parsed.isSRV ? 'mongodb+srv://' : ''}${parsed.hosts.join(',')}`;
  } catch {
    return redactUri(uri);
  }
}

/** Hosts of a URI, normalised, to tell whether two sources are the same cluster. */
function hostsOf(uri: string): string {
  try {
    return new ConnectionString(uri).hosts
      .map((host) => host.toLowerCase())
      .sort()
      .join(',');
  } catch {
    return uri;
  }
}

/** Whether two sources name the same database on the same cluster. */
export function sameDatabase(a: ResolvedSource, b: ResolvedSource): boolean {
  return a.database === b.database && hostsOf(a.uri) === hostsOf(b.uri);
}
