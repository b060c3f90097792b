/**
 * Numbers compared as mongod compares them: by exact value across int32, int64, double and decimal128
 * (Int64(2^60) is not rounded to a double; 0.1 as a double is not Decimal128("0.1")). NaN equals NaN and
 * sorts below every other number.
 */
type Exact =
  | { kind: 'finite'; n: bigint; scale: number }
  | { kind: 'nan' }
  | { kind: 'infinite'; sign: 1 | -1 };

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?(?:E([+-]?\d+))?$/i;

function bsonTag(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null
    ? (value as { _bsontype?: string })._bsontype
    : undefined;
}

/** Whether a value is one of MongoDB's numeric types. */
export function isNumeric(value: unknown): boolean {
  if (typeof value === 'number' || typeof value === 'bigint') return true;
  const tag = bsonTag(value);
  return tag === 'Long' || tag === 'Int32' || tag === 'Double' || tag === 'Decimal128';
}

function normalise(n: bigint, scale: number): Exact {
  while (scale > 0 && n % 10n === 0n) {
    n /= 10n;
    scale--;
  }
  return { kind: 'finite', n, scale };
}

function exactOfDouble(x: number): Exact {
  if (Number.isNaN(x)) return { kind: 'nan' };
  if (!Number.isFinite(x)) return { kind: 'infinite', sign: x > 0 ? 1 : -1 };
  if (Number.isInteger(x)) return { kind: 'finite', n: BigInt(x), scale: 0 };
  // x = m / 2^k exactly, and m / 2^k = m * 5^k / 10^k.
  let k = 0;
  let m = x;
  while (!Number.isInteger(m)) {
    m *= 2;
    k++;
  }
  return normalise(BigInt(m) * 5n ** BigInt(k), k);
}

function exactOfDecimal(text: string): Exact {
  if (/^-?nan$/i.test(text)) return { kind: 'nan' };
  if (/^-?inf(inity)?$/i.test(text)) return { kind: 'infinite', sign: text.startsWith('-') ? -1 : 1 };
  const match = DECIMAL.exec(text);
  if (!match) return { kind: 'nan' };
  const [, minus, whole, fraction = '', exponent = '0'] = match;
  let n = BigInt(whole + fraction) * (minus ? -1n : 1n);
  let scale = fraction.length - Number(exponent);
  if (scale < 0) {
    n *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return normalise(n, scale);
}

function exactOf(value: unknown): Exact {
  if (typeof value === 'number') return exactOfDouble(value);
  if (typeof value === 'bigint') return { kind: 'finite', n: value, scale: 0 };
  switch (bsonTag(value)) {
    case 'Long':
      return { kind: 'finite', n: BigInt(String(value)), scale: 0 };
    case 'Decimal128':
      return exactOfDecimal(String(value));
  }
  return exactOfDouble(Number((value as { valueOf(): unknown }).valueOf()));
}

/** Compares two numeric values exactly; JavaScript numbers (the common case) without allocating. */
export function compareNumbers(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : -1;
    if (Number.isNaN(b)) return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const x = exactOf(a);
  const y = exactOf(b);
  if (x.kind === 'nan') return y.kind === 'nan' ? 0 : -1;
  if (y.kind === 'nan') return 1;
  if (x.kind === 'infinite') return y.kind === 'infinite' ? x.sign - y.sign : x.sign;
  if (y.kind === 'infinite') return -y.sign;
  const left = x.n * 10n ** BigInt(y.scale);
  const right = y.n * 10n ** BigInt(x.scale);
  return left < right ? -1 : left > right ? 1 : 0;
}

/** A string equal for two numbers exactly when mongod's equality calls them equal (for index lookups). */
export function numericKey(value: unknown): string {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return `n${Object.is(value, -0) ? 0 : value}`;
  const exact = exactOf(value);
  if (exact.kind === 'nan') return 'nNaN';
  if (exact.kind === 'infinite') return exact.sign > 0 ? 'nInf' : 'n-Inf';
  if (exact.scale === 0) return `n${exact.n}`;
  const negative = exact.n < 0n;
  const digits = (negative ? -exact.n : exact.n).toString().padStart(exact.scale + 1, '0');
  return `n${negative ? '-' : ''}${digits.slice(0, -exact.scale)}.${digits.slice(-exact.scale)}`;
}
