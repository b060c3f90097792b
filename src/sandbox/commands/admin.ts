// Over 300 lines: the many small admin commands drivers and tools send.

import { hostname } from 'node:os';
import { BSON, type Document, ObjectId } from 'bson';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { clusterTimeOf } from '../history.ts';
import { parseCollation } from '../match.ts';
import { getClusterParameter, getParameters, setClusterParameter, setParameters } from '../parameters.ts';
import type { WorkBudget } from '../query.ts';
import type { Collection, IndexSpec } from '../storage.ts';
import { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE_BYTES, MAX_WRITE_BATCH_SIZE } from '../wire.ts';
import {
  type CommandContext,
  type CommandHandler,
  collectionName,
  existingCollection,
  optionalDocument,
} from './context.ts';
import { ownArguments } from './generic-arguments.ts';
import { replicaSetCommands } from './replica-set.ts';

/** The version the sandbox reports: MongoDB 7.0's wire version, marked as the sandbox in gitVersion. */
export const SANDBOX_VERSION = '7.0.0';
export const SANDBOX_GIT_VERSION = 'orphan-cleanup-sandbox';

/** One election for the sandbox's whole life: the driver compares it to spot a stale primary. */
const ELECTION_ID = new ObjectId('7fffffff0000000000000001');

/** The replica-set fields of `hello`, when the sandbox acts as a one-member set. */
function replicaSetFields(ctx: CommandContext): Document {
  const set = ctx.server.replicaSet;
  if (!set) return {};
  return {
    setName: set.name,
    setVersion: 1,
    hosts: set.secondary ? [set.host, set.secondary] : [set.host],
    primary: set.host,
    me: ctx.secondary && set.secondary ? set.secondary : set.host,
    secondary: Boolean(ctx.secondary),
    electionId: ELECTION_ID,
    lastWrite: { lastWriteDate: new Date(), majorityWriteDate: new Date() },
  };
}

function helloReply(ctx: CommandContext, legacyField: boolean): Document {
  return {
    ...(ctx.body.helloOk ? { helloOk: true } : {}),
    ...(legacyField ? { ismaster: !ctx.secondary } : { isWritablePrimary: !ctx.secondary }),
    ...replicaSetFields(ctx),
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    maxMessageSizeBytes: MAX_MESSAGE_SIZE_BYTES,
    maxWriteBatchSize: MAX_WRITE_BATCH_SIZE,
    localTime: new Date(),
    logicalSessionTimeoutMinutes: 30,
    connectionId: ctx.connectionId,
    minWireVersion: 0,
    maxWireVersion: 21,
    readOnly: false,
    ok: 1,
  };
}

const buildInfo: CommandHandler = () => ({
  version: SANDBOX_VERSION,
  gitVersion: SANDBOX_GIT_VERSION,
  versionArray: [7, 0, 0, 0],
  bits: 64,
  debug: false,
  maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
  storageEngines: ['memory'],
  modules: [],
  javascriptEngine: 'none',
  ok: 1,
});

/** Sum of BSON sizes, in slices so a million documents never hold the event loop. */
async function dataSize(docs: Iterable<Document>, budget: WorkBudget): Promise<number> {
  let size = 0;
  for (const doc of docs) {
    size += BSON.calculateObjectSize(doc);
    await budget.tick();
  }
  return size;
}

/** Databases every mongod has, listed as mongod lists them even when the sandbox holds nothing in them. */
const SYSTEM_DATABASES = ['admin', 'config', 'local'];

const listDatabases: CommandHandler = async (ctx) => {
  const stored = [...ctx.server.store.databases.values()];
  const all = [
    ...stored,
    ...SYSTEM_DATABASES.filter((name) => !stored.some((db) => db.name === name)).map((name) => ({
      name,
      collections: new Map<string, Collection>(),
    })),
  ].sort((a, b) => a.name.localeCompare(b.name));
  if (ctx.body.nameOnly) return { databases: all.map(({ name }) => ({ name })), ok: 1 };
  const databases = [];
  for (const db of all) {
    let size = 0;
    for (const coll of db.collections.values()) size += await dataSize(coll.docs.values(), ctx.budget);
    databases.push({ name: db.name, sizeOnDisk: size, empty: size === 0 });
  }
  return {
    databases,
    totalSize: databases.reduce((sum, db) => sum + db.sizeOnDisk, 0),
    totalSizeMb: 0,
    ok: 1,
  };
};

