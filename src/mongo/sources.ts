import { type Db, type MongoClient, ReadPreference, type ReadPreferenceMode } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import type { ResolvedSource } from '../config/load.ts';
import { connectSource } from './connection.ts';
import { redactUri } from './redact.ts';

/**
 * One client per distinct URI (two sources on one cluster share it), opened on first use and closed
 * together. Every database handle carries its source's read preference.
 */
export class SourcePool {
  private readonly clients = new Map<string, Promise<MongoClient>>();

  constructor(
    private readonly sources: Record<string, ResolvedSource>,
    private readonly options: { maxTimeMS?: number } = {},
  ) {}

  source(name: string): ResolvedSource {
    const source = this.sources[name];
    if (!source) throw new Error(`unknown source ${name}`);
    return source;
  }

  client(name: string): Promise<MongoClient> {
    const source = this.source(name);
    let client = this.clients.get(source.uri);
    if (!client) {
      client = connectSource(name, source.uri, {}, this.options.maxTimeMS);
      this.clients.set(source.uri, client);
      client.catch(() => this.clients.delete(source.uri));
    }
    return client;
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
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map(async (client) => (await client.catch(() => undefined))?.close()));
  }
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
