import { BSON, type Document, ObjectId } from 'bson';
import { Aggregator, update as applyOperators } from 'mingo';
import { indexKey, isPlainDocument } from '../bson-values.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { mongodText } from '../key-errors.ts';
import { MINGO_OPTIONS } from '../query.ts';
import { promoted, sameBsonValue, typedClone, typedLoss } from '../typed-values.ts';
import { MAX_BSON_OBJECT_SIZE } from '../wire.ts';
import { isPlainFieldPath, typedArithmetic, withTypesKept } from './typed-update.ts';

/** What an update makes of one document: operators, replacements, pipelines and upserts, as mongod applies them. */

/** mongod stores `_id` first and generates an ObjectId when it is missing. */
export function withIdFirst(doc: Document): Document {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new CommandError(ErrorCodes.TypeMismatch, 'each document must be an object');
  }
  const keys = Object.keys(doc);
  if (keys[0] === '_id') return doc;
  const out: Document = { _id: doc._id ?? new ObjectId() };
  for (const key of keys) if (key !== '_id') out[key] = doc[key];
  return out;
}

export function assertSize(doc: Document): void {
  if (BSON.calculateObjectSize(doc) > MAX_BSON_OBJECT_SIZE) {
    throw new CommandError(
      ErrorCodes.BSONObjectTooLarge,
      'object to insert exceeds the maximum BSON object size',
    );
  }
}

export function isOperatorUpdate(u: Document): boolean {
  const keys = Object.keys(u);
  return keys.length > 0 && keys[0].startsWith('$');
}

/**
 * `$set`/`$unset` of plain field paths (no `_id`, no array positions, no path inside another, every parent a
 * document or absent) applied by copying only the documents along each path — the writes the tool itself sends
 * (first-seen state, checkpoints, locks). Undefined when the update needs mingo's general updater (and its
 * errors), which builds a fresh operator context per call.
 */
function setAndUnset(doc: Document, operators: Document): { doc: Document; changed: boolean } | undefined {
  const set = operators.$set ?? {};
  const unset = operators.$unset ?? {};
  if (Object.keys(operators).some((op) => op !== '$set' && op !== '$unset')) return undefined;
  if (!isPlainDocument(set) || !isPlainDocument(unset)) return undefined;
  const paths = [...Object.keys(set), ...Object.keys(unset)];
  if (paths.length === 0) return undefined;
  for (const path of paths) {
    if (!isPlainFieldPath(path)) return undefined;
    for (const other of paths) if (other !== path && other.startsWith(`${path}.`)) return undefined;
    // Every existing parent along the path must be a document to descend into: `$set` through anything else
    // is mongod's PathNotViable (28); `$unset` through it is left to the general updater.
    let at: unknown = doc;
    const parts = path.split('.');
    for (let i = 0; i < parts.length - 1 && at !== undefined; i++) {
      const parent = at;
      at = (at as Document)[parts[i]];
      if (at === undefined || isPlainDocument(at)) continue;
      if (!Object.hasOwn(set, path)) return undefined;
      throw new CommandError(
        ErrorCodes.PathNotViable,
        `Cannot create field '${parts[i + 1]}' in element {${parts[i]}: ${mongodText((parent as Document)[parts[i]])}}`,
      );
    }
  }
  if (new Set(paths).size !== paths.length) return undefined;
  const out: Document = { ...doc };
  let changed = false;
  const parentOf = (parts: string[], create: boolean): Document | undefined => {
    let at = out;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = at[parts[i]] as Document | undefined;
      if (next === undefined && !create) return undefined;
      at[parts[i]] = next === undefined ? {} : { ...next };
      at = at[parts[i]] as Document;
    }
    return at;
  };
  for (const [path, value] of Object.entries(set)) {
    const parts = path.split('.');
    const last = parts[parts.length - 1];
    const parent = parentOf(parts, true)!;
    const before = parent[last];
    // A no-op only when identical (mongod: same type, same value): `$set` of an int32 5 over an int64 5, even
    // nested, is a write.
    if (before !== undefined && sameBsonValue(before, value)) continue;
    parent[last] = value;
    changed = true;
  }
  for (const path of Object.keys(unset)) {
    const parts = path.split('.');
    const last = parts[parts.length - 1];
    const parent = parentOf(parts, false);
    if (!parent || !(last in parent)) continue;
    delete parent[last];
    changed = true;
  }
  return { doc: out, changed };
}

/**
 * The updated copy of `doc`, or undefined when the update changes nothing. `query` (the statement's filter) is what
 * the positional `$` operator resolves against.
 */
export function updatedCopy(
  doc: Document,
  u: unknown,
  arrayFilters: Document[] | undefined,
  inserting: boolean,
  query?: Document,
): Document | undefined {
  if (Array.isArray(u)) {
    if (promoted(u) !== u || promoted(doc) !== doc) throw typedLoss('an update pipeline');
    const [next] = new Aggregator(u as Document[], MINGO_OPTIONS).run([typedClone(doc)]) as Document[];
    return withIdFirst({ ...next, _id: doc._id });
  }
  if (!u || typeof u !== 'object')
    throw new CommandError(ErrorCodes.FailedToParse, 'update must be an object or a pipeline');
  const spec = u as Document;
  if (!isOperatorUpdate(spec)) {
    if (Object.keys(spec).some((key) => key.startsWith('$'))) {
      throw new CommandError(ErrorCodes.BadValue, 'a replacement document cannot mix update operators');
    }
    if (spec._id !== undefined && indexKey(spec._id) !== indexKey(doc._id)) {
      throw new CommandError(
        66,
        "After applying the update, the (immutable) field '_id' was found to have been altered",
      );
    }
    return withIdFirst({ ...spec, _id: doc._id });
  }
  const operators: Document = { ...spec };
  if (operators.$setOnInsert) {
    if (inserting) operators.$set = { ...(operators.$set ?? {}), ...operators.$setOnInsert };
    delete operators.$setOnInsert;
  }
  if (Object.keys(operators).length === 0) return inserting ? doc : undefined;
  const simple = arrayFilters ? undefined : (setAndUnset(doc, operators) ?? typedArithmetic(doc, operators));
  if (simple) return simple.changed || inserting ? withIdFirst(simple.doc) : undefined;
  const copy = typedClone(doc);
  let changed: string[];
  try {
    changed = withTypesKept(copy, operators, (plain) =>
      applyOperators(plain, operators, arrayFilters, query, {
        cloneMode: 'none',
        queryOptions: MINGO_OPTIONS,
      }),
    );
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw new CommandError(ErrorCodes.BadValue, (error as Error).message);
  }
  return changed.length || inserting ? withIdFirst(copy) : undefined;
}

/** The document an upsert starts from: the query's equality fields. */
function upsertSeed(query: Document | undefined): Document {
  const seed: Document = {};
  const take = (clause: Document) => {
    for (const [key, value] of Object.entries(clause)) {
      if (key === '$and' && Array.isArray(value)) value.forEach(take);
      else if (key.startsWith('$') || key.includes('.')) continue;
      else if (
        value &&
        typeof value === 'object' &&
        !Array.isArray(value) &&
        Object.keys(value)[0]?.startsWith('$')
      ) {
        if ('$eq' in value) seed[key] = value.$eq;
      } else seed[key] = value;
    }
  };
  if (query) take(query);
  return seed;
}

export function upsertedDocument(
  query: Document | undefined,
  u: unknown,
  arrayFilters: Document[] | undefined,
): Document {
  const seed = withIdFirst(upsertSeed(query));
  const doc = updatedCopy(seed, u, arrayFilters, true)!;
  assertSize(doc);
  return doc;
}
