import { type Db, ObjectId } from 'mongodb';
import type { ResolvedConfig } from '../../src/config/load.ts';
import type { ConfigFile } from '../../src/config/schema.ts';
import { runScan } from '../../src/engine/run-scan.ts';
import type { CategoryCounts } from '../../src/engine/scan.ts';
import { type LiveCounts, watchRelations } from '../../src/engine/watch.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { randomSource } from '../../src/sandbox/seed/olorin.ts';
import { ExceptionsStore, exceptionKey } from '../../src/store/exceptions.ts';
import { configFor, writeConfigFile } from './olorin-fixture.ts';
import type { TestServer } from './sandbox.ts';

/**
 * Two relations for the live-count tests, between two databases of one replica-set server, with pre- and
 * post-images on, indexes on the child fields, and an exception of each kind:
 * - `embeddings.content_id` → `content._id` (ObjectId or hex string; soft delete `deleted_at`);
 * - `dubbing.partner_id` → `partners.partner_id` (exact match, strings and numbers; `status: suspended` is inactive).
 */
export interface WatchWorld {
  config: ResolvedConfig;
  /** The same config as a file, for the CLI. */
  configPath: string;
  childDb: Db;
  parentDb: Db;
  contentIds: ObjectId[];
  partnerIds: (string | number)[];
  /** A seeded PRNG, so a failing run can be replayed. */
  random: () => number;
  seed: number;
}

export async function watchWorld(
  server: TestServer,
  name: string,
  seed: number,
  extra: Partial<ConfigFile> = {},
): Promise<WatchWorld> {
  const childName = server.dbName(`${name}_child`);
  const parentName = server.dbName(`${name}_parent`);
  const childDb = server.client.db(childName);
  const parentDb = server.client.db(parentName);
  const images = { changeStreamPreAndPostImages: { enabled: true } };
  for (const coll of ['embeddings', 'dubbing']) await childDb.createCollection(coll, images);
  for (const coll of ['content', 'partners']) await parentDb.createCollection(coll, images);
  await childDb.collection('embeddings').createIndex({ content_id: 1 });
  await childDb.collection('dubbing').createIndex({ partner_id: 1 });
  await parentDb.collection('partners').createIndex({ partner_id: 1 });
  const random = randomSource(seed);
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];

  const contentIds = Array.from({ length: 40 }, () => new ObjectId());
  await parentDb.collection('content').insertMany(
    contentIds.map((_id, i) => ({
      _id,
      title: `c${i}`,
      ...(i % 8 === 0 ? { deleted_at: new Date() } : {}),
    })),
  );
  const partnerIds: (string | number)[] = [...Array.from({ length: 6 }, (_, i) => `p${i}`), 7, 8, 9];
  await parentDb
    .collection('partners')
    .insertMany(
      partnerIds.map((partner_id, i) => ({ partner_id, status: i % 4 === 0 ? 'suspended' : 'active' })),
    );
  const gone = Array.from({ length: 5 }, () => new ObjectId());
  await childDb.collection('embeddings').insertMany(
    Array.from({ length: 240 }, (_, i) => ({
      content_id:
        i % 30 === 0
          ? null
          : i % 7 === 0
            ? pick(gone)
            : i % 3 === 0
              ? pick(contentIds).toHexString()
              : pick(contentIds),
      n: i,
    })),
  );
  await childDb.collection('dubbing').insertMany(
    Array.from({ length: 80 }, (_, i) => ({
      partner_id: i % 11 === 0 ? 'p-gone' : pick(partnerIds),
      n: i,
    })),
  );
  const file: ConfigFile = {
    sources: {
      child: { uri: server.uri, database: childName },
      parent: { uri: server.uri, database: parentName },
    },
    relations: [
      {
        name: 'embeddings',
        child: { source: 'child', collection: 'embeddings', field: 'content_id' },
        parent: { source: 'parent', collection: 'content', field: '_id', softDeleteField: 'deleted_at' },
        keyMatch: 'objectid-or-hex',
      },
      {
        name: 'dubbing',
        child: { source: 'child', collection: 'dubbing', field: 'partner_id' },
        parent: {
          source: 'parent',
          collection: 'partners',
          field: 'partner_id',
          activeFilter: { status: { $ne: 'suspended' } },
        },
        keyMatch: 'exact',
      },
    ],
    maxOrphanRatio: 1,
    ...extra,
  } as ConfigFile;
  const config = await configFor(file);
  const configPath = await writeConfigFile(file);
  // One exception of each kind: a child by _id, and every child of one reference.
  const exceptions = new ExceptionsStore(childDb, { readOnly: false });
  const anyChild = await childDb.collection('embeddings').findOne({ n: 5 });
  for (const [kind, value] of [
    ['document', anyChild!._id],
    ['reference', contentIds[3]],
  ] as const)
    await exceptions.add(
      {
        relation: 'embeddings',
        kind,
        value,
        valueKey: exceptionKey(kind, value, 'objectid-or-hex'),
        reason: 'test',
        createdBy: 'test',
        createdAt: new Date(),
      },
      { history: false },
    );
  return { config, configPath, childDb, parentDb, contentIds, partnerIds, random, seed };
}

