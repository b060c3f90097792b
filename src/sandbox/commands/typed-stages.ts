import { type Document, Double, Long } from 'bson';
import { compareBson, indexKey, isPlainDocument } from '../bson-values.ts';
import { aggregationTypeName } from '../type-names.ts';
import { numberType, typedLoss, writesAsInt32 } from '../typed-values.ts';

/**
 * Two stages evaluated by the sandbox itself, with each value's type kept as mongod keeps it: `$group` by fields or
 * constants with simple accumulators (the watcher's start, `countDocuments`; always, as it also spares mingo's
 * per-document cost) and `$project` of field paths (doctor's sample; when a typed number is involved). mingo would
 * see int64 and whole doubles without their type; other shapes of these stages still go to it (and are refused
 * when a typed number is involved).
 */

/** The parts of a field path expression (`'$a.b'`, `'$$ROOT.a'`, `'$$ROOT'` → []), or undefined. */
function fieldPath(expr: unknown): string[] | undefined {
  if (typeof expr !== 'string' || !expr.startsWith('$')) return undefined;
  const root = /^\$\$(?:ROOT|CURRENT)(?:\.(.+))?$/.exec(expr);
  if (root) return root[1] ? root[1].split('.') : [];
  if (expr.startsWith('$$') || expr.length < 2) return undefined;
  return expr.slice(1).split('.');
}

/** `$a.b` as mongod evaluates it: through arrays element by element (missing elements skipped). */
function pathValue(value: unknown, parts: string[], i = 0): unknown {
  if (i === parts.length) return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const element of value) {
      if (!Array.isArray(element) && !isPlainDocument(element)) continue;
      const found = pathValue(element, parts, i);
      if (found !== undefined) out.push(found);
    }
    return out;
  }
  return isPlainDocument(value) ? pathValue(value[parts[i]], parts, i + 1) : undefined;
}

/** An inclusion `$project` of fields and field paths, in mongod's order (kept fields as stored, then computed). */
export function typedProject(spec: unknown): ((doc: Document) => Document) | undefined {
  if (!isPlainDocument(spec)) return undefined;
  const kept = new Set<string>();
  const computed: [string, string[]][] = [];
  let idShown = true;
  for (const [key, value] of Object.entries(spec)) {
    if (key.startsWith('$') || key.includes('.')) return undefined;
    if (value === 1 || value === true) kept.add(key);
    else if ((value === 0 || value === false) && key === '_id') idShown = false;
    else {
      const parts = fieldPath(value);
      if (!parts) return undefined;
      computed.push([key, parts]);
    }
  }
  if (computed.length === 0) return undefined;
  if (idShown && !computed.some(([key]) => key === '_id')) kept.add('_id');
  return (doc) => {
    const out: Document = {};
    if (kept.has('_id') && doc._id !== undefined) out._id = doc._id;
    for (const key of Object.keys(doc)) if (kept.has(key) && key !== '_id') out[key] = doc[key];
    for (const [key, parts] of computed) {
      const value = pathValue(doc, parts);
      if (value !== undefined) out[key] = value;
    }
    return out;
  };
}

type NumberKind = 'int' | 'long' | 'double';

/** A running `$sum` with mongod's result type: int32 widening to int64, then to a double; any double, a double. */
class TypedSum {
  private kind: NumberKind = 'int';
  private exact = 0n;
  private float = 0;

  add(value: unknown): void {
    const type = numberType(value);
    if (type === undefined) return;
    if (type === 'decimal') throw typedLoss('a $sum of Decimal128 values');
    const x = typeof value === 'number' ? value : Number((value as { valueOf(): unknown }).valueOf());
    this.float += type === 'long' ? Number(String(value)) : x;
    if (type === 'double') this.kind = 'double';
    if (this.kind === 'double') return;
    this.exact += type === 'long' ? BigInt(String(value)) : BigInt(x);
    if (type === 'long') this.kind = 'long';
  }

  value(): unknown {
    if (this.kind === 'int' && this.exact >= -(2n ** 31n) && this.exact < 2n ** 31n)
      return Number(this.exact);
    if (this.kind !== 'double' && this.exact >= -(2n ** 63n) && this.exact < 2n ** 63n)
      return Long.fromBigInt(this.exact);
    return writesAsInt32(this.float) ? new Double(this.float) : this.float;
  }
}

type Accumulator = { add(doc: Document): void; result(): unknown };
type AccumulatorFactory = () => Accumulator;

