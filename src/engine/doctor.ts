import type { Collection, Document } from 'mongodb';
import type { Relation } from '../config/load.ts';
import { probeCapabilities, type ServerCapabilities, secondaryLagSeconds } from '../mongo/capabilities.ts';
import { redact } from '../mongo/redact.ts';
import type { SourcePool } from '../mongo/sources.ts';
import {
  createIndexCommand,
  indexesOf,
  leadingField,
  mixedCaseHexKey,
  parentKeyIndex,
} from './parent-checks.ts';
import { wrapLine } from './text-layout.ts';
import { preImagesCommand, preImagesEnabled, START_SNAPSHOT_TIMEOUT_MS } from './watch.ts';

/** Each of doctor's searches of a whole index (mixed-case hex) ends after this long. */
const DOCTOR_MAX_TIME_MS = 30_000;

export type FindingLevel = 'ok' | 'warn' | 'info';

export interface Finding {
  level: FindingLevel;
  message: string;
}

export interface RelationDiagnosis {
  relation: string;
  findings: Finding[];
}

export interface SourceDiagnosis {
  source: string;
  capabilities: ServerCapabilities;
  /** Replica sets: the secondaries' lag now, or why it cannot be read (then `clean --max-lag-seconds` refuses). */
  replicationLag?: { seconds: number } | { error: string };
}

export interface Diagnosis {
  sources: SourceDiagnosis[];
  relations: RelationDiagnosis[];
}

const TYPE_SAMPLE = 1000;
const DAY_SECONDS = 86_400;
/** Soft-delete value types that always have a clear meaning; numbers and strings do only as 0 and "" (the scan checks each). */
const LIVE_OR_DELETED_TYPES = new Set(['missing', 'null', 'bool', 'date']);

/** The BSON type name of a decoded value, as `$type` names it. */
export function bsonTypeName(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'date';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(value) ? 'int' : 'double';
    case 'bigint':
      return 'long';
  }
  const tag = (value as { _bsontype?: string })._bsontype;
  if (tag === 'ObjectId') return 'objectId';
  if (tag === 'Long') return 'long';
  if (tag === 'Binary') return 'binData';
  if (tag === 'Decimal128') return 'decimal';
  return 'object';
}

/** Counts of BSON types at `field` over a random sample of the collection. */
async function sampledTypes(coll: Collection, field: string): Promise<Map<string, number>> {
  const docs = await coll
    .aggregate([{ $sample: { size: TYPE_SAMPLE } }, { $project: { _id: 0, v: `$${field}` } }])
    .toArray();
  const types = new Map<string, number>();
  for (const doc of docs) {
    const name = bsonTypeName(doc.v);
    types.set(name, (types.get(name) ?? 0) + 1);
  }
  return types;
}

function describeTypes(types: Map<string, number>): string {
  const total = [...types.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return 'no documents';
  return [...types]
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => {
      const share = (n / total) * 100;
      return `${name} ${share < 1 ? '<1' : Math.round(share)}%`;
    })
    .join(', ');
}

/** Where a collection's data lives on a sharded cluster: its shard key, or that it is unsharded. */
async function shardingFinding(pool: SourcePool, source: string, ns: string): Promise<Finding> {
  try {
    const entry = await (await pool.client(source))
      .db('config')
      .collection('collections')
      .findOne({ _id: ns as never, dropped: { $ne: true } });
    return entry?.key
      ? { level: 'info', message: `${ns} is sharded on ${JSON.stringify(entry.key)}` }
      : { level: 'info', message: `${ns} is not sharded (it lives on the database's primary shard)` };
  } catch (error) {
    return {
      level: 'warn',
      message: `cannot read config.collections to tell whether ${ns} is sharded (needs read on the config database): ${redact((error as Error).message)}`,
    };
  }
}