/**
 * `serverStatus` with the sections mongostat and monitoring agents read: opcounters (as mongod counts them),
 * network bytes and requests, connections, memory, the global lock's queues (always empty: the sandbox runs one
 * command at a time per connection and never queues), and `repl` in replica-set mode.
 */
const serverStatus: CommandHandler = (ctx) => {
  const { counters, replicaSet } = ctx.server;
  const memory = process.memoryUsage();
  const current = ctx.server.openConnections();
  const uptimeMs = Date.now() - ctx.server.startedAt.getTime();
  return {
    host: hostname(),
    version: SANDBOX_VERSION,
    process: 'mongod',
    pid: process.pid,
    uptime: Math.floor(uptimeMs / 1000),
    uptimeMillis: uptimeMs,
    localTime: new Date(),
    connections: {
      current,
      available: 10_000,
      totalCreated: counters.connectionsCreated,
      active: ctx.server.operations.size,
    },
    opcounters: { ...counters.opcounters },
    opcountersRepl: { insert: 0, query: 0, update: 0, delete: 0, getmore: 0, command: 0 },
    network: { ...counters.network },
    mem: {
      bits: 64,
      resident: Math.round(memory.rss / 1024 / 1024),
      virtual: Math.round(memory.rss / 1024 / 1024),
      supported: true,
    },
    globalLock: {
      totalTime: uptimeMs * 1000,
      currentQueue: { total: 0, readers: 0, writers: 0 },
      activeClients: { total: ctx.server.operations.size, readers: 0, writers: 0 },
    },
    ...(replicaSet
      ? {
          repl: {
            hosts: [replicaSet.host, ...(replicaSet.secondary ? [replicaSet.secondary] : [])],
            setName: replicaSet.name,
            setVersion: 1,
            isWritablePrimary: !ctx.secondary,
            secondary: Boolean(ctx.secondary),
            primary: replicaSet.host,
            me: ctx.secondary ? replicaSet.secondary : replicaSet.host,
          },
        }
      : {}),
    metrics: { cursor: { open: { total: ctx.server.cursors.openCount } } },
    ok: 1,
  };
};

const listCollections: CommandHandler = (ctx) => {
  const db = ctx.server.store.database(ctx.db, false);
  const filter = optionalDocument(ctx.body, 'filter') ?? {};
  const wanted = typeof filter.name === 'string' ? filter.name : undefined;
  const docs: Document[] = [];
  for (const coll of db?.collections.values() ?? []) {
    if (wanted !== undefined && coll.name !== wanted) continue;
    docs.push(
      ctx.body.nameOnly
        ? { name: coll.name, type: 'collection' }
        : {
            name: coll.name,
            type: 'collection',
            options: coll.options,
            info: { readOnly: false, uuid: coll.uuid },
            idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
          },
    );
  }
  const cursor = ctx.server.cursors.open(`${ctx.db}.$cmd.listCollections`, docs);
  return { kind: 'cursorBatch', cursor, field: 'firstBatch', batchSize: undefined, single: false };
};

/** `create`'s options (mongod's create.idl) that the sandbox would accept and then ignore: refused instead. */
const UNIMPLEMENTED_CREATE_OPTIONS = [
  'capped',
  'size',
  'max',
  'validator',
  'validationLevel',
  'validationAction',
  'viewOn',
  'pipeline',
  'timeseries',
  'clusteredIndex',
  'expireAfterSeconds',
  'encryptedFields',
  'indexOptionDefaults',
  'storageEngine',
  'autoIndexId',
  'temp',
  'flags',
  'recordIdsReplicated',
];

/**
 * A collection the sandbox can keep as asked (a default collation, pre- and post-images), or a loud refusal:
 * capped limits, validators and views are never accepted and then ignored. A field mongod does not know is
 * refused with its IDL error.
 */
