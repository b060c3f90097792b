import { type Document, ObjectId } from 'bson';
import type { Collection } from 'mongodb';
import type { Relation } from '../config/load.ts';
import { UsageError } from '../errors.ts';
import { displayValue, referenceAt } from '../mongo/keys.ts';
import type { ExceptionKind } from './exceptions.ts';

/** The forms a typed value may be stored in: as typed, and its ObjectId, string and number twins. */
export function candidateForms(value: unknown): unknown[] {
  const forms: unknown[] = [value];
  if (value instanceof ObjectId) forms.push(value.toHexString(), value.toHexString().toUpperCase());
  else if (typeof value === 'string' && /^[0-9a-fA-F]{24}$/.test(value)) forms.push(new ObjectId(value));
  if (typeof value === 'number') forms.push(String(value));
  else if (typeof value === 'string' && /^-?\d+$/.test(value) && Number.isSafeInteger(Number(value)))
    forms.push(Number(value));
  return forms;
}

/** How a value is stored, in words: "an ObjectId", "the string "42"", "a number". */
export function describeForm(value: unknown): string {
  if (value instanceof ObjectId) return 'an ObjectId';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'number') return 'a number';
  return `a ${(value as { _bsontype?: string })?._bsontype ?? typeof value}`;
}

/**
 * The value as a child of the relation holds it (its `_id`, or its reference), looked up on the primary in
 * every form the typed text may stand for; refused, with the forms tried, when no child has any of them. The
 * CLI's `exceptions add` and the console's allow-list prompt both bind through it.
 */
export async function existingForm(
  children: Collection,
  relation: Relation,
  typed: { kind: ExceptionKind; value: unknown },
  maxTimeMS: number,
): Promise<unknown> {
  const field = typed.kind === 'document' ? '_id' : relation.child.field;
  const forms = candidateForms(typed.value);
  const found = await children.findOne({ [field]: { $in: forms } } as Document, {
    projection: { [field]: 1 },
    collation: { locale: 'simple' },
    maxTimeMS,
  });
  if (!found)
    throw new UsageError(
      `no child of ${relation.name} has ${typed.kind === 'document' ? '_id' : `${field} =`} ${forms.map(displayValue).join(' or ')}; nothing was added (an exception names what exists)`,
    );
  return typed.kind === 'document' ? found._id : referenceAt(found, field);
}
