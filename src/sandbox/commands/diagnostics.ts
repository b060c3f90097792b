import { cpus, hostname, totalmem } from 'node:os';
import type { Document } from 'bson';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { indexCandidates, WorkBudget } from '../query.ts';
import type { Collection } from '../storage.ts';
import { SANDBOX_VERSION } from './admin.ts';
import { type CommandHandler, existingCollection, isCursorBatch } from './context.ts';
import { readCommands } from './read.ts';

/** A query plan as mongod's explain shows it: the stage and, under a FETCH, the index scanned. */
function winningPlan(coll: Collection | undefined, command: Document): Document {
  const filter = (command.filter ?? command.query ?? command.q ?? {}) as Document;
  const keys = Object.keys(filter);
  if (
    keys.length === 1 &&
    keys[0] === '_id' &&
    (typeof filter._id !== 'object' || filter._id === null || '_bsontype' in filter._id)
  )
    return { stage: 'IDHACK' };
  const byIdIndex = command.min !== undefined || command.max !== undefined || command.hint?._id === 1;
  const candidates = coll && !byIdIndex ? indexCandidates(coll, filter) : undefined;
  const field = candidates
    ? Object.keys(filter).find((key) => !key.startsWith('$') && coll?.equalityLookup(key))
    : byIdIndex
      ? '_id'
      : undefined;
  if (!field) return { stage: 'COLLSCAN', filter, direction: 'forward' };
  const index = field === '_id' ? { name: '_id_', key: { _id: 1 } } : coll?.findIndex({ [field]: 1 })?.spec;
  return {
    stage: 'FETCH',
    ...(keys.length > 1 ? { filter } : {}),
    inputStage: {
      stage: 'IXSCAN',
      keyPattern: index?.key ?? { [field]: 1 },
      indexName: index?.name ?? `${field}_1`,
      direction: 'forward',
    },
  };
}

/** What an explained command would do and, with `executionStats`, what running it (without writing) returned. */
const explain: CommandHandler = async (ctx) => {
  const inner = ctx.body.explain as Document | undefined;
  if (!inner || typeof inner !== 'object')
    throw new CommandError(ErrorCodes.BadValue, 'explain needs a command');
  const kind = Object.keys(inner)[0];
  if (!['find', 'aggregate', 'count', 'delete', 'distinct'].includes(kind))
    throw new CommandError(
      ErrorCodes.NotImplemented,
      `the sandbox explains find, aggregate, count, distinct and delete, not ${kind}`,
    );
  const verbosity = String(ctx.body.verbosity ?? 'allPlansExecution');
  const name = String(inner[kind]);
  const coll = existingCollection(ctx, name);
  const command =
    kind === 'delete' ? { ...(inner.deletes?.[0] ?? {}), filter: inner.deletes?.[0]?.q } : inner;
  const pipelineMatch =
    kind === 'aggregate' && inner.pipeline?.[0]?.$match ? { filter: inner.pipeline[0].$match } : {};
  let plan = winningPlan(coll, kind === 'aggregate' ? pipelineMatch : command);
  if (kind === 'count') plan = { stage: 'COUNT', inputStage: plan };
  if (kind === 'delete') plan = { stage: 'DELETE', inputStage: plan };
  const queryPlanner = {
    namespace: `${ctx.db}.${name}`,
    indexFilterSet: false,
    parsedQuery: (kind === 'aggregate' ? pipelineMatch.filter : (command.filter ?? command.query)) ?? {},
    winningPlan: plan,
    rejectedPlans: [],
  };
  const reply: Document = { explainVersion: '1' };
  if (kind === 'aggregate')
    reply.stages = [
      { $cursor: { queryPlanner } },
      ...((inner.pipeline as Document[]) ?? []).slice(pipelineMatch.filter ? 1 : 0),
    ];
  else reply.queryPlanner = queryPlanner;
  if (verbosity !== 'queryPlanner') {
    const started = Date.now();
    // Run the read (a delete is explained as the find of what it would delete): counted, nothing written.
    const read =
      kind === 'delete'
        ? { find: name, filter: command.filter ?? {} }
        : kind === 'count'
          ? { find: name, filter: inner.query ?? {} }
          : inner;
    const readName = Object.keys(read)[0];
    let returned = 0;
    if (coll && (readName === 'find' || readName === 'aggregate')) {
      const body = { ...read, cursor: {} };
      const result = await readCommands[readName]({
        ...ctx,
        body,
        typed: body,
        budget: new WorkBudget(undefined),
      });
      if (isCursorBatch(result)) {
        returned = result.cursor.docs.length;
        ctx.server.cursors.kill(result.cursor.id);
      }
    }
    const scanned =
      plan.stage === 'COLLSCAN' || plan.inputStage?.stage === 'COLLSCAN' ? (coll?.docs.size ?? 0) : returned;
    reply.executionStats = {
      executionSuccess: true,
      nReturned: kind === 'delete' || kind === 'count' ? 0 : returned,
      ...(kind === 'delete' ? { nWouldDelete: returned } : {}),
      ...(kind === 'count' ? { nCounted: returned } : {}),
      executionTimeMillis: Date.now() - started,
      totalKeysExamined: scanned === returned && plan.stage !== 'COLLSCAN' ? returned : 0,
      totalDocsExamined: scanned,
    };
  }
  return {
    ...reply,
    command: inner,
    serverInfo: { host: hostname(), port: 0, version: SANDBOX_VERSION, gitVersion: 'sandbox' },
    ok: 1,
  };
};