function checkCreateOptions(options: Document): void {
  for (const key of Object.keys(options)) {
    if (key === 'collation' || key === 'changeStreamPreAndPostImages') continue;
    if (UNIMPLEMENTED_CREATE_OPTIONS.includes(key))
      throw new CommandError(
        ErrorCodes.NotImplemented,
        `create with '${key}' is not supported by the sandbox (capped collections, validators, views and time series are not implemented)`,
      );
    throw new CommandError(40415, `BSON field 'create.${key}' is an unknown field.`);
  }
}

const create: CommandHandler = (ctx) => {
  const name = collectionName(ctx);
  if (existingCollection(ctx, name))
    throw new CommandError(ErrorCodes.NamespaceExists, `Collection ${ctx.db}.${name} already exists.`);
  // idIndex (mongorestore sends it) describes the _id index every collection has; it is not a collection option.
  // Generic arguments ($readPreference, comment, writeConcern…) are never collection options (mongod stores none).
  const { create: _name, idIndex: _idIndex, ...options } = ownArguments(ctx.body);
  checkCreateOptions(options);
  // A default collation is checked now, as mongod checks it, not found unusable at the first query.
  parseCollation(options.collation);
  ctx.server.store.collection(ctx.db, name, true, { ...options });
  ctx.server.store.touch(ctx.db, name);
  return { ok: 1 };
};

/** `collMod`: only switching change-stream pre- and post-images on or off; any other change is refused. */
const collMod: CommandHandler = (ctx) => {
  const name = String(ctx.body.collMod);
  const coll = existingCollection(ctx, name);
  if (!coll) throw new CommandError(ErrorCodes.NamespaceNotFound, `ns does not exist: ${ctx.db}.${name}`);
  const { collMod: _name, ...changes } = ownArguments(ctx.body);
  for (const key of Object.keys(changes))
    if (key !== 'changeStreamPreAndPostImages')
      throw new CommandError(ErrorCodes.NotImplemented, `collMod ${key} is not supported by the sandbox`);
  const before = { ...coll.options };
  coll.options.changeStreamPreAndPostImages = {
    enabled: Boolean(changes.changeStreamPreAndPostImages?.enabled),
  };
  ctx.server.store.touch(ctx.db, name);
  ctx.server.oplog?.append({
    op: 'c',
    ns: `${ctx.db}.$cmd`,
    ui: coll.uuid,
    o: { collMod: name, changeStreamPreAndPostImages: coll.options.changeStreamPreAndPostImages },
    o2: { collectionOptions_old: { uuid: coll.uuid, ...before } },
  });
  return { ok: 1 };
};

const drop: CommandHandler = (ctx) => {
  const name = collectionName(ctx);
  const db = ctx.server.store.database(ctx.db, false);
  const coll = db?.collections.get(name);
  if (coll) {
    db!.collections.delete(name);
    ctx.server.store.touch(ctx.db, name);
    ctx.server.oplog?.append({ op: 'c', ns: `${ctx.db}.$cmd`, ui: coll.uuid, o: { drop: name } });
  }
  return { ns: `${ctx.db}.${name}`, nIndexesWas: coll ? coll.indexSpecs.length : 0, ok: 1 };
};

const dropDatabase: CommandHandler = (ctx) => {
  const existed = ctx.server.store.databases.delete(ctx.db);
  ctx.server.store.touch(ctx.db);
  if (existed) ctx.server.oplog?.append({ op: 'c', ns: `${ctx.db}.$cmd`, o: { dropDatabase: 1 } });
  return { dropped: ctx.db, ok: 1 };
};

function defaultIndexName(key: Document): string {
  return Object.entries(key)
    .map(([field, dir]) => `${field}_${dir}`)
    .join('_');
}

/** An index spec as mongod compares them: fields in a fixed order (the key's own order kept), `v` aside. */
function canonicalSpec(spec: Document): string {
  const { v: _v, ...rest } = spec;
  return JSON.stringify(Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b))));
}

