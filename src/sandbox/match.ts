// Over 300 lines: one filter compiler, MongoDB's query operators in one switch.
import type { Document } from 'bson';
import { Query } from 'mingo';
import { candidates, compareBson, type StringCompare, typeRank } from './bson-values.ts';
import { CommandError, ErrorCodes } from './command-error.ts';
import { MINGO_OPTIONS } from './mingo-context.ts';
import { testThroughMingo } from './through-mingo.ts';
import { typeNumberOf, typeNumbersOf } from './type-names.ts';

/**
 * The sandbox's own evaluation of query filters, for the operators whose answers depend on BSON semantics
 * that mingo does not know: equality and order across numeric types, `$type`, and collations. Everything
 * else (`$regex` aside) goes to mingo clause by clause, and is refused under a collation rather than
 * answered without it.
 */
export type Matcher = (doc: Document) => boolean;

export { MINGO_OPTIONS };

/**
 * The locales mongod's collation takes (ICU ids: https://www.mongodb.com/docs/v7.0/reference/collation-locales-defaults/),
 * without their `@collation=` variants.
 */
const MONGOD_LOCALES = new Set(
  (
    'af sq am ar hy as az bn be bs bs_Cyrl bg my ca chr zh zh_Hant hr cs da nl dz en en_US en_US_POSIX eo et ee fo ' +
    'fil fi fr fr_CA gl ka de de_AT el gu ha haw he hi hu is ig smn id ga it ja kl kn kk km kok ko ky lk lo lv li ' +
    'lt dsb lb mk ms ml mt mr mn ne se nb nn or om ps fa fa_AF pl pt pa ro ru sr sr_Latn si sk sl es sw sv ta te ' +
    'th bo to tr uk hsb ur ug vi wae cy yi yo zu'
  ).split(' '),
);

/**
 * A mongod locale id as `Intl` takes it (`en_US` → `en-US`): an id mongod does not know is BadValue with mongod's
 * message; one it knows that this machine's ICU cannot reproduce (variants, `en_US_POSIX`) is refused loudly.
 */
function intlLocale(locale: string): string {
  const [base, variant] = locale.split('@');
  if (!MONGOD_LOCALES.has(base))
    throw new CommandError(ErrorCodes.BadValue, `Field 'locale' is invalid in: { locale: "${locale}" }`);
  const tag = base.replace(/_/g, '-');
  if (variant !== undefined || base === 'en_US_POSIX' || Intl.Collator.supportedLocalesOf([tag]).length === 0)
    throw new CommandError(
      ErrorCodes.NotImplemented,
      `collation locale "${locale}" is not supported by the sandbox (its ICU cannot reproduce mongod's order)`,
    );
  return tag;
}

/** `collation` as a command or a collection gives it: undefined for binary (simple) string comparison. */
export function parseCollation(spec: unknown): StringCompare | undefined {
  if (spec === undefined || spec === null) return undefined;
  if (typeof spec !== 'object' || Array.isArray(spec))
    throw new CommandError(ErrorCodes.TypeMismatch, 'collation must be an object');
  const { locale, strength, caseFirst, numericOrdering, alternate, ...rest } = spec as Document;
  if (typeof locale !== 'string')
    throw new CommandError(40414, "BSON field 'collation.locale' is missing but a required field");
  for (const [name, value] of Object.entries(rest)) {
    const known = ['caseLevel', 'maxVariable', 'normalization', 'backwards', 'version'];
    if (!known.includes(name))
      throw new CommandError(40415, `BSON field 'collation.${name}' is an unknown field.`);
    if (name !== 'version' && value !== false && value !== 'punct')
      throw new CommandError(
        ErrorCodes.NotImplemented,
        `collation option ${name} is not supported by the sandbox`,
      );
  }
  if (locale === 'simple') return undefined;
  const level = strength === undefined ? 3 : Number(strength);
  if (![1, 2, 3].includes(level))
    throw new CommandError(
      ErrorCodes.NotImplemented,
      `collation strength ${strength} is not supported by the sandbox (1 to 3 are)`,
    );
  if (alternate !== undefined && alternate !== 'non-ignorable')
    throw new CommandError(
      ErrorCodes.NotImplemented,
      `collation alternate '${alternate}' is not supported by the sandbox`,
    );
  const collator = new Intl.Collator(intlLocale(locale), {
    sensitivity: level === 1 ? 'base' : level === 2 ? 'accent' : 'variant',
    caseFirst: caseFirst === 'upper' ? 'upper' : caseFirst === 'lower' ? 'lower' : 'false',
    numeric: numericOrdering === true,
    usage: 'sort',
  });
  return collator.compare;
}

function isOperatorObject(value: unknown): value is Document {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Date)
    return false;
  if ((value as { _bsontype?: string })._bsontype) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys[0].startsWith('$');
}

function isMinOrMaxKey(value: unknown): boolean {
  const tag = (value as { _bsontype?: string } | null)?._bsontype;
  return tag === 'MinKey' || tag === 'MaxKey';
}

type ValueTest = (values: unknown[], doc: Document) => boolean;

function equalsTo(operand: unknown, strings?: StringCompare): (value: unknown) => boolean {
  if (operand instanceof RegExp) return (value) => typeof value === 'string' && operand.test(value);
  const rank = typeRank(operand);
  return (value) => typeRank(value) === rank && compareBson(value, operand, strings) === 0;
}

