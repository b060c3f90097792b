// Over 300 lines: filtering, index lookups, sorting and projection over one storage model.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { BSON, type Document } from 'bson';
import { Query } from 'mingo';
import { compareBson, indexKey, type StringCompare, sortKeyAt, valuesAtPath } from './bson-values.ts';
import { CommandError, ErrorCodes } from './command-error.ts';
import { FilterCompiler, type Matcher, MINGO_OPTIONS } from './match.ts';
import type { Collection } from './storage.ts';
import { stageReferences, throughMingo } from './through-mingo.ts';

export { MINGO_OPTIONS };

const SLICE_MS = 20;

/**
 * Lets long work share the event loop: `tick()` yields every ~20 ms so heartbeats and other clients keep
 * being answered, and fails with MaxTimeMSExpired once the command's `maxTimeMS` is spent.
 */
export class WorkBudget {
  private sliceStart = Date.now();
  private readonly deadline: number;
  private counter = 0;
  private killed = false;

  constructor(maxTimeMS?: unknown) {
    const ms = Number(maxTimeMS ?? 0);
    this.deadline = ms > 0 ? Date.now() + ms : Number.POSITIVE_INFINITY;
  }

  /** `killOp`: the command stops at its next check with Interrupted, as mongod's does. */
  kill(): void {
    this.killed = true;
  }

  async tick(): Promise<void> {
    if (this.killed) throw interrupted();
    if (++this.counter % 16 !== 0) return;
    const now = Date.now();
    if (now > this.deadline) throw maxTimeExpired();
    if (now - this.sliceStart >= SLICE_MS) {
      await yieldToEventLoop();
      this.sliceStart = Date.now();
      if (this.sliceStart > this.deadline) throw maxTimeExpired();
    }
  }

  check(): void {
    if (this.killed) throw interrupted();
    if (Date.now() > this.deadline) throw maxTimeExpired();
  }
}

function interrupted(): CommandError {
  return new CommandError(ErrorCodes.Interrupted, 'operation was interrupted');
}

function maxTimeExpired(): CommandError {
  return new CommandError(ErrorCodes.MaxTimeMSExpired, 'operation exceeded time limit');
}

/**
 * Equality and `$in` clauses on scalar values, matched through a Set of index keys: what the engine's
 * parent probes send, and far cheaper than mingo's linear `$in` over a thousand values.
 */
function compileEqualityFilter(filter: Document): Matcher | undefined {
  const clauses: [string, Set<string>][] = [];
  for (const [field, condition] of Object.entries(filter)) {
    if (field.startsWith('$')) return undefined;
    let values: unknown[];
    if (!isOperatorObject(condition)) values = [condition];
    else {
      const names = Object.keys(condition as Document);
      if (names.length !== 1) return undefined;
      if (names[0] === '$eq') values = [(condition as Document).$eq];
      else if (names[0] === '$in' && Array.isArray((condition as Document).$in))
        values = (condition as Document).$in;
      else return undefined;
    }
    if (!values.every((value) => value !== null && value !== undefined && indexableValue(value)))
      return undefined;
    clauses.push([field, new Set(values.map(indexKey))]);
  }
  return (doc) =>
    clauses.every(([field, keys]) => valuesAtPath(doc, field).some((value) => keys.has(indexKey(value))));
}

/**
 * A filter as mongod evaluates it: equality and order across numeric types, `$type`, and strings by the
 * collation (`strings`) when there is one; a plain equality or `$in` without collation through a Set.
 */
export function compileFilter(filter: unknown, strings?: StringCompare, variables?: Document): Matcher {
  if (filter === undefined || filter === null) return () => true;
  if (typeof filter !== 'object' || Array.isArray(filter)) {
    throw new CommandError(ErrorCodes.TypeMismatch, 'filter must be an object');
  }
  if (Object.keys(filter).length === 0) return () => true;
  const fast = strings ? undefined : compileEqualityFilter(filter as Document);
  if (fast) return fast;
  return new FilterCompiler(strings, variables).compile(filter as Document);
}

function isOperatorObject(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Date)
    return false;
  if ((value as { _bsontype?: string })._bsontype) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys[0].startsWith('$');
}

function indexableValue(value: unknown): boolean {
  if (value instanceof RegExp || Array.isArray(value)) return false;
  if (value !== null && typeof value === 'object') {
    const type = (value as { _bsontype?: string })._bsontype;
    return value instanceof Date || (type !== undefined && type !== 'BSONRegExp');
  }
  return true;
}

