import { BSON, type Document, type Double, type Long } from 'bson';
import { CommandError, ErrorCodes } from './command-error.ts';

/**
 * Numbers as the sandbox stores them, so that each keeps its BSON type through insert → find (issue 23 item 4):
 * - an int32 is a JavaScript number BSON writes back as an int32 (whole, in int32 range, not -0);
 * - a double is a JavaScript number too, unless BSON would write that number back as an int32 (a whole double in
 *   int32 range): then it stays a `Double`;
 * - an int64 is always a `Long`.
 * Equality, order and index keys read numbers through `compareNumbers`/`numericKey`, which take all three. mingo
 * does arithmetic and comparisons on JavaScript numbers only, so what reaches it is `promoted` first, and what
 * it builds from promoted values is refused when a typed number would have been lost (`throughMingo`).
 */

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

type Tagged = { _bsontype?: string };

function tagOf(value: object): string | undefined {
  return (value as Tagged)._bsontype;
}

/** Whether BSON writes this JavaScript number as an int32 (else as a double). */
export function writesAsInt32(x: number): boolean {
  return Number.isInteger(x) && x >= INT32_MIN && x <= INT32_MAX && !Object.is(x, -0);
}

let sawTyped = false;

function stored(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = stored(value[i]);
    return value;
  }
  const tag = tagOf(value);
  if (tag === undefined) {
    const doc = value as Document;
    for (const key of Object.keys(doc)) doc[key] = stored(doc[key]);
    return doc;
  }
  switch (tag) {
    case 'Int32':
      return (value as { value: number }).value;
    case 'Double': {
      const x = (value as Double).value;
      if (!writesAsInt32(x)) return x;
      sawTyped = true;
      return value;
    }
    case 'Long':
      sawTyped = true;
      return value;
    case 'BSONSymbol':
      return String((value as { value: string }).value);
  }
  return value;
}

/** A decoded document in the stored form, and whether a typed number (`Long`, whole `Double`) is inside. */
export interface Decoded {
  doc: Document;
  typed: boolean;
}

/** Decodes BSON keeping each number's type as described above. */
export function decodeTyped(bytes: Uint8Array): Decoded {
  const doc = BSON.deserialize(bytes, { promoteValues: false });
  sawTyped = false;
  stored(doc);
  return { doc, typed: sawTyped };
}

/** A deep copy through BSON that keeps every number's type. */
export function typedClone(doc: Document): Document {
  return decodeTyped(BSON.serialize(doc)).doc;
}

/**
 * The value with every `Long` in JavaScript's safe range and every `Double` made a plain number, copied only
 * where something changes (the same object when nothing does). An int64 beyond 2^53 stays a `Long`.
 */
export function promoted<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = promoted(value[i]);
      if (next !== value[i]) {
        out ??= value.slice();
        out[i] = next;
      }
    }
    return (out ?? value) as T;
  }
  const tag = tagOf(value);
  if (tag === 'Double') return (value as unknown as Double).value as T;
  if (tag === 'Long') {
    const long = value as unknown as Long;
    const n = long.toNumber();
    return (Number.isSafeInteger(n) ? n : value) as T;
  }
  if (tag !== undefined || value instanceof Date || value instanceof RegExp) return value;
  let out: Document | undefined;
  const doc = value as Document;
  for (const key of Object.keys(doc)) {
    const next = promoted(doc[key]);
    if (next !== doc[key]) {
      out ??= { ...doc };
      out[key] = next;
    }
  }
  return (out ?? value) as T;
}

/** Whether the value holds a number `promoted` would change (so mingo would see it without its type). */
export function hasTypedNumbers(value: unknown): boolean {
  return promoted(value) !== value;
}

/** The BSON number type of a value, or undefined when it is not a number. */
export function numberType(value: unknown): 'int' | 'long' | 'double' | 'decimal' | undefined {
  if (typeof value === 'number') return writesAsInt32(value) ? 'int' : 'double';
  if (typeof value === 'bigint') return 'long';
  if (typeof value !== 'object' || value === null) return undefined;
  switch (tagOf(value)) {
    case 'Int32':
      return 'int';
    case 'Long':
      return 'long';
    case 'Double':
      return 'double';
    case 'Decimal128':
      return 'decimal';
  }
  return undefined;
}

/**
 * Refuses an answer mingo built from promoted values when typed numbers went in: what it returns would carry
 * an int64 or a whole double as an int32 where mongod keeps the type. Loud, not wrong.
 */
export function typedLoss(what: string): CommandError {
  return new CommandError(
    ErrorCodes.NotImplemented,
    `${what} is not supported by the sandbox where int64 or whole-number double values are involved: its evaluator would store or return them as int32 (mongod keeps their type)`,
  );
}

/** What one synchronous mingo evaluation was given in promoted form. */
interface PromotedRun {
  /** Promoted copy → the stored document it stands for. */
  originals: Map<object, object>;
  /** Where typed numbers were, as field paths without array positions. */
  paths: Set<string>;
}

let running: PromotedRun | undefined;

function collectPromoted(value: unknown, into: PromotedRun, path: string): void {
  if (typeof value !== 'object' || value === null) return;
  const tag = tagOf(value);
  if (tag === 'Double' || tag === 'Long') {
    if (typeof promoted(value) === 'number') into.paths.add(path);
    return;
  }
  if (tag !== undefined) return;
  if (Array.isArray(value)) for (const item of value) collectPromoted(item, into, path);
  else
    for (const [key, item] of Object.entries(value))
      collectPromoted(item, into, path ? `${path}.${key}` : key);
}