const hostInfo: CommandHandler = () => ({
  system: {
    currentTime: new Date(),
    hostname: hostname(),
    cpuAddrSize: 64,
    memSizeMB: Math.round(totalmem() / 1048576),
    numCores: cpus().length,
    cpuArch: process.arch,
  },
  os: {
    type: process.platform === 'linux' ? 'Linux' : process.platform,
    name: process.platform,
    version: process.version,
  },
  extra: { note: 'orphan-cleanup sandbox (Node.js)' },
  ok: 1,
});

const getCmdLineOpts: CommandHandler = (ctx) => ({
  argv: ctx.server.argv,
  parsed: {
    net: { bindIp: '127.0.0.1' },
    ...(ctx.server.replicaSet ? { replication: { replSet: ctx.server.replicaSet.name } } : {}),
  },
  ok: 1,
});

/** The profiler is off and stays off: level 0 (or -1, to read it) is answered, any other level refused. */
const profile: CommandHandler = (ctx) => {
  const level = Number(ctx.body.profile);
  if (level !== 0 && level !== -1)
    throw new CommandError(
      ErrorCodes.NotImplemented,
      'the sandbox has no profiler: only profile levels 0 and -1 are supported',
    );
  return { was: 0, slowms: 100, sampleRate: 1, ok: 1 };
};

/** Checks every index entry against the documents (the sandbox's indexes are rebuilt from them, so they agree). */
const validate: CommandHandler = (ctx) => {
  const name = String(ctx.body.validate);
  const coll = existingCollection(ctx, name);
  const ns = `${ctx.db}.${name}`;
  if (!coll)
    throw new CommandError(ErrorCodes.NamespaceNotFound, `Collection '${ns}' does not exist to validate.`);
  const keysPerIndex = Object.fromEntries(coll.indexSpecs.map((spec) => [spec.name, coll.docs.size]));
  return {
    ns,
    nInvalidDocuments: 0,
    nNonCompliantDocuments: 0,
    nrecords: coll.docs.size,
    nIndexes: coll.indexSpecs.length,
    keysPerIndex,
    indexDetails: Object.fromEntries(coll.indexSpecs.map((spec) => [spec.name, { valid: true }])),
    valid: true,
    repaired: false,
    warnings: [],
    errors: [],
    extraIndexEntries: [],
    missingIndexEntries: [],
    corruptRecords: [],
    ok: 1,
  };
};

export const diagnosticCommands: Record<string, CommandHandler> = {
  explain,
  hostInfo,
  getCmdLineOpts,
  profile,
  validate,
};