/**
 * Candidate documents from an index when the filter pins an indexed field by equality or `$in`
 * (top level or inside a top-level `$and`); undefined means a collection scan is needed.
 * The full filter is still applied to every candidate.
 */
export function indexCandidates(
  coll: Collection,
  filter: Document | undefined,
): { docs: Document[]; exact: boolean } | undefined {
  if (!filter) return undefined;
  const clauses: [string, unknown][] = Object.entries(filter);
  const topLevel = clauses.length;
  if (Array.isArray(filter.$and)) for (const part of filter.$and) clauses.push(...Object.entries(part ?? {}));
  for (const [field, condition] of clauses) {
    if (field.startsWith('$')) continue;
    const lookup = coll.equalityLookup(field);
    if (!lookup) continue;
    let values: unknown[] | undefined;
    if (!isOperatorObject(condition)) values = [condition];
    else {
      const ops = condition as Document;
      const names = Object.keys(ops);
      if (names.length === 1 && names[0] === '$eq') values = [ops.$eq];
      else if (names.length === 1 && names[0] === '$in' && Array.isArray(ops.$in)) values = ops.$in;
    }
    if (!values?.every(indexableValue)) continue;
    const seen = new Set<Document>();
    for (const value of values) for (const doc of lookup(value)) seen.add(doc);
    // The lookup alone answers a filter that is just this clause (null aside: an empty array is indexed as null).
    const exact =
      topLevel === 1 &&
      clauses[0][0] === field &&
      values.every((value) => value !== null && value !== undefined);
    return { docs: [...seen], exact };
  }
  return undefined;
}

/** Documents of `coll` matching `filter`, in natural order, without holding the event loop. */
export async function matchDocuments(
  coll: Collection,
  filter: Document | undefined,
  budget: WorkBudget,
  limit = Number.POSITIVE_INFINITY,
  strings?: StringCompare,
  variables?: Document,
): Promise<Document[]> {
  if (filter !== undefined && filter !== null && (typeof filter !== 'object' || Array.isArray(filter)))
    throw new CommandError(ErrorCodes.TypeMismatch, 'filter must be an object');
  // The indexes hold binary string keys: under a collation every document is matched.
  const candidates = strings ? undefined : indexCandidates(coll, filter);
  const source = candidates?.docs ?? coll.docs.values();
  const noFilter = !filter || Object.keys(filter).length === 0 || Boolean(candidates?.exact);
  // An index lookup that answers the filter alone needs no matcher (a parent probe's `$in` of 1,000 keys would
  // otherwise build a second Set of them).
  const matcher = noFilter ? () => true : compileFilter(filter, strings, variables);
  const out: Document[] = [];
  for (const doc of source) {
    if (out.length >= limit) break;
    if (noFilter || matcher(doc)) out.push(doc);
    await budget.tick();
  }
  return out;
}

/** The collection's `_id` keys in `_id` order, from its cache or sorted once (in slices) and cached. */
async function idOrderKeys(coll: Collection, budget: WorkBudget): Promise<string[]> {
  if (coll.idOrder && !coll.idOrder.removed) return coll.idOrder.keys;
  if (coll.idOrder) {
    const keys = coll.idOrder.keys.filter((key) => coll.docs.has(key));
    coll.idOrder = {
      keys,
      last: keys.length ? coll.docs.get(keys[keys.length - 1])!._id : undefined,
      removed: false,
    };
    return keys;
  }
  const docs = [...coll.docs.values()];
  let sorted = true;
  for (let i = 1; i < docs.length && sorted; i++) sorted = compareBson(docs[i - 1]._id, docs[i]._id) < 0;
  const ordered = sorted ? docs : await sortDocuments(docs, [['_id', 1]], budget);
  const keys = ordered.map((doc) => indexKey(doc._id));
  coll.idOrder = { keys, last: ordered.length ? ordered[ordered.length - 1]._id : undefined, removed: false };
  return keys;
}

/** First position in `keys` whose document's `_id` is not below `bound` (BSON order). */
function lowerBound(coll: Collection, keys: string[], bound: unknown): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBson(coll.docs.get(keys[mid])!._id, bound) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Documents read along the `_id` index, as mongod's IXSCAN on `{_id: 1}` does: in `_id` order (reversed for
 * -1), from `min` (inclusive) to `max` (exclusive) — index bounds, so every BSON type is in range, unlike
 * `$gt`/`$lt`, which compare within one type.
 */
