import { type Document, Double, Long } from 'bson';
import { isPlainDocument } from '../bson-values.ts';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { mongodText } from '../key-errors.ts';
import { numberType, promoted, sameBsonValue, typedLoss, writesAsInt32 } from '../typed-values.ts';

/**
 * Update operators with each number's BSON type kept, as mongod applies them (issue 23 item 4): `$inc` and
 * `$mul` do mongod's typed arithmetic (int32 widening to int64 on overflow, int64 overflow refused, any double
 * making a double), and the operators left to mingo run on numbers with the typed ones put back where mingo did
 * not write — or refused where it did, since it would write them back as int32.
 */

const SIMPLE_PATH = /^[^.$\d][^.]*(\.[^.$\d][^.]*)*$/;

/** A plain field path an update may write in place: no array position, no `$`, not `_id` or inside it. */
export function isPlainFieldPath(path: string): boolean {
  return SIMPLE_PATH.test(path) && path !== '_id' && !path.startsWith('_id.');
}
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function asBigInt(value: unknown): bigint {
  return typeof value === 'number' ? BigInt(value) : BigInt(String(value));
}

function asNumber(value: unknown): number {
  return typeof value === 'number' ? value : Number((value as { valueOf(): unknown }).valueOf());
}

/** A double result as stored: a `Double` when BSON would otherwise write the number as an int32. */
function storedDouble(x: number): unknown {
  return writesAsInt32(x) ? new Double(x) : x;
}

type Arithmetic = '$inc' | '$mul';

/** mongod's typed `$inc`/`$mul` of two int32, int64 or double values; undefined on an int64 overflow. */
function combine(op: Arithmetic, a: unknown, b: unknown): unknown {
  const ta = numberType(a);
  const tb = numberType(b);
  if (ta === 'double' || tb === 'double') {
    const x = asNumber(a);
    const y = asNumber(b);
    return storedDouble(op === '$inc' ? x + y : x * y);
  }
  const x = asBigInt(a);
  const y = asBigInt(b);
  const r = op === '$inc' ? x + y : x * y;
  if (ta === 'int' && tb === 'int' && r >= -(2n ** 31n) && r < 2n ** 31n) return Number(r);
  if (r < INT64_MIN || r > INT64_MAX) return undefined;
  return Long.fromBigInt(r);
}

/** A number's exact value as text (an int64 beyond 2^53 too; -0 apart from 0). */
function asNumberText(value: unknown): string {
  if (numberType(value) === 'long') return String(value);
  const x = asNumber(value);
  return Object.is(x, -0) ? '-0' : String(x);
}

function zeroLike(value: unknown): unknown {
  switch (numberType(value)) {
    case 'long':
      return Long.fromNumber(0);
    case 'double':
      return new Double(0);
  }
  return 0;
}

function numberTypeName(value: unknown): string {
  return numberType(value) === 'long' ? 'NumberLong' : numberType(value) === 'int' ? 'NumberInt' : 'Number';
}

/**
 * `$inc` and `$mul` alone, on plain field paths whose operands and current values are int32, int64 or double
 * (decimal and anything else go to mingo's updater, as before), applied with their types. Undefined when the
 * update is not of that shape.
 */
export function typedArithmetic(
  doc: Document,
  operators: Document,
): { doc: Document; changed: boolean } | undefined {
  const ops = Object.keys(operators);
  if (ops.length === 0 || ops.some((op) => op !== '$inc' && op !== '$mul')) return undefined;
  const writes: [Arithmetic, string[], unknown][] = [];
  const paths: string[] = [];
  for (const op of ops as Arithmetic[]) {
    const spec = operators[op];
    if (!isPlainDocument(spec)) return undefined;
    for (const [path, operand] of Object.entries(spec)) {
      const t = numberType(operand);
      if (t === undefined || t === 'decimal') return undefined;
      if (!isPlainFieldPath(path)) return undefined;
      writes.push([op, path.split('.'), operand]);
      paths.push(path);
    }
  }
  for (const path of paths)
    for (const other of paths) if (other === path ? false : other.startsWith(`${path}.`)) return undefined;
  if (new Set(paths).size !== paths.length) return undefined;
  const out: Document = { ...doc };
  let changed = false;
  for (const [op, parts, operand] of writes) {
    let parent = out;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = parent[parts[i]];
      if (next !== undefined && !isPlainDocument(next)) return undefined;
      parent[parts[i]] = next === undefined ? {} : { ...next };
      parent = parent[parts[i]] as Document;
    }
    const last = parts[parts.length - 1];
    const before = parent[last];
    if (before !== undefined) {
      const t = numberType(before);
      if (t === undefined || t === 'decimal') return undefined;
    }
    const after =
      before === undefined ? (op === '$inc' ? operand : zeroLike(operand)) : combine(op, before, operand);
    if (after === undefined)
      throw new CommandError(
        ErrorCodes.BadValue,
        `Failed to apply ${op} operations to current value ((${numberTypeName(before)})${asNumberText(before)}) for document {_id: ${mongodText(doc._id)}}`,
      );
    if (before !== undefined && sameBsonValue(before, after)) continue;
    parent[last] = after;
    changed = true;
  }
  return { doc: out, changed };
}

/** Replaces, in place, every number `promoted` would change by its plain value; returns where each was. */
function takeTypedNumbers(value: unknown, path: string, out: [string, unknown][]): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const plain = promoted(value);
  if (plain === value) return value;
  if (Array.isArray(value) || isPlainDocument(value)) {
    const container = value as Document;
    for (const key of Object.keys(container))
      container[key] = takeTypedNumbers(container[key], path ? `${path}.${key}` : key, out);
    return value;
  }
  out.push([path, value]);
  return plain;
}

function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);
}

/**
 * Runs mingo's updater (`apply`, which returns the paths it changed) on `copy` (a private copy of the stored
 * document) with its typed numbers taken out, then puts each back where mingo wrote nothing. An update whose
 * own values are typed, or that rewrites a typed number, is refused: mingo would store it as an int32.
 */
export function withTypesKept(
  copy: Document,
  operators: Document,
  apply: (doc: Document) => string[],
): string[] {
  const named = `the update ${Object.keys(operators).join(', ')}`;
  if (promoted(operators) !== operators) throw typedLoss(named);
  const taken: [string, unknown][] = [];
  takeTypedNumbers(copy, '', taken);
  const changed = apply(copy);
  for (const [path, value] of taken) {
    if (changed.some((written) => overlaps(written, path))) throw typedLoss(named);
    const parts = path.split('.');
    let at: Document = copy;
    for (let i = 0; i < parts.length - 1; i++) at = at[parts[i]] as Document;
    at[parts[parts.length - 1]] = value;
  }
  return changed;
}
