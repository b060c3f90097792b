import { Binary, Long, ObjectId } from 'bson';
import { escapeForTerminal } from '../terminal-text.ts';

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
    case 'Binary': {
      // mongod compares length, then subtype, then bytes: BinData(3, X) and BinData(4, X) are different keys.
      const binary = value as { buffer: Uint8Array; sub_type: number };
      return `b${binary.sub_type}:${Buffer.from(binary.buffer).toString('hex')}`;
    }
  }
  return undefined;
}

/**
 * A hex string with both lower- and upper-case letters: mongod compares strings byte for byte, so a parent
 * stored this way cannot be found by the lower- and upper-case forms a probe sends.
 */
export function isMixedCaseHex(value: unknown): boolean {
  return typeof value === 'string' && HEX24.test(value) && /[a-f]/.test(value) && /[A-F]/.test(value);
}

/** The server-side test for a mixed-case 24-hex string (`doctor` and the scan's parent check). */
export const MIXED_CASE_HEX_REGEX = '^(?=[0-9a-fA-F]*[a-f])(?=[0-9a-fA-F]*[A-F])[0-9a-fA-F]{24}$';

/** The values a parent probe's `$in` needs for one reference: both forms under `objectid-or-hex`. */
export function probeValues(original: unknown, key: string, keyMatch: KeyMatch): unknown[] {
  if (keyMatch === 'exact') return [original];
  // String equality is binary on the server: a parent stored as upper-case hex is found only by that form.
  const values: unknown[] = [ObjectId.createFromHexString(key), key, key.toUpperCase()];
  if (typeof original === 'string' && original !== key && original !== key.toUpperCase())
    values.push(original);
  return values;
}

/** A short, human-readable form of a key value for tables, logs and exception entries. */
export function displayValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  if (value === null) return 'null';
  if (bsonTypeOf(value) === 'ObjectId') return `ObjectId(${(value as ObjectId).toHexString()})`;
  // JSON escapes C0 controls but not C1 or bidirectional overrides: whatever a terminal acts on is escaped.
  if (typeof value === 'string') return escapeForTerminal(JSON.stringify(value));
  if (value instanceof Date) return value.toISOString();
  return escapeForTerminal(String(value));
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
      const [subtype, hex] = body.split(':');
      return [new Binary(Buffer.from(hex, 'hex'), Number(subtype))];
    }
  }
  return [];
}

function isEmbeddedDocument(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Date) &&
    bsonTypeOf(value) === undefined
  );
}

/**
 * A child's reference at a dotted path, read as the scan reads raw BSON: through embedded documents only.
 * A path through an array, or an array at its end, yields the array itself (never a key), so a one-element
 * array is invalid for the scan, the delete re-check, `scan --list`, restore and the watcher alike.
 */
export function referenceAt(doc: unknown, path: string): unknown {
  let value: unknown = doc;
  for (const part of path.split('.')) {
    if (Array.isArray(value)) return value;
    if (!isEmbeddedDocument(value)) return undefined;
    value = value[part];
  }
  return value;
}

/** The canonical key of a child's reference at `path`, or undefined when it has none the relation accepts. */
export function referenceKeyOf(doc: unknown, path: string, keyMatch: KeyMatch): string | undefined {
  return canonicalKey(referenceAt(doc, path), keyMatch);
}