const createIndexes: CommandHandler = (ctx) => {
  const specs = ctx.body.indexes;
  if (!Array.isArray(specs) || specs.length === 0)
    throw new CommandError(ErrorCodes.BadValue, "'indexes' must be a non-empty array");
  const createdCollectionAutomatically = !existingCollection(ctx);
  const coll = ctx.server.store.collection(ctx.db, collectionName(ctx), true)!;
  const before = coll.indexSpecs.length;
  for (const raw of specs as Document[]) {
    const key = optionalDocument(raw, 'key');
    if (!key || Object.keys(key).length === 0)
      throw new CommandError(ErrorCodes.BadValue, 'index key pattern must be a non-empty object');
    // mongod accepts and ignores `ns` (mongorestore sends it) and `background`; `v` defaults to 2.
    const { ns: _ns, background: _background, collation: _collation, ...options } = raw;
    // An index takes the collection's default collation unless it names its own; simple is listed as none.
    const collation = (raw.collation ?? coll.options.collation) as Document | undefined;
    // The sandbox's index keys are binary: a unique index under a collation would let "a" and "A" both in.
    if (raw.unique && parseCollation(collation))
      throw new CommandError(
        ErrorCodes.NotImplemented,
        'a unique index with a non-simple collation is not supported by the sandbox (it could not enforce it)',
      );
    const spec: IndexSpec = {
      v: 2,
      ...options,
      ...(collation && collation.locale !== 'simple' ? { collation } : {}),
      key,
      name: typeof raw.name === 'string' ? raw.name : defaultIndexName(key),
    };
    if (JSON.stringify(key) === '{"_id":1}') continue;
    const sameName = coll.findIndex(spec.name);
    // Indexes on the same key with different collations may coexist, as on mongod.
    const sameKey = coll.indexes.find(
      (index) =>
        JSON.stringify(index.spec.key) === JSON.stringify(key) &&
        JSON.stringify(index.spec.collation ?? null) === JSON.stringify(spec.collation ?? null),
    );
    if (sameName || sameKey) {
      const existing = (sameName ?? sameKey)!.spec;
      // An equivalent spec (same name, key and options, in any field order) is a no-op, as on mongod.
      if (canonicalSpec(existing) === canonicalSpec(spec)) continue;
      if (sameName && JSON.stringify(sameName.spec.key) !== JSON.stringify(key)) {
        throw new CommandError(
          ErrorCodes.IndexKeySpecsConflict,
          `An existing index has the same name as the requested index: ${spec.name}`,
        );
      }
      throw new CommandError(
        ErrorCodes.IndexOptionsConflict,
        `An equivalent index already exists with a different name or options: ${existing.name}`,
      );
    }
    coll.addIndex(spec);
    ctx.server.oplog?.append({
      op: 'c',
      ns: `${ctx.db}.$cmd`,
      ui: coll.uuid,
      o: { createIndexes: coll.name, ...spec },
    });
  }
  ctx.server.store.touch(ctx.db, collectionName(ctx));
  return {
    numIndexesBefore: before,
    numIndexesAfter: coll.indexSpecs.length,
    createdCollectionAutomatically,
    ok: 1,
  };
};

const listIndexes: CommandHandler = (ctx) => {
  const coll = existingCollection(ctx);
  if (!coll)
    throw new CommandError(
      ErrorCodes.NamespaceNotFound,
      `ns does not exist: ${ctx.db}.${collectionName(ctx)}`,
    );
  const cursor = ctx.server.cursors.open(
    `${ctx.db}.${coll.name}`,
    coll.indexSpecs.map((spec) => ({ ...spec })),
  );
  return { kind: 'cursorBatch', cursor, field: 'firstBatch', batchSize: undefined, single: false };
};

const dropIndexes: CommandHandler = (ctx) => {
  const coll = existingCollection(ctx);
  if (!coll)
    throw new CommandError(ErrorCodes.NamespaceNotFound, `ns not found ${ctx.db}.${collectionName(ctx)}`);
  const before = coll.indexSpecs.length;
  const target = ctx.body.index;
  const dropped = coll.indexes.map((index) => index.spec);
  if (target === '*') coll.indexes.splice(0);
  else if (typeof target === 'string') {
    if (target === '_id_') throw new CommandError(72, 'cannot drop _id index');
    coll.dropIndex(target);
  } else if (Array.isArray(target)) for (const name of target) coll.dropIndex(String(name));
  else if (target && typeof target === 'object') {
    const index = coll.findIndex(target as Document);
    if (!index)
      throw new CommandError(
        ErrorCodes.IndexNotFound,
        `can't find index with key: ${JSON.stringify(target)}`,
      );
    coll.dropIndex(index.spec.name);
  } else
    throw new CommandError(ErrorCodes.TypeMismatch, "'index' must be a name, a key pattern, an array or '*'");
  // One entry per index dropped, as mongod writes them (`o2`: the index's spec).
  const kept = new Set(coll.indexes.map((index) => index.spec.name));
  for (const spec of dropped)
    if (!kept.has(spec.name))
      ctx.server.oplog?.append({
        op: 'c',
        ns: `${ctx.db}.$cmd`,
        ui: coll.uuid,
        o: { dropIndexes: coll.name, index: spec.name },
        o2: spec,
      });
  ctx.server.store.touch(ctx.db, collectionName(ctx));
  return { nIndexesWas: before, ok: 1 };
};

