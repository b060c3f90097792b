import { candidates } from './bson-values.ts';
import { CommandError, ErrorCodes } from './command-error.ts';
import { wholeNumberTypesKnown } from './through-mingo.ts';
import { writesAsInt32 } from './typed-values.ts';

/** `$type` as mongod answers it: type names and numbers, the aggregation operator, and mingo's query operator. */

/** `$type` names and numbers, as mongod takes them. */
const TYPE_NAMES: Record<string, number> = {
  double: 1,
  string: 2,
  object: 3,
  array: 4,
  binData: 5,
  undefined: 6,
  objectId: 7,
  bool: 8,
  date: 9,
  null: 10,
  regex: 11,
  dbPointer: 12,
  javascript: 13,
  symbol: 14,
  javascriptWithScope: 15,
  int: 16,
  timestamp: 17,
  long: 18,
  decimal: 19,
  minKey: -1,
  maxKey: 127,
};
const NUMERIC_TYPES = [1, 16, 18, 19];
const TYPE_NAME_OF = new Map(Object.entries(TYPE_NAMES).map(([name, n]) => [n, name]));

/**
 * The aggregation `$type` of a value, named as mongod names it (`objectId`, `binData`, `missing`...). A whole
 * number mingo sees in a promoted copy (see `typed-values.ts`) may have been an int64 or a double: refused.
 */
export function aggregationTypeName(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'number' && Number.isInteger(value) && !wholeNumberTypesKnown())
    throw new CommandError(
      ErrorCodes.NotImplemented,
      'aggregation $type of a whole number is not supported by the sandbox where int64 or whole-number double values are involved (its evaluator sees them as plain numbers); use $isNumber',
    );
  return TYPE_NAME_OF.get(typeNumberOf(value)) ?? 'object';
}

export function typeNumbersOf(spec: unknown): number[] {
  const list = Array.isArray(spec) ? spec : [spec];
  return list.flatMap((entry) => {
    if (entry === 'number') return NUMERIC_TYPES;
    if (typeof entry === 'string') {
      const n = TYPE_NAMES[entry];
      if (n === undefined) throw new CommandError(ErrorCodes.BadValue, `Unknown type name alias: ${entry}`);
      return [n];
    }
    const n = Number(entry?.valueOf?.() ?? entry);
    if (!Object.values(TYPE_NAMES).includes(n))
      throw new CommandError(ErrorCodes.BadValue, `Invalid numerical type code: ${String(entry)}`);
    return [n];
  });
}

/**
 * The BSON type number of a stored value: a JavaScript number is an int32 when BSON writes it as one, else a
 * double (int64 and whole doubles are stored typed, `typed-values.ts`).
 */
export function typeNumberOf(value: unknown, asked?: number[]): number {
  if (value === null) return 10;
  if (value === undefined) return 6;
  if (Array.isArray(value)) return 4;
  if (value instanceof Date) return 9;
  if (value instanceof RegExp) return 11;
  switch (typeof value) {
    case 'string':
      return 2;
    case 'boolean':
      return 8;
    case 'bigint':
      return 18;
    case 'number':
      if (Number.isInteger(value) && !wholeNumberTypesKnown()) return ambiguousWholeNumber(asked);
      return writesAsInt32(value) ? 16 : 1;
  }
  const tag = (value as { _bsontype?: string })._bsontype;
  const byTag: Record<string, number> = {
    ObjectId: 7,
    Long: 18,
    Int32: 16,
    Double: 1,
    Decimal128: 19,
    Binary: 5,
    Timestamp: 17,
    BSONRegExp: 11,
    Code: 13,
    BSONSymbol: 14,
    MinKey: -1,
    MaxKey: 127,
    DBRef: 3,
  };
  return tag ? (byTag[tag] ?? 3) : 3;
}

/**
 * A whole number mingo sees in a promoted copy (`typed-values.ts`) may have been an int32, an int64 or a double:
 * a `$type` asking which is refused; asking for every number type (`'number'`) is answered.
 */
function ambiguousWholeNumber(asked: number[] | undefined): number {
  if (asked && NUMERIC_TYPES.every((n) => asked.includes(n))) return 16;
  throw new CommandError(
    ErrorCodes.NotImplemented,
    "$type of a whole number is not supported by the sandbox where its evaluator sees int64 or whole-number double values as plain numbers; use $type: 'number'",
  );
}

/**
 * mingo's query `$type` (in the clauses mingo evaluates: `$elemMatch`, later `$match` stages) replaced by mongod's:
 * mingo calls every whole number both an int and a long.
 */
export function mingoTypeQuery(selector: string, value: unknown): (doc: unknown) => boolean {
  const wanted = typeNumbersOf(value);
  const parts = selector.split('.');
  return (doc) => {
    const values: unknown[] = [];
    candidates(doc, parts, 0, values);
    return values.some((v) => v !== undefined && wanted.includes(typeNumberOf(v, wanted)));
  };
}