function accumulatorOf(spec: unknown): AccumulatorFactory | undefined {
  if (!isPlainDocument(spec) || Object.keys(spec).length !== 1) return undefined;
  const [op, arg] = Object.entries(spec)[0];
  if (op === '$count' && isPlainDocument(arg) && Object.keys(arg).length === 0)
    return accumulatorOf({ $sum: 1 });
  if (op === '$sum' && numberType(arg) !== undefined && numberType(arg) !== 'decimal')
    return () => {
      const sum = new TypedSum();
      return { add: () => sum.add(arg), result: () => sum.value() };
    };
  const parts = fieldPath(arg);
  if (!parts) return undefined;
  const read = (doc: Document) => pathValue(doc, parts);
  switch (op) {
    case '$sum':
      return () => {
        const sum = new TypedSum();
        return { add: (doc) => sum.add(read(doc)), result: () => sum.value() };
      };
    case '$first':
    case '$last':
      return () => {
        let seen = false;
        let kept: unknown = null;
        return {
          add: (doc) => {
            if (op === '$first' && seen) return;
            seen = true;
            kept = read(doc) ?? null;
          },
          result: () => kept,
        };
      };
    case '$min':
    case '$max':
      return () => {
        let best: unknown;
        return {
          add: (doc) => {
            const value = read(doc);
            if (value === undefined || value === null) return;
            const c = best === undefined ? 0 : compareBson(value, best);
            if (best === undefined || (op === '$min' ? c < 0 : c > 0)) best = value;
          },
          result: () => best ?? null,
        };
      };
    case '$push':
    case '$addToSet':
      return () => {
        const values: unknown[] = [];
        const keys = new Set<string>();
        return {
          add: (doc) => {
            const value = read(doc);
            if (value === undefined) return;
            if (op === '$addToSet') {
              const key = indexKey(value);
              if (keys.has(key)) return;
              keys.add(key);
            }
            values.push(value);
          },
          result: () => values,
        };
      };
  }
  return undefined;
}

/**
 * A group key as mongod computes it: a field path (missing → null), a constant, or a document of field paths and
 * `{$type: <field path>}` (missing fields left out). Undefined for any other expression.
 */
function groupKeyOf(id: unknown): ((doc: Document) => unknown) | undefined {
  const path = fieldPath(id);
  if (path) return (doc) => pathValue(doc, path) ?? null;
  if (Array.isArray(id) || (typeof id === 'string' && id.startsWith('$'))) return undefined;
  if (!isPlainDocument(id)) return () => id;
  const parts: [string, (doc: Document) => unknown][] = [];
  for (const [key, expr] of Object.entries(id)) {
    const direct = fieldPath(expr);
    const typed = isPlainDocument(expr) && Object.keys(expr).length === 1 ? fieldPath(expr.$type) : undefined;
    if (direct) parts.push([key, (doc) => pathValue(doc, direct)]);
    else if (typed) parts.push([key, (doc) => aggregationTypeName(pathValue(doc, typed))]);
    else return undefined;
  }
  return (doc) => {
    const out: Document = {};
    for (const [key, read] of parts) {
      const value = read(doc);
      if (value !== undefined) out[key] = value;
    }
    return out;
  };
}

/** `$group` by a field path, a constant or a document of those with `$sum`/`$count`/`$first`/`$last`/`$min`/`$max`/`$push`/`$addToSet`. */
export function typedGroup(spec: unknown): ((docs: Document[]) => Document[]) | undefined {
  if (!isPlainDocument(spec) || !('_id' in spec)) return undefined;
  const keyOf = groupKeyOf(spec._id);
  if (!keyOf) return undefined;
  const fields: [string, AccumulatorFactory][] = [];
  for (const [key, value] of Object.entries(spec)) {
    if (key === '_id') continue;
    const factory = accumulatorOf(value);
    if (!factory || key.includes('.') || key.startsWith('$')) return undefined;
    fields.push([key, factory]);
  }
  return (docs) => {
    const groups = new Map<string, { id: unknown; accumulators: Accumulator[] }>();
    for (const doc of docs) {
      const value = keyOf(doc);
      const key = indexKey(value);
      let group = groups.get(key);
      if (!group) {
        group = { id: value, accumulators: fields.map(([, factory]) => factory()) };
        groups.set(key, group);
      }
      for (const accumulator of group.accumulators) accumulator.add(doc);
    }
    return Array.from(groups.values(), (group) => {
      const out: Document = { _id: group.id };
      fields.forEach(([key], i) => {
        out[key] = group.accumulators[i].result();
      });
      return out;
    });
  };
}
