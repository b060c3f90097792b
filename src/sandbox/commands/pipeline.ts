import { randomInt } from 'node:crypto';
import type { Document } from 'bson';
import { Aggregator } from 'mingo/aggregator';
import type { StringCompare } from '../bson-values.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { MONGOD_OPERATORS } from '../mingo-context.ts';
import {
  compilePlainProjection,
  MINGO_OPTIONS,
  type Projector,
  parseSort,
  sortDocuments,
  type WorkBudget,
} from '../query.ts';
import { forMingo, pipelineReferences, throughMingo } from '../through-mingo.ts';
import { hasTypedNumbers } from '../typed-values.ts';
import type { CommandContext } from './context.ts';
import { typedGroup, typedProject } from './typed-stages.ts';

/** An aggregation pipeline over documents already read: mingo's stages, with mongod's answers where they differ. */

const STREAMING_STAGES = new Set([
  '$match',
  '$project',
  '$addFields',
  '$set',
  '$unset',
  '$unwind',
  '$replaceRoot',
  '$replaceWith',
]);
const REFUSED_STAGES = new Set([
  '$out',
  '$merge',
  '$currentOp',
  '$collStats',
  '$listSessions',
  '$changeStream',
]);
const SLICE = 2000;

const evaluatedLets = new WeakMap<Document, Document | undefined>();

/**
 * The command's `let` variables (find, aggregate, update, delete, findAndModify), evaluated once as mongod does
 * (constant expressions, no document): what `$$name` means in its `$expr` and pipeline stages.
 */