function orderTest(op: string, operand: unknown, strings?: StringCompare): (value: unknown) => boolean {
  const accept = (c: number) =>
    op === '$gt' ? c > 0 : op === '$gte' ? c >= 0 : op === '$lt' ? c < 0 : c <= 0;
  if (isMinOrMaxKey(operand)) return (value) => accept(compareBson(value, operand, strings));
  // Comparisons only match values of the operand's type bracket (numbers with numbers, strings with strings).
  const rank = typeRank(operand);
  return (value) =>
    value !== undefined && typeRank(value) === rank && accept(compareBson(value, operand, strings));
}

export class FilterCompiler {
  constructor(
    private readonly strings?: StringCompare,
    /** The command's `let` variables, for `$expr` (`$$name`). */
    private readonly variables?: Document,
  ) {}

  compile(filter: Document): Matcher {
    const tests = Object.entries(filter).map(([key, condition]) => this.clause(key, condition));
    return (doc) => tests.every((test) => test(doc));
  }

  private viaMingo(filter: Document): Matcher {
    if (this.strings)
      throw new CommandError(
        ErrorCodes.NotImplemented,
        `the sandbox applies a collation to $eq, $ne, $gt, $gte, $lt, $lte, $in and $nin only, not to ${JSON.stringify(Object.keys(filter))}`,
      );
    try {
      const query = new Query(filter, { ...MINGO_OPTIONS, variables: this.variables });
      return (doc) => testThroughMingo(doc, (plain) => query.test(plain));
    } catch (error) {
      throw new CommandError(ErrorCodes.BadValue, (error as Error).message);
    }
  }

  private clause(key: string, condition: unknown): Matcher {
    if (key === '$and' || key === '$or' || key === '$nor') {
      if (!Array.isArray(condition) || condition.length === 0)
        throw new CommandError(ErrorCodes.BadValue, `${key} must be a nonempty array`);
      const parts = condition.map((part) => {
        if (part === null || typeof part !== 'object' || Array.isArray(part))
          throw new CommandError(ErrorCodes.BadValue, `${key} argument's entries must be objects`);
        return this.compile(part as Document);
      });
      if (key === '$and') return (doc) => parts.every((p) => p(doc));
      if (key === '$or') return (doc) => parts.some((p) => p(doc));
      return (doc) => !parts.some((p) => p(doc));
    }
    if (key === '$comment') return () => true;
    if (key.startsWith('$')) return this.viaMingo({ [key]: condition });
    const parts = key.split('.');
    const test = this.field(key, condition);
    return (doc) => {
      const values: unknown[] = [];
      candidates(doc, parts, 0, values);
      return test(values, doc);
    };
  }

  private field(path: string, condition: unknown): ValueTest {
    if (!isOperatorObject(condition)) return this.operator(path, '$eq', condition);
    const tests = Object.entries(condition).map(([op, operand]) =>
      op === '$options' ? undefined : this.operator(path, op, operand, condition),
    );
    return (values, doc) => tests.every((test) => !test || test(values, doc));
  }

  private operator(path: string, op: string, operand: unknown, all: Document = {}): ValueTest {
    const { strings } = this;
    switch (op) {
      case '$eq': {
        if (operand === null)
          return (values) => values.length === 0 || values.some((v) => v === null || v === undefined);
        const eq = equalsTo(operand, strings);
        return (values) => values.some(eq);
      }
      case '$ne': {
        const eq = this.operator(path, '$eq', operand);
        return (values, doc) => !eq(values, doc);
      }
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte': {
        if (operand === null)
          return op === '$gte' || op === '$lte' ? this.operator(path, '$eq', null) : () => false;
        const test = orderTest(op, operand, strings);
        return (values) => values.some(test);
      }
      case '$in':
      case '$nin': {
        if (!Array.isArray(operand)) throw new CommandError(ErrorCodes.BadValue, `${op} needs an array`);
        const tests = operand.map((entry) => this.operator(path, '$eq', entry));
        const matches: ValueTest = (values, doc) => tests.some((test) => test(values, doc));
        return op === '$in' ? matches : (values, doc) => !matches(values, doc);
      }
      case '$exists':
        return operand ? (values) => values.length > 0 : (values) => values.length === 0;
      case '$type': {
        const wanted = typeNumbersOf(operand);
        return (values) =>
          values.some((value) => value !== undefined && wanted.includes(typeNumberOf(value)));
      }
      case '$not': {
        if (!(operand instanceof RegExp) && !isOperatorObject(operand))
          throw new CommandError(ErrorCodes.BadValue, '$not needs a regex or a document');
        const inner = this.field(path, operand instanceof RegExp ? { $regex: operand } : operand);
        return (values, doc) => !inner(values, doc);
      }
      case '$regex': {
        if (strings)
          throw new CommandError(
            ErrorCodes.NotImplemented,
            'the sandbox does not apply a collation to $regex',
          );
        const source = operand instanceof RegExp ? operand.source : String(operand);
        const flags = `${operand instanceof RegExp ? operand.flags : ''}${typeof all.$options === 'string' ? all.$options : ''}`;
        let regex: RegExp;
        try {
          regex = new RegExp(source, [...new Set(flags.replace(/[^imsu]/g, ''))].join(''));
        } catch (error) {
          throw new CommandError(51091, `Regular expression is invalid: ${(error as Error).message}`);
        }
        return (values) => values.some((v) => typeof v === 'string' && regex.test(v));
      }
      default: {
        const mingo = this.viaMingo({ [path]: { [op]: operand } });
        return (_values, doc) => mingo(doc);
      }
    }
  }
}
