import { EJSON, type Long, ObjectId } from 'bson';
import { UsageError } from '../errors.ts';
import { DAY_MS, HOUR_MS } from '../limits.ts';

const HEX24 = /^[0-9a-fA-F]{24}$/;

/**
 * An id or reference as typed, in any notation the tool displays or mongosh prints, so what is copied from a
 * screen is accepted back (`/`, `f`, the console's allow-list prompt, `--ref`, `--doc`, `restore --find`,
 * `scan --list --ref`): `ObjectId(hex)`, `ObjectId('hex')`, `new ObjectId("hex")`, `oid hex` (the review
 * table's form) and a bare 24-hex are ObjectIds; `"text"` (JSON, as displayed) and `'text'` are strings;
 * Extended JSON when it parses (numbers, `{"$oid": …}`, `{"$numberLong": …}`); anything else the text itself.
 */
export function parseValueArgument(text: string): unknown {
  const trimmed = text.trim();
  const objectId =
    /^(?:new\s+)?ObjectId\(\s*(?:(["'])([0-9a-fA-F]{24})\1|([0-9a-fA-F]{24}))\s*\)$/.exec(trimmed) ??
    /^oid\s+()([0-9a-fA-F]{24})$/.exec(trimmed);
  if (objectId) return new ObjectId(objectId[2] ?? objectId[3]);
  const singleQuoted = /^'(.*)'$/s.exec(trimmed);
  if (singleQuoted) return singleQuoted[1];
  if (/^[{["\d-]/.test(trimmed) && !HEX24.test(trimmed)) {
    try {
      // Canonical, so a `$numberLong` beyond 2^53 stays exact (relaxed parsing rounds it to a double).
      return plainNumber(EJSON.parse(trimmed, { relaxed: false }));
    } catch {
      // Not JSON after all: the text itself.
    }
  }
  if (HEX24.test(trimmed)) return new ObjectId(trimmed);
  return text;
}

/**
 * The shortest text `parseValueArgument` reads back as this value: an ObjectId's hex, a string as it is unless it
 * would read as something else (then JSON-quoted), a number as written. For printed commands.
 */
export function valueArgument(value: unknown): string {
  if (value instanceof ObjectId) return value.toHexString();
  if (typeof value === 'string') return parseValueArgument(value) === value ? value : JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  return EJSON.stringify(value, { relaxed: false });
}

/** Int32 and Double wrappers as numbers, a Long as a number when it is exact as one: as the scan decodes keys. */
function plainNumber(value: unknown): unknown {
  const type = (value as { _bsontype?: string } | null)?._bsontype;
  if (type === 'Int32' || type === 'Double') return (value as { valueOf(): number }).valueOf();
  if (type === 'Long') {
    const n = (value as Long).toNumber();
    return Number.isSafeInteger(n) ? n : value;
  }
  return value;
}

/** `30d`, `12h`, `90m` from now, or an ISO date; never in the past (an exception that never applies holds nothing). */
export function parseExpiry(text: string, now = new Date()): Date {
  const relative = /^(\d+)([dhm])$/.exec(text.trim());
  let date: Date;
  if (relative) {
    const unit = { d: DAY_MS, h: HOUR_MS, m: 60_000 }[relative[2] as 'd' | 'h' | 'm'];
    date = new Date(now.getTime() + Number(relative[1]) * unit);
  } else date = calendarDate(text);
  if (Number.isNaN(date.getTime()))
    throw new UsageError(`--expires ${text}: expected 30d, 12h, 90m or an ISO date`);
  assertFuture(date, `--expires ${text}`, now);
  return date;
}

/**
 * A date as written, or an invalid Date when its calendar day does not exist: JavaScript rolls
 * `2027-02-30` over to March 2, which must never become an expiry nobody typed.
 */
export function calendarDate(text: string): Date {
  const day = /^(\d{4})-(\d{2})-(\d{2})/.exec(text.trim());
  if (day) {
    const [year, month, date] = day.slice(1).map(Number);
    const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
    if (month < 1 || month > 12 || date < 1 || date > last) return new Date(Number.NaN);
  }
  return new Date(text);
}

/** Refuses an expiry that has passed. */
export function assertFuture(date: Date, what: string, now = new Date()): void {
  if (date.getTime() <= now.getTime())
    throw new UsageError(
      `${what}: ${date.toISOString()} is in the past; give a future date or a duration such as 30d`,
    );
}
