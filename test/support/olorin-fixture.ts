import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MongoClient } from 'mongodb';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig, type ResolvedConfig } from '../../src/config/load.ts';
import { OLORIN_PRESET } from '../../src/config/presets/olorin.ts';
import type { ConfigFile } from '../../src/config/schema.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import {
  BAYIT_DATABASE,
  buildOlorinDemo,
  OLORIN_DATABASE,
  OLORIN_DEMO_INDEXES,
} from '../../src/sandbox/seed/olorin.ts';
import { startTestServer, type TestServer } from './sandbox.ts';

/** Writes a config file and loads it, the way an operator's `--config` is (with deletes switched on, as in production). */
export async function configFor(
  file: ConfigFile,
  env: NodeJS.ProcessEnv = {},
  graceDays?: number,
): Promise<ResolvedConfig> {
  const path = await writeConfigFile(file);
  return loadConfig({ configPath: path, env: { OLORIN_USE_SEPARATE_DATABASE: 'true', ...env }, graceDays });
}

export async function writeConfigFile(file: ConfigFile): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oc-config-'));
  const path = join(dir, 'config.json');
  await writeFile(path, JSON.stringify(file));
  return path;
}

export interface OlorinFixture {
  olorinDb: string;
  bayitDb: string;
  config: ResolvedConfig;
  /** The same config as a file, with URIs from OLORIN_MONGODB_URI / BAYIT_MONGODB_URI, for the CLI. */
  configPath: string;
}

/** The demo data loaded through the driver into two suite-private databases, with the preset's relations. */
export async function loadOlorinDemo(
  server: TestServer,
  options: {
    now?: Date;
    env?: NodeJS.ProcessEnv;
    name?: string;
    graceDays?: number;
    extra?: Partial<ConfigFile>;
    /** Put the Bayit+ data on this server instead (a second "cluster", e.g. one a test will pause). */
    parentServer?: TestServer;
  } = {},
): Promise<OlorinFixture> {
  const parentServer = options.parentServer ?? server;
  const olorinDb = server.dbName(`${options.name ?? ''}olorin`);
  const bayitDb = parentServer.dbName(`${options.name ?? ''}bayit`);
  await insertDemo(
    { [OLORIN_DATABASE]: server.client, [BAYIT_DATABASE]: parentServer.client },
    { [OLORIN_DATABASE]: olorinDb, [BAYIT_DATABASE]: bayitDb },
    options.now,
  );
  const file = (sources: ConfigFile['sources']): ConfigFile => ({
    ...OLORIN_PRESET,
    ...options.extra,
    sources,
  });
  const config = await configFor(
    file({
      olorin: { uri: server.uri, database: olorinDb },
      bayit: { uri: parentServer.uri, database: bayitDb },
    }),
    options.env,
    options.graceDays,
  );
  const configPath = await writeConfigFile(
    file({
      olorin: { uriEnv: 'OLORIN_MONGODB_URI', database: olorinDb },
      bayit: { uriEnv: 'BAYIT_MONGODB_URI', database: bayitDb },
    }),
  );
  return { olorinDb, bayitDb, config, configPath };
}

async function insertDemo(
  clients: Record<string, MongoClient>,
  names: Record<string, string>,
  now?: Date,
): Promise<void> {
  const data = buildOlorinDemo({ now });
  for (const [dbName, collections] of Object.entries(data)) {
    const db = clients[dbName].db(names[dbName]);
    for (const [collName, docs] of Object.entries(collections)) {
      await db.collection(collName).insertMany(docs);
      for (const spec of OLORIN_DEMO_INDEXES[dbName]?.[collName] ?? []) {
        await db.collection(collName).createIndex(spec.key, { name: spec.name, unique: spec.unique });
      }
    }
  }
}

/**
 * A suite's server with the demo data loaded (a sandbox process, or ORPHAN_CLEANUP_TEST_URI), started before
 * the suite's tests and stopped after them.
 */
export function withOlorinDemo(
  options: Parameters<typeof loadOlorinDemo>[1] = {},
  serverOptions: Parameters<typeof startTestServer>[0] = {},
): {
  server: TestServer;
  demo: OlorinFixture;
} {
  const ctx = {} as { server: TestServer; demo: OlorinFixture };
  beforeAll(async () => {
    ctx.server = await startTestServer(serverOptions);
    ctx.demo = await loadOlorinDemo(ctx.server, options);
  });
  afterAll(async () => ctx.server?.stop());
  return ctx;
}

/**
 * One relation between two databases of a server, as the scale tests use it: `embeddings.content_id` in the
 * child database pointing at `content._id` in the parent database, with no ratio guard in the way.
 */
export function embeddingsConfigFile(
  uri: string,
  childDb: string,
  parentDb: string,
  parent: Partial<ConfigFile['relations'][number]['parent']> = {},
  extra: Partial<ConfigFile> = {},
): ConfigFile {
  return {
    sources: { child: { uri, database: childDb }, parent: { uri, database: parentDb } },
    relations: [
      {
        name: 'embeddings',
        child: { source: 'child', collection: 'embeddings', field: 'content_id' },
        parent: { source: 'parent', collection: 'content', ...parent },
        keyMatch: 'objectid-or-hex',
      },
    ],
    maxOrphanRatio: 1,
    ...extra,
  } as ConfigFile;
}

/**
 * The smallest relation the edge-case tests use: `children.ref` in one database pointing at `parents._id` in
 * another (exact keys, no grace, no ratio guard), the parent on `parentUri` when given.
 */
export function childrenParentsFile(
  uri: string,
  childDb: string,
  parentDb: string,
  options: { parentUri?: string; relation?: Partial<ConfigFile['relations'][number]> } = {},
): ConfigFile {
  return {
    sources: {
      child: { uri, database: childDb },
      parent: { uri: options.parentUri ?? uri, database: parentDb },
    },
    relations: [
      {
        name: 'rel',
        child: { source: 'child', collection: 'children', field: 'ref' },
        parent: { source: 'parent', collection: 'parents', field: '_id' },
        keyMatch: 'exact',
        graceDays: 0,
        ...options.relation,
      },
    ],
    maxOrphanRatio: 1,
  } as ConfigFile;
}

/**
 * The console suites' world: a sandbox with the demo loaded without grace (every orphan deletable at once), a
 * source pool on it, and NO_COLOR (frames compared as text); the pool and server closed after the suite.
 */
export function withConsoleDemo(): { server: TestServer; demo: OlorinFixture; pool: SourcePool } {
  const ctx = {} as { server: TestServer; demo: OlorinFixture; pool: SourcePool };
  beforeAll(async () => {
    process.env.NO_COLOR = '1';
    ctx.server = await startTestServer();
    ctx.demo = await loadOlorinDemo(ctx.server, { graceDays: 0 });
    ctx.pool = new SourcePool(ctx.demo.config.sources);
  });
  afterAll(async () => {
    await ctx.pool?.close();
    await ctx.server?.stop();
  });
  return ctx;
}
