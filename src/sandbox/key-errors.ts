import { type Document, EJSON } from 'bson';
import { valuesAtPath } from './bson-values.ts';
import { CommandError, ErrorCodes } from './command-error.ts';
import type { IndexSpec } from './storage.ts';

/** The errors a document's keys earn on mongod: a duplicate key (E11000), an `_id` mongod will not store. */

/** A value as mongod prints it in an error message: `{ k: "a" }`, `ObjectId('…')`, `new Date(…)`. */
export function mongodText(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value !== 'object') return String(value);
  if (value instanceof Date) return `new Date(${value.getTime()})`;
  if (Array.isArray(value)) return value.length ? `[ ${value.map(mongodText).join(', ')} ]` : '[]';
  switch ((value as { _bsontype?: string })._bsontype) {
    case 'ObjectId':
      return `ObjectId('${(value as { toHexString(): string }).toHexString()}')`;
    case 'Long':
    case 'Int32':
    case 'Double':
      return String(value);
    case 'Decimal128':
      return `NumberDecimal("${String(value)}")`;
    case undefined: {
      const entries = Object.entries(value as Document);
      return entries.length ? `{ ${entries.map(([k, v]) => `${k}: ${mongodText(v)}`).join(', ')} }` : '{}';
    }
  }
  return EJSON.stringify(value as Document, { relaxed: false });
}

/** mongod's duplicate key error: `E11000 duplicate key error collection: db.c index: k_1 dup key: { k: "a" }`. */
export function duplicateKey(ns: string, spec: IndexSpec, doc: Document): CommandError {
  const keyValue: Document = {};
  for (const field of Object.keys(spec.key)) keyValue[field] = valuesAtPath(doc, field)[0] ?? null;
  return new CommandError(
    ErrorCodes.DuplicateKey,
    `E11000 duplicate key error collection: ${ns} index: ${spec.name} dup key: ${mongodText(keyValue)}`,
    {
      keyPattern: spec.key,
      keyValue,
    },
  );
}

/** mongod's `validIdField`: no array, regex or undefined `_id`, and no `$`-prefixed field inside one. */
export function checkIdField(id: unknown): void {
  const type = Array.isArray(id)
    ? 'array'
    : id instanceof RegExp || (id as { _bsontype?: string })?._bsontype === 'BSONRegExp'
      ? 'regex'
      : undefined;
  if (type) throw new CommandError(ErrorCodes.InvalidIdField, `The '_id' value cannot be of type ${type}`);
  if (id && typeof id === 'object' && !(id as { _bsontype?: string })._bsontype && !(id instanceof Date)) {
    const dollar = Object.keys(id).find((key) => key.startsWith('$'));
    if (dollar)
      throw new CommandError(
        ErrorCodes.DollarPrefixedFieldName,
        `_id fields may not contain '$'-prefixed fields: ${dollar} is not valid for storage.`,
      );
  }
}