export async function documentsByIdIndex(
  coll: Collection,
  filter: Document | undefined,
  budget: WorkBudget,
  options: {
    direction: 1 | -1;
    min?: unknown;
    max?: unknown;
    limit?: number;
    strings?: StringCompare;
    variables?: Document;
  },
): Promise<Document[]> {
  const keys = await idOrderKeys(coll, budget);
  const from = options.min === undefined ? 0 : lowerBound(coll, keys, options.min);
  const to = options.max === undefined ? keys.length : lowerBound(coll, keys, options.max);
  const matcher = compileFilter(filter, options.strings, options.variables);
  const noFilter = !filter || Object.keys(filter).length === 0;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const out: Document[] = [];
  for (let i = 0; i < to - from && out.length < limit; i++) {
    const doc = coll.docs.get(keys[options.direction === 1 ? from + i : to - 1 - i]);
    if (doc && (noFilter || matcher(doc))) out.push(doc);
    await budget.tick();
  }
  return out;
}

type SortSpec = [path: string, direction: 1 | -1][];

export function parseSort(sort: unknown): SortSpec | undefined {
  if (sort === undefined || sort === null) return undefined;
  if (typeof sort !== 'object' || Array.isArray(sort))
    throw new CommandError(ErrorCodes.TypeMismatch, 'sort must be an object');
  const spec: SortSpec = [];
  for (const [path, dir] of Object.entries(sort)) {
    const n = Number(dir);
    if (n !== 1 && n !== -1) {
      if (dir && typeof dir === 'object' && (dir as Document).$meta) continue;
      throw new CommandError(
        ErrorCodes.BadValue,
        `$sort key ordering must be 1 (for ascending) or -1 (for descending)`,
      );
    }
    spec.push([path, n]);
  }
  return spec.length ? spec : undefined;
}

/** A stable sort by MongoDB's BSON order, done in slices so a million documents never block for long. */
export async function sortDocuments(
  docs: Document[],
  spec: SortSpec,
  budget: WorkBudget,
  strings?: StringCompare,
): Promise<Document[]> {
  if (spec.length === 1 && spec[0][0] === '$natural') return spec[0][1] === 1 ? docs : [...docs].reverse();
  type Keyed = { doc: Document; keys: unknown[] };
  const keyed: Keyed[] = new Array(docs.length);
  for (let i = 0; i < docs.length; i++) {
    keyed[i] = { doc: docs[i], keys: spec.map(([path, dir]) => sortKeyAt(docs[i], path, dir, strings)) };
    await budget.tick();
  }
  const compare = (a: Keyed, b: Keyed): number => {
    for (let i = 0; i < spec.length; i++) {
      const c = compareBson(a.keys[i], b.keys[i], strings);
      if (c !== 0) return c * spec[i][1];
    }
    return 0;
  };
  const RUN = 2048;
  for (let start = 0; start < keyed.length; start += RUN) {
    const run = keyed.slice(start, start + RUN).sort(compare);
    for (let i = 0; i < run.length; i++) keyed[start + i] = run[i];
    budget.check();
    await budget.tick();
  }
  let from = keyed;
  let to: Keyed[] = new Array(keyed.length);
  for (let width = RUN; width < keyed.length; width *= 2) {
    for (let lo = 0; lo < keyed.length; lo += 2 * width) {
      const mid = Math.min(lo + width, keyed.length);
      const hi = Math.min(lo + 2 * width, keyed.length);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        to[k++] = compare(from[j], from[i]) < 0 ? from[j++] : from[i++];
        await budget.tick();
      }
      while (i < mid) to[k++] = from[i++];
      while (j < hi) to[k++] = from[j++];
    }
    [from, to] = [to, from];
  }
  return from.map((entry) => entry.doc);
}

export type Projector = (doc: Document) => Document;

type ProjectionTree = Map<string, ProjectionTree | true>;

function buildTree(paths: string[]): ProjectionTree {
  const tree: ProjectionTree = new Map();
  for (const path of paths) {
    const parts = path.split('.');
    let node = tree;
    for (let i = 0; i < parts.length; i++) {
      if (i === parts.length - 1) node.set(parts[i], true);
      else {
        let child = node.get(parts[i]);
        if (child === true) break;
        if (!child) {
          child = new Map();
          node.set(parts[i], child);
        }
        node = child;
      }
    }
  }
  return tree;
}

