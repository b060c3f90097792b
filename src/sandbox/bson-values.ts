import { type Document, EJSON } from 'bson';
import { valuesAtPath } from '../mongo/paths.ts';
import { compareNumbers, numericKey } from './numbers.ts';

/** MongoDB's cross-type sort order (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/). */
enum TypeRank {
  MinKey = 1,
  Null = 2,
  Number = 3,
  String = 4,
  Object = 5,
  Array = 6,
  Binary = 7,
  ObjectId = 8,
  Boolean = 9,
  Date = 10,
  Timestamp = 11,
  RegExp = 12,
  MaxKey = 13,
}

type BsonTagged = { _bsontype?: string };

function bsonType(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null ? (value as BsonTagged)._bsontype : undefined;
}

export function typeRank(value: unknown): TypeRank {
  if (value === null || value === undefined) return TypeRank.Null;
  switch (typeof value) {
    case 'number':
    case 'bigint':
      return TypeRank.Number;
    case 'string':
      return TypeRank.String;
    case 'boolean':
      return TypeRank.Boolean;
  }
  if (Array.isArray(value)) return TypeRank.Array;
  if (value instanceof Date) return TypeRank.Date;
  if (value instanceof RegExp) return TypeRank.RegExp;
  switch (bsonType(value)) {
    case 'Long':
    case 'Double':
    case 'Int32':
    case 'Decimal128':
      return TypeRank.Number;
    case 'BSONSymbol':
      return TypeRank.String;
    case 'ObjectId':
      return TypeRank.ObjectId;
    case 'Binary':
      return TypeRank.Binary;
    case 'Timestamp':
      return TypeRank.Timestamp;
    case 'BSONRegExp':
      return TypeRank.RegExp;
    case 'MinKey':
      return TypeRank.MinKey;
    case 'MaxKey':
      return TypeRank.MaxKey;
  }
  return TypeRank.Object;
}

function compareScalars(a: number | string, b: number | string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** How two strings compare: binary (the simple collation) unless a collation's comparator is given. */
export type StringCompare = (a: string, b: string) => number;

/**
 * Compares two BSON values the way MongoDB sorts them: by type rank first, then by value (numbers exactly
 * across int32/int64/double/decimal128; strings, also inside documents and arrays, by the collation).
 */
export function compareBson(a: unknown, b: unknown, strings?: StringCompare): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case TypeRank.Null:
    case TypeRank.MinKey:
    case TypeRank.MaxKey:
      return 0;
    case TypeRank.Number:
      return compareNumbers(a, b);
    case TypeRank.String:
      return strings ? strings(String(a), String(b)) : compareScalars(String(a), String(b));
    case TypeRank.ObjectId:
      return compareBytes((a as { id: Uint8Array }).id, (b as { id: Uint8Array }).id);
    case TypeRank.Boolean:
      return Number(a) - Number(b);
    case TypeRank.Date:
      return (a as Date).getTime() - (b as Date).getTime();
    case TypeRank.Timestamp: {
      // Seconds, then increment, both unsigned (as a double the increment is lost past 2^53).
      const x = a as { high: number; low: number };
      const y = b as { high: number; low: number };
      return compareScalars(x.high >>> 0, y.high >>> 0) || compareScalars(x.low >>> 0, y.low >>> 0);
    }
    case TypeRank.Binary:
      return compareBytes((a as { buffer: Uint8Array }).buffer, (b as { buffer: Uint8Array }).buffer);
    case TypeRank.Array: {
      const x = a as unknown[];
      const y = b as unknown[];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compareBson(x[i], y[i], strings);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case TypeRank.RegExp:
      return compareScalars(String(a), String(b));
    default: {
      const ka = Object.keys(a as object);
      const kb = Object.keys(b as object);
      for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
        const c =
          typeRank((a as Record<string, unknown>)[ka[i]]) - typeRank((b as Record<string, unknown>)[kb[i]]) ||
          compareScalars(ka[i], kb[i]) ||
          compareBson((a as Record<string, unknown>)[ka[i]], (b as Record<string, unknown>)[kb[i]], strings);
        if (c !== 0) return c;
      }
      return ka.length - kb.length;
    }
  }
}

/**
 * A string that is equal for two values exactly when MongoDB's equality match treats them as equal:
 * numbers compare by value across int/long/double, a string never equals an ObjectId.
 */
export function indexKey(value: unknown): string {
  if (value === null || value === undefined) return 'z';
  switch (typeof value) {
    case 'string':
      return `s${value}`;
    case 'number':
    case 'bigint':
      return numericKey(value);
    case 'boolean':
      return value ? 'b1' : 'b0';
  }
  if (value instanceof Date) return `d${value.getTime()}`;
  switch (bsonType(value)) {
    case 'ObjectId':
      return `o${(value as { toHexString(): string }).toHexString()}`;
    case 'Long':
    case 'Int32':
    case 'Double':
    case 'Decimal128':
      return numericKey(value);
    case 'BSONSymbol':
      return `s${value.toString()}`;
  }
  return `x${typeRank(value)}:${EJSON.stringify(value as object, { relaxed: false })}`;
}

export { valuesAtPath };

/** The value a sort on `path` uses: the smallest element ascending, the largest descending. */
export function sortKeyAt(doc: unknown, path: string, direction: 1 | -1, strings?: StringCompare): unknown {
  const values = valuesAtPath(doc, path);
  if (values.length === 0) return null;
  let best = values[0];
  for (let i = 1; i < values.length; i++) {
    const c = compareBson(values[i], best, strings);
    if ((direction === 1 && c < 0) || (direction === -1 && c > 0)) best = values[i];
  }
  return best;
}

/** Values a filter on `path` looks at: each value reached, and for an array both the array and its elements. */
export function candidates(doc: unknown, parts: string[], i: number, out: unknown[]): void {
  if (i === parts.length) {
    out.push(doc);
    if (Array.isArray(doc)) out.push(...doc);
    return;
  }
  if (doc === null || typeof doc !== 'object') return;
  if (Array.isArray(doc)) {
    const index = Number(parts[i]);
    if (Number.isInteger(index) && String(index) === parts[i]) candidates(doc[index], parts, i + 1, out);
    for (const element of doc)
      if (element !== null && typeof element === 'object' && !Array.isArray(element))
        candidates(element, parts, i, out);
    return;
  }
  const next = (doc as Document)[parts[i]];
  if (next !== undefined) candidates(next, parts, i + 1, out);
}

/** A plain embedded document (not an array, a date or a BSON value object). */
export function isPlainDocument(value: unknown): value is Document {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !(value instanceof Date) &&
    !(value as { _bsontype?: string })._bsontype
  );
}
