import type { Document } from 'bson';
import { promoted, typedLoss } from './typed-values.ts';

/**
 * mingo over stored documents (`typed-values.ts`): it is handed promoted copies, gets back what it passes through
 * as stored, and what it builds from a typed number is refused, since it would carry that number as an int32.
 */

type Tagged = { _bsontype?: string };

function tagOf(value: object): string | undefined {
  return (value as Tagged)._bsontype;
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
function fieldReferences(spec: unknown): FieldReferences {
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
 * name (and for an exclusion `$project`), the named and referenced paths for an inclusion `$project`, nothing
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
    } else {
      // The field itself: included, or read by a find projection's `$slice`/`$elemMatch` on it.
      paths.add(key);
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
