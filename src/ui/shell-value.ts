import { escapeForTerminal } from '../terminal-text.ts';

/**
 * A document as mongosh prints it (`ObjectId('…')`, `ISODate('…')`, `Long('…')`, `Decimal128('…')`), one
 * field per line, for the console's viewer. Arrays longer than COLLAPSE_AFTER are one line (`[1536 numbers]`)
 * unless expanded: an embedding vector should not be 1,536 lines of the viewer.
 */
export const COLLAPSE_AFTER = 8;

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** A string in shell quotes, every character a terminal would act on escaped (document contents are input). */
function quote(text: string): string {
  return `'${escapeForTerminal(text.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n'))}'`;
}

function bsonType(value: object): string | undefined {
  return (value as { _bsontype?: string })._bsontype;
}

/** One value on one line, or undefined for a document or array that takes several. */
function scalar(value: unknown): string | undefined {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date)
    return Number.isNaN(value.getTime()) ? 'Invalid Date' : `ISODate('${value.toISOString()}')`;
  if (value instanceof RegExp) return String(value);
  if (typeof value !== 'object') return String(value);
  switch (bsonType(value)) {
    case 'ObjectId':
      return `ObjectId('${String(value)}')`;
    case 'Long':
      return `Long('${String(value)}')`;
    case 'Int32':
      return `Int32(${String((value as { value: number }).value)})`;
    case 'Double':
      return `Double(${String((value as { value: number }).value)})`;
    case 'Decimal128':
      return `Decimal128('${String(value)}')`;
    case 'Timestamp': {
      const ts = value as { t: number; i: number };
      return `Timestamp({ t: ${ts.t}, i: ${ts.i} })`;
    }
    case 'Binary': {
      const binary = value as { sub_type: number; toString(encoding: string): string; length(): number };
      if (binary.sub_type === 4)
        return `UUID('${(value as { toUUID(): { toHexString(): string } }).toUUID().toHexString()}')`;
      const base64 = binary.toString('base64');
      return `Binary.createFromBase64('${base64.length > 40 ? `${base64.slice(0, 40)}…` : base64}', ${binary.sub_type})`;
    }
    case 'UUID':
      return `UUID('${String(value)}')`;
    case 'MinKey':
      return 'MinKey()';
    case 'MaxKey':
      return 'MaxKey()';
    case 'BSONRegExp': {
      const re = value as { pattern: string; options: string };
      return `BSONRegExp(${quote(re.pattern)}, ${quote(re.options)})`;
    }
    case 'Code':
      return `Code(${quote(String((value as { code: string }).code))})`;
    case 'BSONSymbol':
      return `BSONSymbol(${quote(String((value as { value: string }).value))})`;
    case 'DBRef': {
      const ref = value as { collection: string; oid: unknown };
      return `DBRef(${quote(ref.collection)}, ${scalar(ref.oid) ?? '…'})`;
    }
    default:
      return undefined;
  }
}

/** `[1536 numbers]`, `[12 strings]`, `[20 items]`: what a collapsed array holds. */
export function arraySummary(values: unknown[]): string {
  const kinds = new Set(
    values.map((v) =>
      typeof v === 'number' || ['Int32', 'Double', 'Long', 'Decimal128'].includes(bsonType(Object(v)) ?? '')
        ? 'numbers'
        : typeof v === 'string'
          ? 'strings'
          : 'items',
    ),
  );
  return `[${values.length} ${kinds.size === 1 ? [...kinds][0] : 'items'}]`;
}

function lines(value: unknown, indent: string, expand: boolean, prefix: string, suffix: string): string[] {
  const one = scalar(value);
  if (one !== undefined) return [`${indent}${prefix}${one}${suffix}`];
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${indent}${prefix}[]${suffix}`];
    if (!expand && value.length > COLLAPSE_AFTER)
      return [`${indent}${prefix}${arraySummary(value)}${suffix}   (Enter expands)`];
    return [
      `${indent}${prefix}[`,
      ...value.flatMap((item, i) => lines(item, inner, expand, '', i < value.length - 1 ? ',' : '')),
      `${indent}]${suffix}`,
    ];
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return [`${indent}${prefix}{}${suffix}`];
  return [
    `${indent}${prefix}{`,
    ...entries.flatMap(([key, item], i) =>
      lines(
        item,
        inner,
        expand,
        `${IDENTIFIER.test(key) ? key : quote(key)}: `,
        i < entries.length - 1 ? ',' : '',
      ),
    ),
    `${indent}}${suffix}`,
  ];
}

/** The document's lines in shell notation; long arrays one line each unless `expand`. */
export function shellLines(doc: unknown, expand = false): string[] {
  return lines(doc, '', expand, '', '');
}