/** The field paths an expression or stage reads (`'$a.b'`), or 'all' when it reads whole documents. */
export type FieldReferences = Set<string> | 'all';

/**
 * What a pipeline stage (or any mingo expression) reads from its input documents: `$path` strings, and whole
 * documents through `$$ROOT`/`$$CURRENT` — except as `$bsonSize`'s argument, which measures the stored form.
 */
export function fieldReferences(spec: unknown): FieldReferences {
  const paths = new Set<string>();
  let all = false;
  const visit = (value: unknown, key: string | undefined) => {
    if (typeof value === 'string') {
      const root = /^\$\$(ROOT|CURRENT)(?:\.(.+))?$/.exec(value);
      if (root) {
        if (root[2]) paths.add(root[2]);
        else if (key !== '$bsonSize') all = true;
      } else if (value.startsWith('$') && !value.startsWith('$$')) paths.add(value.slice(1));
      return;
    }
    if (typeof value !== 'object' || value === null || tagOf(value) !== undefined) return;
    if (Array.isArray(value)) for (const item of value) visit(item, key);
    else for (const [k, item] of Object.entries(value)) if (k !== '$literal') visit(item, k);
  };
  visit(spec, undefined);
  return all ? 'all' : paths;
}

/** Stages whose output keeps input fields they do not name: they copy whole documents. */
const COPYING_STAGES = new Set([
  '$addFields',
  '$set',
  '$unset',
  '$unwind',
  '$lookup',
  '$graphLookup',
  '$redact',
  '$facet',
  '$setWindowFields',
  '$densify',
  '$fill',
  '$unionWith',
]);

/**
 * What a pipeline stage reads or copies from its input: everything for the stages that keep fields they do not
 * name (and for an exclusion `$project`), the included and referenced paths for an inclusion `$project`, nothing
 * for `$match` (it passes documents through; its comparisons on promoted numbers are exact), and the `$path`s
 * of anything else.
 */
export function stageReferences(stage: Document): FieldReferences {
  const op = Object.keys(stage)[0];
  if (op === '$match') return new Set();
  if (COPYING_STAGES.has(op)) return 'all';
  if (op !== '$project' || typeof stage.$project !== 'object' || stage.$project === null)
    return fieldReferences(stage);
  const paths = new Set<string>();
  for (const [key, value] of Object.entries(stage.$project as Document)) {
    if (value === 0 || value === false) {
      if (key !== '_id') return 'all';
    } else if (value === 1 || value === true) paths.add(key);
    else {
      const inner = fieldReferences(value);
      if (inner === 'all') return 'all';
      for (const path of inner) paths.add(path);
    }
  }
  if ((stage.$project as Document)._id === undefined) paths.add('_id');
  return paths;
}

/** The union of the stages' references. */
export function pipelineReferences(stages: Document[]): FieldReferences {
  const paths = new Set<string>();
  for (const stage of stages) {
    const refs = stageReferences(stage);
    if (refs === 'all') return 'all';
    for (const path of refs) paths.add(path);
  }
  return paths;
}

function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);
}

function readsTyped(references: FieldReferences, typedPaths: Set<string>): boolean {
  if (references === 'all') return typedPaths.size > 0;
  for (const path of typedPaths) {
    const plain = path
      .split('.')
      .filter((part) => !/^\d+$/.test(part))
      .join('.');
    for (const read of references) if (overlaps(read, plain)) return true;
  }
  return false;
}

/** A stored document as mingo may see it during `throughMingo` (a `$lookup`'s documents, for one). */
export function forMingo<T extends object>(doc: T): T {
  const plain = promoted(doc);
  if (plain !== doc && running) {
    running.originals.set(plain, doc);
    collectPromoted(doc, running, '');
  }
  return plain;
}

/** The stored document a promoted copy stands for (itself otherwise): what `$bsonSize` measures. */
export function storedOf<T>(value: T): T {
  return ((running && typeof value === 'object' && value !== null && running.originals.get(value)) ||
    value) as T;
}

/** Whether whole numbers mingo sees now are what they say: false while it evaluates promoted copies. */
export function wholeNumberTypesKnown(): boolean {
  return running === undefined || running.paths.size === 0;
}

/**
 * Runs a synchronous mingo evaluation (`run`) over stored documents with their typed numbers promoted. A document
 * it passes through comes back as stored; one it built is refused (`what` names the evaluation) when it read a
 * field holding a promoted number (`references`: what the evaluation reads or copies), since mingo would hand back
 * an int64 or a whole double as an int32.
 */
export function throughMingo(
  docs: Document[],
  what: string,
  references: FieldReferences,
  run: (plain: Document[]) => Document[],
): Document[] {
  const outer = running;
  const state: PromotedRun = { originals: new Map(), paths: new Set() };
  running = state;
  try {
    const out = run(docs.map((doc) => forMingo(doc)));
    if (state.originals.size === 0) return out;
    const computedFromTyped = readsTyped(references, state.paths);
    return out.map((doc) => {
      const original = state.originals.get(doc) as Document | undefined;
      if (original) return original;
      if (computedFromTyped) throw typedLoss(what);
      return doc;
    });
  } finally {
    running = outer;
  }
}

/** A synchronous mingo test (a query clause) on a stored document, its typed numbers promoted. */
export function testThroughMingo(doc: Document, test: (plain: Document) => boolean): boolean {
  const plain = promoted(doc);
  if (plain === doc) return test(doc);
  const outer = running;
  const state: PromotedRun = { originals: new Map([[plain, doc]]), paths: new Set() };
  collectPromoted(doc, state, '');
  running = state;
  try {
    return test(plain);
  } finally {
    running = outer;
  }
}
