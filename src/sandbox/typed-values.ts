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

/** Binary equality, as mongod tells an update's no-op or a diff's unchanged field: the same BSON bytes. */
export function sameBsonValue(a: unknown, b: unknown): boolean {
  if (a === b) return Object.is(a, -0) === Object.is(b, -0);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return Buffer.from(BSON.serialize({ v: a })).equals(BSON.serialize({ v: b }));
}
