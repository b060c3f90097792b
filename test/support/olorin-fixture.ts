import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MongoClient } from 'mongodb';
import { type ResolvedConfig, loadConfig } from '../../src/config/load.ts';
import { OLORIN_PRESET } from '../../src/config/presets/olorin.ts';
import type { ConfigFile } from '../../src/config/schema.ts';
import {
  BAYIT_DATABASE,
  buildOlorinDemo,
  OLORIN_DATABASE,
  OLORIN_DEMO_INDEXES,
} from '../../src/sandbox/seed/olorin.ts';
import type { TestServer } from './sandbox.ts';

/** Writes a config file and loads it, the way an operator's `--config` is. */
export async function configFor(file: ConfigFile, env: NodeJS.ProcessEnv = {}): Promise<ResolvedConfig> {
  const dir = await mkdtemp(join(tmpdir(), 'oc-config-'));
  const path = join(dir, 'config.json');
  await writeFile(path, JSON.stringify(file));
  return loadConfig({ configPath: path, env });
}

export interface OlorinFixture {
  olorinDb: string;
  bayitDb: string;
  config: ResolvedConfig;
}

/** The demo data loaded through the driver into two suite-private databases, with the preset's relations. */
export async function loadOlorinDemo(
  server: TestServer,
  options: { now?: Date; env?: NodeJS.ProcessEnv } = {},
): Promise<OlorinFixture> {
  const olorinDb = server.dbName('olorin');
  const bayitDb = server.dbName('bayit');
  await insertDemo(server.client, { [OLORIN_DATABASE]: olorinDb, [BAYIT_DATABASE]: bayitDb }, options.now);
  const config = await configFor(
    {
      ...OLORIN_PRESET,
      sources: {
        olorin: { uri: server.uri, database: olorinDb },
        bayit: { uri: server.uri, database: bayitDb },
      },
    },
    options.env,
  );
  return { olorinDb, bayitDb, config };
}

async function insertDemo(client: MongoClient, names: Record<string, string>, now?: Date): Promise<void> {
  const data = buildOlorinDemo({ now });
  for (const [dbName, collections] of Object.entries(data)) {
    const db = client.db(names[dbName]);
    for (const [collName, docs] of Object.entries(collections)) {
      await db.collection(collName).insertMany(docs);
      for (const spec of OLORIN_DEMO_INDEXES[dbName]?.[collName] ?? []) {
        await db.collection(collName).createIndex(spec.key, { name: spec.name, unique: spec.unique });
      }
    }
  }
}