/** Whether live counts (`watch`, `serve --watch`, the console) can follow the relation: pre-images where needed. */
async function liveCountsFinding(pool: SourcePool, relation: Relation): Promise<Finding> {
  const sides = [
    { db: await pool.primaryDb(relation.child.source), collection: relation.child.collection },
    ...(relation.parent.field === '_id'
      ? []
      : [{ db: await pool.primaryDb(relation.parent.source), collection: relation.parent.collection }]),
  ];
  const missing = [];
  for (const side of sides) if (!(await preImagesEnabled(side.db, side.collection))) missing.push(side);
  if (missing.length === 0)
    return {
      level: 'ok',
      message: 'pre-images on for live counts (they also need a replica set or a sharded cluster)',
    };
  return {
    level: 'info',
    message: `live counts need pre-images on ${missing.map((m) => m.collection).join(' and ')}: ${missing
      .map((m) => preImagesCommand(m.db, m.collection))
      .join('; ')} (without them the console shows scan figures)`,
  };
}

/**
 * How long pre-images live on each cluster live counts read them from (`changeStreamOptions`): an expiry
 * shorter than a start may take (its snapshot's bound) loses the pre-images of the deletes made during a
 * start, which then begins again.
 */
async function preImageExpiryFindings(pool: SourcePool, relation: Relation): Promise<Finding[]> {
  const sources = [
    relation.child.source,
    ...(relation.parent.field === '_id' ? [] : [relation.parent.source]),
  ].filter((source, i, all) => all.indexOf(source) === i);
  const findings: Finding[] = [];
  const bound = START_SNAPSHOT_TIMEOUT_MS / 1000;
  for (const source of sources) {
    let expiry: unknown;
    try {
      const reply = await (await pool.client(source))
        .db('admin')
        .command({ getClusterParameter: 'changeStreamOptions' });
      expiry = reply.clusterParameters?.[0]?.preAndPostImages?.expireAfterSeconds;
    } catch (error) {
      findings.push({
        level: 'info',
        message: `pre-image expiry on ${source} unknown (getClusterParameter changeStreamOptions: ${redact((error as Error).message)})`,
      });
      continue;
    }
    const seconds = Number(expiry);
    if (expiry === 'off' || expiry === undefined || !Number.isFinite(seconds))
      findings.push({
        level: 'ok',
        message: `pre-images on ${source} are kept as long as the oplog holds their writes (changeStreamOptions expireAfterSeconds: off)`,
      });
    else if (seconds < bound)
      findings.push({
        level: 'warn',
        message: `pre-images on ${source} expire after ${seconds} s, less than the ${bound} s a live-count start may take: deletes made during a long start lose their pre-images and the start begins again; raise it: db.adminCommand({setClusterParameter: {changeStreamOptions: {preAndPostImages: {expireAfterSeconds: ${Math.max(3600, bound)}}}}})`,
      });
    else
      findings.push({
        level: 'ok',
        message: `pre-images on ${source} expire after ${seconds} s (a live-count start may take up to ${bound} s)`,
      });
  }
  return findings;
}

/** Mixed-case hex keys on either side (objectid-or-hex): the relation is unsafe while one exists. */
async function mixedCaseFindings(
  relation: Relation,
  parents: Collection,
  children: Collection,
): Promise<Finding[]> {
  const sides = [
    {
      what: `parent key ${relation.parent.collection}.${relation.parent.field}`,
      coll: parents,
      field: relation.parent.field,
    },
    {
      what: `reference ${relation.child.collection}.${relation.child.field}`,
      coll: children,
      field: relation.child.field,
    },
  ];
  const findings: Finding[] = [];
  for (const side of sides) {
    const found = await mixedCaseHexKey(side.coll, side.field, DOCTOR_MAX_TIME_MS).catch(
      (error: Error) => new Error(redact(error.message)),
    );
    if (found instanceof Error)
      findings.push({
        level: 'warn',
        message: `cannot check ${side.what} for mixed-case hex: ${found.message}`,
      });
    else if (found !== undefined)
      findings.push({
        level: 'warn',
        message: `${side.what} holds hex in mixed case (${JSON.stringify(found)}): string equality is binary, so such keys cannot be matched; the relation is unsafe until they are stored as ObjectIds or in one case`,
      });
  }
  if (findings.length === 0) findings.push({ level: 'ok', message: 'no key or reference in mixed-case hex' });
  return findings;
}