/** One random change to a parent or a child, as other clients of the two databases would make it. */
export async function mutate(world: WatchWorld, side: 'parent' | 'child'): Promise<string> {
  const { random, childDb, parentDb, contentIds, partnerIds } = world;
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  const content = parentDb.collection('content');
  const partners = parentDb.collection('partners');
  const roll = random();
  if (side === 'parent') {
    const id = pick(contentIds);
    const partner = pick(partnerIds);
    if (roll < 0.2) return `delete content ${(await content.deleteOne({ _id: id })).deletedCount}`;
    if (roll < 0.35) {
      await content.updateOne({ _id: id }, { $set: { title: 'again' } }, { upsert: true });
      return 're-create content';
    }
    if (roll < 0.5)
      return `soft delete ${(await content.updateOne({ _id: id }, { $set: { deleted_at: new Date() } })).modifiedCount}`;
    if (roll < 0.6)
      return `undelete ${(await content.updateOne({ _id: id }, { $unset: { deleted_at: '' } })).modifiedCount}`;
    if (roll < 0.7)
      return `touch ${(await content.updateOne({ _id: id }, { $inc: { views: 1 } })).modifiedCount}`;
    if (roll < 0.8)
      return `suspend ${(await partners.updateOne({ partner_id: partner }, { $set: { status: random() < 0.5 ? 'suspended' : 'active' } })).modifiedCount}`;
    if (roll < 0.9)
      return `delete partner ${(await partners.deleteOne({ partner_id: partner })).deletedCount}`;
    await partners.updateOne({ partner_id: partner }, { $set: { status: 'active' } }, { upsert: true });
    return 're-create partner';
  }
  const embeddings = childDb.collection('embeddings');
  const dubbing = childDb.collection('dubbing');
  const ref = () => {
    const r = random();
    if (r < 0.05) return null;
    if (r < 0.1) return new ObjectId();
    const id = pick(contentIds);
    return r < 0.4 ? id.toHexString() : id;
  };
  const someChild = async (coll: typeof embeddings) =>
    (await coll.aggregate([{ $sample: { size: 1 } }]).toArray())[0];
  if (roll < 0.3) {
    await embeddings.insertOne({ content_id: ref(), n: -1 });
    return 'insert embedding';
  }
  if (roll < 0.45) {
    const child = await someChild(embeddings);
    return `delete embedding ${child ? (await embeddings.deleteOne({ _id: child._id })).deletedCount : 0}`;
  }
  if (roll < 0.6) {
    const child = await someChild(embeddings);
    if (child) await embeddings.updateOne({ _id: child._id }, { $set: { content_id: ref() } });
    return 'change reference';
  }
  if (roll < 0.68) {
    const child = await someChild(embeddings);
    if (child) await embeddings.replaceOne({ _id: child._id }, { content_id: ref(), n: -2 });
    return 'replace embedding';
  }
  if (roll < 0.73) {
    const child = await someChild(embeddings);
    if (child) await embeddings.updateOne({ _id: child._id }, { $set: { model: 'x' } });
    return 'touch embedding';
  }
  if (roll < 0.85) {
    await dubbing.insertOne({ partner_id: random() < 0.1 ? 'p-gone' : pick(partnerIds), n: -1 });
    return 'insert dubbing';
  }
  if (roll < 0.93) {
    const child = await someChild(dubbing);
    return `delete dubbing ${child ? (await dubbing.deleteOne({ _id: child._id })).deletedCount : 0}`;
  }
  const child = await someChild(dubbing);
  if (child) await dubbing.updateOne({ _id: child._id }, { $set: { partner_id: pick(partnerIds) } });
  return 'change partner';
}

/** Each relation's live figures, as scanCounts gives a scan's. */
export const countsOf = (latest: Record<string, LiveCounts>) =>
  Object.fromEntries(Object.entries(latest).map(([name, live]) => [name, live.counts]));

/** A full scan's five figures per relation (read-only: it records nothing). */
export async function scanCounts(config: ResolvedConfig): Promise<Record<string, CategoryCounts>> {
  const pool = new SourcePool(config.sources);
  try {
    const report = await runScan({ config, pool, access: { readOnly: true }, record: false });
    return Object.fromEntries(
      report.relations.map((r) => {
        if (r.error) throw new Error(`scan of ${r.name} failed: ${r.error}`);
        return [
          r.name,
          {
            ok: r.ok,
            orphans: r.orphans,
            parentInactive: r.parentInactive,
            invalidReference: r.invalidReference,
            excepted: r.excepted,
          },
        ];
      }),
    );
  } finally {
    await pool.close();
  }
}

/** Starts the watcher on every relation; `latest` holds each relation's last published counts. */
export function startWatching(
  world: WatchWorld,
  notices: string[] = [],
  poolOptions: ConstructorParameters<typeof SourcePool>[1] = {},
) {
  const pool = new SourcePool(world.config.sources, poolOptions);
  const controller = new AbortController();
  const latest: Record<string, LiveCounts> = {};
  const done = watchRelations({
    config: world.config,
    pool,
    access: { readOnly: false },
    signal: controller.signal,
    onCounts: (live) => {
      latest[live.relation] = live;
    },
    onNotice: (message) => notices.push(message),
  });
  return {
    latest,
    pool,
    async stop() {
      controller.abort();
      await done;
      await pool.close();
    },
  };
}

/** Waits until every relation has counts and no event has been applied for `quietMs`. */
export async function settled(latest: Record<string, LiveCounts>, relations: string[], quietMs = 2500) {
  const deadline = Date.now() + 60_000;
  let last = '';
  let since = Date.now();
  for (;;) {
    const now = JSON.stringify(relations.map((r) => latest[r] && [latest[r].events, latest[r].counts]));
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (relations.every((r) => latest[r]) && Date.now() - since >= quietMs) return;
    if (Date.now() > deadline) throw new Error(`the watcher never settled: ${now}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
