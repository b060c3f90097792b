import { EJSON, ObjectId } from 'bson';
import { UsageError } from '../errors.ts';
import { DAY_MS, HOUR_MS } from '../limits.ts';

const HEX24 = /^[0-9a-fA-F]{24}$/;

/** An id or reference typed on the command line: Extended JSON when it parses, a 24-hex ObjectId, else a string. */
export function parseValueArgument(text: string): unknown {
  const trimmed = text.trim();
  if (/^[{["\d-]/.test(trimmed) && !HEX24.test(trimmed)) {
    try {
      return EJSON.parse(trimmed, { relaxed: true });
    } catch {
      // Not JSON after all: the text itself.
    }
  }
  if (HEX24.test(trimmed)) return new ObjectId(trimmed);
  return text;
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