async function diagnoseRelation(
  pool: SourcePool,
  relation: Relation,
  sharded: Set<string>,
): Promise<RelationDiagnosis> {
  const findings: Finding[] = [];
  for (const side of [relation.child, relation.parent])
    if (sharded.has(side.source))
      findings.push(
        await shardingFinding(pool, side.source, `${pool.source(side.source).database}.${side.collection}`),
      );
  const children = (await pool.primaryDb(relation.child.source)).collection(relation.child.collection);
  const parents = (await pool.primaryDb(relation.parent.source)).collection(relation.parent.collection);
  const childName = `${relation.child.collection}.${relation.child.field}`;
  const parentName = `${relation.parent.collection}.${relation.parent.field}`;

  const childIndexes = await indexesOf(children);
  if (childIndexes.some((index) => leadingField(index) === relation.child.field)) {
    findings.push({ level: 'ok', message: `index on ${childName}` });
  } else {
    findings.push({
      level: 'warn',
      message: `no index on ${childName}: re-checks before delete, restore by reference and live counts (each parent change counts its children) scan the whole collection`,
    });
  }
  findings.push(await liveCountsFinding(pool, relation));
  findings.push(...(await preImageExpiryFindings(pool, relation)));

  const parentIndexes = await indexesOf(parents);
  if (relation.parent.field === '_id')
    findings.push({ level: 'ok', message: `parent key ${parentName} is the unique _id index` });
  else {
    const [info] = await (await pool.primaryDb(relation.parent.source))
      .listCollections({ name: relation.parent.collection })
      .toArray();
    const collation = (info as { options?: { collation?: Document } } | undefined)?.options?.collation;
    const index = parentKeyIndex(parentIndexes, relation.parent.field, collation);
    if (!index)
      findings.push({
        level: 'warn',
        message: `no index on parent key ${parentName}: every probe would scan the parent collection, so scan and clean refuse this relation (unless --allow-collection-scan); create it with ${createIndexCommand(parents.dbName, relation.parent.collection, relation.parent.field)}`,
      });
    else if (!index.unique)
      findings.push({
        level: 'warn',
        message: `index ${index.name} on parent key ${parentName} is not unique: several parents may share a key`,
      });
    else findings.push({ level: 'ok', message: `unique index ${index.name} on parent key ${parentName}` });
  }

  if (relation.keyMatch === 'objectid-or-hex')
    findings.push(...(await mixedCaseFindings(relation, parents, children)));

  const softDelete = relation.parent.softDeleteField;
  if (softDelete) {
    const malformed = parentIndexes.find((index) =>
      Object.keys(index.key ?? {}).includes('expireAfterSeconds'),
    );
    const ttl = parentIndexes.find(
      (index) => index.expireAfterSeconds !== undefined && leadingField(index) === softDelete,
    );
    if (malformed) {
      findings.push({
        level: 'warn',
        message: `index ${malformed.name} is a compound index on a field named "expireAfterSeconds", not a TTL (the design note's example); create it as createIndex({${softDelete}: 1}, {expireAfterSeconds: 2592000})`,
      });
    }
    const values = await sampledTypes(parents, softDelete);
    findings.push({
      level: [...values.keys()].some((name) => !LIVE_OR_DELETED_TYPES.has(name)) ? 'warn' : 'info',
      message: `${relation.parent.collection}.${softDelete} value types (sample): ${describeTypes(values)}; a date or true marks a deleted parent, false, 0, "", null or absence a live one, anything else makes the relation unsafe`,
    });
    if (ttl) {
      const days = Number(ttl.expireAfterSeconds) / DAY_SECONDS;
      const level: FindingLevel = days <= relation.graceDays ? 'warn' : 'ok';
      findings.push({
        level,
        message: `TTL index ${ttl.name} removes soft-deleted parents after ${days.toFixed(1)} days (grace ${relation.graceDays} days)`,
      });
    } else if (!malformed) {
      findings.push({
        level: 'info',
        message: `no TTL index on ${relation.parent.collection}.${softDelete}: soft-deleted parents stay until removed`,
      });
    }
  }

  const [parentTypes, childTypes] = await Promise.all([
    sampledTypes(parents, relation.parent.field),
    sampledTypes(children, relation.child.field),
  ]);
  findings.push({
    level: 'info',
    message: `parent key types (sample): ${describeTypes(parentTypes)}; child reference types: ${describeTypes(childTypes)}`,
  });
  const keyTypes = [...parentTypes.keys()].filter((name) => name !== 'missing' && name !== 'null');
  if (relation.keyMatch === 'objectid-or-hex') {
    const foreign = keyTypes.filter((name) => name !== 'objectId' && name !== 'string');
    if (foreign.length)
      findings.push({
        level: 'warn',
        message: `keyMatch objectid-or-hex, but parent keys include ${foreign.join(', ')}`,
      });
  } else {
    const childKeyTypes = [...childTypes.keys()].filter((name) => name !== 'missing' && name !== 'null');
    const mismatched = childKeyTypes.filter(
      (name) =>
        !keyTypes.includes(name) &&
        !(
          ['int', 'long', 'double'].includes(name) &&
          keyTypes.some((t) => ['int', 'long', 'double'].includes(t))
        ),
    );
    if (mismatched.length && keyTypes.length) {
      findings.push({
        level: 'warn',
        message: `keyMatch exact, but child references of type ${mismatched.join(', ')} can never match parent keys (${keyTypes.join(', ')})`,
      });
    }
    if (keyTypes.includes('objectId') && childKeyTypes.includes('string')) {
      findings.push({
        level: 'warn',
        message:
          'parent keys are ObjectIds and some references are strings: consider keyMatch objectid-or-hex',
      });
    }
  }
  return { relation: relation.name, findings };
}