const collStats: CommandHandler = async (ctx) => {
  const coll = existingCollection(ctx);
  const ns = `${ctx.db}.${collectionName(ctx)}`;
  if (!coll) throw new CommandError(ErrorCodes.NamespaceNotFound, `Collection [${ns}] not found.`);
  const size = await dataSize(coll.docs.values(), ctx.budget);
  const count = coll.docs.size;
  const indexSizes = Object.fromEntries(coll.indexSpecs.map((spec) => [spec.name, count * 16]));
  return {
    ns,
    count,
    size,
    avgObjSize: count ? Math.round(size / count) : 0,
    storageSize: size,
    nindexes: coll.indexSpecs.length,
    totalIndexSize: count * 16 * coll.indexSpecs.length,
    indexSizes,
    ok: 1,
  };
};

const dbStats: CommandHandler = async (ctx) => {
  const db = ctx.server.store.database(ctx.db, false);
  let objects = 0;
  let size = 0;
  let indexes = 0;
  for (const coll of db?.collections.values() ?? []) {
    objects += coll.docs.size;
    size += await dataSize(coll.docs.values(), ctx.budget);
    indexes += coll.indexSpecs.length;
  }
  const collections = db?.collections.size ?? 0;
  return {
    db: ctx.db,
    collections,
    objects,
    avgObjSize: objects ? size / objects : 0,
    dataSize: size,
    storageSize: size,
    indexes,
    ok: 1,
  };
};

/** Ends a transaction; outside a replica set there are none (the server refuses before this runs). */
function endTransaction(how: 'commit' | 'rollback'): CommandHandler {
  return (ctx) => {
    if (!ctx.transaction)
      throw new CommandError(
        ErrorCodes.IllegalOperation,
        'Transaction numbers are only allowed on a replica set member or mongos',
      );
    if (how === 'rollback') ctx.transaction.rollback();
    else {
      const oplog = ctx.server.oplog;
      ctx.transaction.commit(
        () => (oplog ? clusterTimeOf(oplog.latest()) : 0n),
        ctx.server.parameters.minSnapshotHistoryWindowInSeconds * 1000,
      );
    }
    return { ok: 1 };
  };
}

export const adminCommands: Record<string, CommandHandler> = {
  ...replicaSetCommands,
  hello: (ctx) => helloReply(ctx, false),
  isMaster: (ctx) => helloReply(ctx, true),
  ismaster: (ctx) => helloReply(ctx, true),
  ping: () => ({ ok: 1 }),
  buildInfo,
  buildinfo: buildInfo,
  listDatabases,
  serverStatus,
  listCollections,
  create,
  drop,
  collMod,
  dropDatabase,
  createIndexes,
  listIndexes,
  dropIndexes,
  collStats,
  dbStats,
  endSessions: (ctx) => {
    if (Array.isArray(ctx.body.endSessions)) ctx.server.transactions.end(ctx.body.endSessions);
    return { ok: 1 };
  },
  configureFailPoint: (ctx) => ctx.server.faults.configure(ctx.body),
  commitTransaction: endTransaction('commit'),
  abortTransaction: endTransaction('rollback'),
  getParameter: (ctx) => getParameters(ctx.server.parameters, ctx.body),
  setParameter: (ctx) => setParameters(ctx.server.parameters, ctx.body),
  getClusterParameter: (ctx) => getClusterParameter(ctx.server.clusterParameters, ctx.body),
  setClusterParameter: (ctx) => setClusterParameter(ctx.server.clusterParameters, ctx.body),
};