export function letVariables(ctx: CommandContext): Document | undefined {
  const spec = ctx.body.let;
  if (spec === undefined) return undefined;
  if (!spec || typeof spec !== 'object' || Array.isArray(spec))
    throw new CommandError(
      ErrorCodes.TypeMismatch,
      "BSON field 'let' is the wrong type, expected type 'object'",
    );
  if (!evaluatedLets.has(ctx.body)) {
    for (const name of Object.keys(spec))
      if (!/^[a-z\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*$/.test(name))
        throw new CommandError(
          ErrorCodes.FailedToParse,
          `'${name}' starts with an invalid character for a user variable name`,
        );
    try {
      const [values] = new Aggregator([{ $replaceWith: { $literal: {} } }, { $addFields: spec }], {
        ...MINGO_OPTIONS,
        context: MONGOD_OPERATORS,
      }).run([{}]) as Document[];
      evaluatedLets.set(ctx.body, values);
    } catch (error) {
      throw new CommandError(ErrorCodes.BadValue, (error as Error).message);
    }
  }
  return evaluatedLets.get(ctx.body);
}

async function runMingo(
  ctx: CommandContext,
  docs: Document[],
  stages: Document[],
  streaming: boolean,
): Promise<Document[]> {
  const aggregator = new Aggregator(stages, {
    ...MINGO_OPTIONS,
    context: MONGOD_OPERATORS,
    variables: letVariables(ctx),
    collectionResolver: (name: string) =>
      Array.from(ctx.server.store.collection(ctx.db, name, false)?.docs.values() ?? [], (doc) =>
        forMingo(doc),
      ),
  });
  const stageNames = `the stage ${stages.map((stage) => Object.keys(stage)[0]).join(', ')}`;
  const references = pipelineReferences(stages);
  const run = (input: Document[]) =>
    throughMingo(input, stageNames, references, (plain) => aggregator.run(plain) as Document[]);
  try {
    if (!streaming) return run(docs);
    const out: Document[] = [];
    for (let start = 0; start < docs.length; start += SLICE) {
      for (const doc of run(docs.slice(start, start + SLICE))) out.push(doc);
      ctx.budget.check();
      await ctx.budget.tick();
    }
    return out;
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw new CommandError(ErrorCodes.BadValue, (error as Error).message);
  }
}

/** `$sample` without replacement (mingo's picks with replacement): a partial Fisher-Yates shuffle. */
function sampleWithoutReplacement(docs: Document[], size: number): Document[] {
  const pool = [...docs];
  const n = Math.min(size, pool.length);
  for (let i = 0; i < n; i++) {
    const j = i + randomInt(pool.length - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, n);
}

/** Stages that compare no strings of their own, or (`$sort`) that the sandbox sorts by the collation. */
const COLLATION_SAFE_STAGES = new Set([
  '$sort',
  '$limit',
  '$skip',
  '$project',
  '$sample',
  '$count',
  '$set',
  '$addFields',
  '$unset',
]);

/** A `$group` into one bucket (countDocuments' shape): it compares no strings, so a collation changes nothing. */
function isSingleGroup(stage: Document): boolean {
  const id = stage.$group?._id;
  return (
    stage.$group !== undefined && (id === null || (typeof id !== 'object' && !String(id).startsWith('$')))
  );
}

/**
 * `$project` output in mongod's field order: `_id` first, then the fields kept from the input in the input's
 * order, then new (computed) fields in the projection's order. mingo keeps the projection's order, `_id` last.
 */
function inMongodFieldOrder(input: Document[], output: Document[]): Document[] {
  return output.map((doc, i) => {
    const source = input[i] ?? {};
    const ordered: Document = {};
    if ('_id' in doc) ordered._id = doc._id;
    for (const key of Object.keys(source)) if (key in doc && !(key in ordered)) ordered[key] = doc[key];
    for (const key of Object.keys(doc)) if (!(key in ordered)) ordered[key] = doc[key];
    return ordered;
  });
}

export async function runPipeline(
  ctx: CommandContext,
  input: Document[],
  pipeline: Document[],
  budget: WorkBudget,
  strings?: StringCompare,
): Promise<Document[]> {
  let docs = input;
  let pending: Document[] = [];
  let pendingStreaming = true;
  const flush = async () => {
    if (pending.length) docs = await runMingo(ctx, docs, pending, pendingStreaming);
    pending = [];
    pendingStreaming = true;
  };
  for (const stage of pipeline) {
    const op = Object.keys(stage)[0];
    if (REFUSED_STAGES.has(op))
      throw new CommandError(ErrorCodes.NotImplemented, `${op} is not supported by the sandbox`);
    if (strings && !COLLATION_SAFE_STAGES.has(op) && !isSingleGroup(stage))
      throw new CommandError(
        ErrorCodes.NotImplemented,
        `the sandbox applies a collation to a leading $match and to $sort only, not to ${op}`,
      );
    if (op === '$sample' || op === '$sort' || op === '$limit' || op === '$skip') {
      await flush();
      if (op === '$sample') docs = sampleWithoutReplacement(docs, Number(stage.$sample?.size ?? 0));
      else if (op === '$sort')
        docs = await sortDocuments(docs, parseSort(stage.$sort) ?? [], budget, strings);
      else if (op === '$limit') docs = docs.slice(0, Number(stage.$limit));
      else docs = docs.slice(Number(stage.$skip));
      continue;
    }
    // `$group` by fields or constants with simple accumulators is evaluated here: with each value's type kept, and
    // without mingo's per-document cost. A `$project` of field paths too, over documents mingo would see untyped.
    const group = op === '$group' ? typedGroup(stage.$group) : undefined;
    const project = op === '$project' ? typedProject(stage.$project) : undefined;
    if (group || project) {
      await flush();
      if (group) {
        docs = group(docs);
        continue;
      }
      if (docs.some(hasTypedNumbers)) {
        docs = docs.map(project as Projector);
        continue;
      }
    }
    const plainProjection = op === '$project' ? compilePlainProjection(stage.$project) : undefined;
    if (plainProjection) {
      // Inclusion or exclusion alone: done here, values kept as stored (typed numbers included).
      await flush();
      docs = docs.map(plainProjection);
      continue;
    }
    if (op === '$project') {
      await flush();
      const before = docs;
      docs = inMongodFieldOrder(before, await runMingo(ctx, before, [stage], true));
      continue;
    }
    pending.push(stage);
    if (!STREAMING_STAGES.has(op)) pendingStreaming = false;
  }
  await flush();
  return docs;
}