/** What makes cleanup slow or unsafe, per relation, and what each source is. */
export async function diagnose(pool: SourcePool, relations: Relation[]): Promise<Diagnosis> {
  const sourceNames = [
    ...new Set(relations.flatMap((relation) => [relation.child.source, relation.parent.source])),
  ];
  const sources: SourceDiagnosis[] = [];
  for (const source of sourceNames) {
    const client = await pool.client(source);
    const capabilities = await probeCapabilities(client);
    const replicationLag =
      capabilities.topology === 'replicaSet'
        ? await secondaryLagSeconds(client).then(
            (seconds) => ({ seconds }),
            (error: Error) => ({ error: redact(error.message) }),
          )
        : undefined;
    sources.push({ source, capabilities, ...(replicationLag ? { replicationLag } : {}) });
  }
  const diagnosed: RelationDiagnosis[] = [];
  const sharded = new Set(sources.filter((s) => s.capabilities.topology === 'sharded').map((s) => s.source));
  for (const relation of relations) diagnosed.push(await diagnoseRelation(pool, relation, sharded));
  return { sources, relations: diagnosed };
}

export function diagnosisText(
  diagnosis: Diagnosis,
  describeSource: (name: string) => string,
  /** 80 unless the terminal is wider: long findings wrap under their text, commands kept whole. */
  width = 80,
): string {
  const mark = { ok: 'ok  ', warn: 'WARN', info: 'info' } as const;
  const lines: string[] = [];
  for (const { source, capabilities: c, replicationLag: lag } of diagnosis.sources) {
    lines.push(
      `${source}: ${describeSource(source)}  ${c.sandbox ? 'sandbox' : 'MongoDB'} ${c.version}, ${c.topology}, transactions ${c.transactions ? 'available' : 'not available'}, ${c.roundTripMs.toFixed(1)} ms`,
    );
    if (lag && 'seconds' in lag) lines.push(`  info  secondaries lag ${Math.round(lag.seconds)} s`);
    if (c.topology === 'sharded')
      lines.push(
        '  info  through mongos: each batch is deleted without a cross-shard transaction (the backup precedes it), and --max-lag-seconds cannot read per-shard lag',
      );
    if (lag && 'error' in lag)
      lines.push(
        `  WARN  cannot read replication lag (replSetGetStatus needs the clusterMonitor role), so clean --max-lag-seconds refuses: ${lag.error}`,
      );
  }
  for (const relation of diagnosis.relations) {
    lines.push(`${relation.relation}`);
    for (const finding of relation.findings) lines.push(`  ${mark[finding.level]}  ${finding.message}`);
  }
  return `${lines.flatMap((line) => wrapLine(line, width, line.startsWith('  ') ? 8 : 2)).join('\n')}\n`;
}