function include(value: unknown, tree: ProjectionTree): unknown {
  if (Array.isArray(value))
    return value.filter((v) => v && typeof v === 'object' && !Array.isArray(v)).map((v) => include(v, tree));
  if (
    !value ||
    typeof value !== 'object' ||
    (value as { _bsontype?: string })._bsontype ||
    value instanceof Date
  )
    return undefined;
  const out: Document = {};
  // Keys, not entries: no pair array per field of every document a projected read returns.
  for (const key of Object.keys(value)) {
    const node = tree.get(key);
    if (node === undefined) continue;
    const v = (value as Document)[key];
    if (node === true) out[key] = v;
    else {
      const sub = include(v, node);
      if (sub !== undefined) out[key] = sub;
    }
  }
  return out;
}

function exclude(value: unknown, tree: ProjectionTree): unknown {
  if (Array.isArray(value)) return value.map((v) => (v && typeof v === 'object' ? exclude(v, tree) : v));
  if (
    !value ||
    typeof value !== 'object' ||
    (value as { _bsontype?: string })._bsontype ||
    value instanceof Date
  )
    return value;
  const out: Document = {};
  for (const key of Object.keys(value)) {
    const node = tree.get(key);
    if (node === true) continue;
    const v = (value as Document)[key];
    out[key] = node === undefined ? v : exclude(v, node);
  }
  return out;
}

function isPlainProjection(entries: [string, unknown][]): boolean {
  return entries.every(
    ([key, v]) => !key.startsWith('$') && (typeof v === 'number' || typeof v === 'boolean'),
  );
}

/** A projection of inclusions or exclusions alone, compiled; undefined for anything else (operators, `{}`). */
export function compilePlainProjection(projection: unknown): Projector | undefined {
  if (projection === null || typeof projection !== 'object' || Array.isArray(projection)) return undefined;
  const entries = Object.entries(projection as Document);
  return entries.length && isPlainProjection(entries) ? compileProjection(projection) : undefined;
}

/**
 * Projection that keeps the stored field order (mingo's reorders fields). Plain inclusion/exclusion is
 * handled here; operators (`$slice`, `$elemMatch`, expressions) go to mingo.
 */
export function compileProjection(projection: unknown): Projector | undefined {
  if (projection === undefined || projection === null) return undefined;
  if (typeof projection !== 'object' || Array.isArray(projection)) {
    throw new CommandError(ErrorCodes.TypeMismatch, 'projection must be an object');
  }
  // `{field: {$bsonSize: '$$ROOT'}}`: the stored document's size, computed here (mingo has no $bsonSize).
  const sizeFields = Object.entries(projection as Document)
    .filter(([, v]) => v && typeof v === 'object' && (v as Document).$bsonSize === '$$ROOT')
    .map(([key]) => key);
  if (sizeFields.length) {
    const rest = Object.fromEntries(
      Object.entries(projection as Document).filter(([key]) => !sizeFields.includes(key)),
    );
    const base = compileProjection(Object.keys(rest).length ? rest : { _id: 1 });
    return (doc) => {
      const out = base ? base(doc) : { ...doc };
      const size = BSON.calculateObjectSize(doc);
      for (const key of sizeFields) out[key] = size;
      return out;
    };
  }
  const entries = Object.entries(projection as Document);
  if (entries.length === 0) return undefined;
  if (!isPlainProjection(entries)) {
    return (doc) => {
      try {
        return throughMingo(
          [doc],
          'a projection with operators',
          stageReferences({ $project: projection }),
          (plain) => new Query({}, MINGO_OPTIONS).find(plain, projection as Document).all() as Document[],
        )[0];
      } catch (error) {
        if (error instanceof CommandError) throw error;
        throw new CommandError(ErrorCodes.BadValue, (error as Error).message);
      }
    };
  }
  const idShown = entries.find(([key]) => key === '_id')?.[1] ?? true;
  const others = entries.filter(([key]) => key !== '_id');
  const inclusion = others.length > 0 ? Boolean(others[0][1]) : Boolean(idShown);
  if (others.some(([, v]) => Boolean(v) !== inclusion)) {
    throw new CommandError(31254, 'Cannot do exclusion on field in inclusion projection');
  }
  if (inclusion) {
    const tree = buildTree([...others.map(([key]) => key), ...(idShown ? ['_id'] : [])]);
    return (doc) => include(doc, tree) as Document;
  }
  const tree = buildTree([...others.map(([key]) => key), ...(idShown ? [] : ['_id'])]);
  return (doc) => exclude(doc, tree) as Document;
}
