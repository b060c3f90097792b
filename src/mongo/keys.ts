import { Binary, Long, ObjectId } from 'bson';

/**
 * How a child's reference is matched to a parent key. `exact` follows MongoDB equality (type-sensitive,
 * numbers equal across int/long/double); `objectid-or-hex` matches an ObjectId and its 24-hex string both ways.
 */
export type KeyMatch = 'exact' | 'objectid-or-hex';

const HEX24 = /^[0-9a-fA-F]{24}$/;

function bsonTypeOf(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null
    ? (value as { _bsontype?: string })._bsontype
    : undefined;
}

/**
 * The canonical form of a reference or parent key, equal for two values exactly when the relation treats
 * them as the same parent; undefined when the value cannot be a key (null, missing, empty, wrong type).
 */
export function canonicalKey(value: unknown, keyMatch: KeyMatch): string | undefined {
  if (keyMatch === 'objectid-or-hex') {
    if (typeof value === 'string') return HEX24.test(value) ? value.toLowerCase() : undefined;
    if (bsonTypeOf(value) === 'ObjectId') return (value as ObjectId).toHexString();
    return undefined;
  }
  switch (typeof value) {
    case 'string':
      return value.length > 0 ? `s${value}` : undefined;
    case 'number':
      return Number.isFinite(value) ? `n${Object.is(value, -0) ? 0 : value}` : undefined;
    case 'bigint':
      return `n${Number.isSafeInteger(Number(value)) ? Number(value) : value}`;
    case 'boolean':
      return undefined;
  }
  switch (bsonTypeOf(value)) {
    case 'ObjectId':
      return `o${(value as ObjectId).toHexString()}`;
    case 'Long':
    case 'Int32':
    case 'Double': {
      const n = Number((value as { valueOf(): unknown }).valueOf());
      return Number.isSafeInteger(n) || !Number.isInteger(n) ? `n${n}` : `n${String(value)}`;
    }
    case 'Decimal128': {
      // Only whole numbers in the safe range have a form the tool can match exactly; others fail closed.
      const n = Number(String(value));
      return Number.isSafeInteger(n) ? `n${n}` : undefined;
    }
    case 'Binary':
      return `b${Buffer.from((value as { buffer: Uint8Array }).buffer).toString('hex')}`;
  }
  return undefined;
}

/** The values a parent probe's `$in` needs for one reference: both forms under `objectid-or-hex`. */
export function probeValues(original: unknown, key: string, keyMatch: KeyMatch): unknown[] {
  if (keyMatch === 'exact') return [original];
  const values: unknown[] = [ObjectId.createFromHexString(key), key];
  if (typeof original === 'string' && original !== key) values.push(original);
  return values;
}

/** A short, human-readable form of a key value for tables, logs and exception entries. */
export function displayValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  if (value === null) return 'null';
  if (bsonTypeOf(value) === 'ObjectId') return `ObjectId(${(value as ObjectId).toHexString()})`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

/**
 * The values a query needs to find every child whose reference has this key: the inverse of `canonicalKey`
 * (numbers match across int/long/double on the server; a hex key matches its ObjectId and string forms).
 */
export function valuesForKey(key: string, keyMatch: KeyMatch): unknown[] {
  if (keyMatch === 'objectid-or-hex') return [ObjectId.createFromHexString(key), key, key.toUpperCase()];
  const body = key.slice(1);
  switch (key[0]) {
    case 's':
      return [body];
    case 'o':
      return [ObjectId.createFromHexString(body)];
    case 'n': {
      const n = Number(body);
      return [Number.isSafeInteger(n) || !Number.isInteger(n) ? n : Long.fromString(body)];
    }
    case 'b': {
      const bytes = Buffer.from(body, 'hex');
      return [new Binary(bytes, 0), new Binary(bytes, 4)];
    }
  }
  return [];
}
