import type { Endpoint } from './run-scan.ts';

/** A count as operators read it: 6,620. */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** `1 batch of 1,000`, `6 batches of 100`: how plans say how a delete is cut up. */
export function formatBatches(batches: number, batchSize: number): string {
  return `${formatCount(batches)} ${batches === 1 ? 'batch' : 'batches'} of ${formatCount(batchSize)}`;
}

/** A size in B, KiB or MiB. */
export function formatBytes(value: number): string {
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

/** `name  db.children.field -> db.parents.field`: how reports and plans head a relation. */
export function relationHeading(relation: { name: string; child: Endpoint; parent: Endpoint }): string {
  const { name, child, parent } = relation;
  return `${name}  ${child.database}.${child.collection}.${child.field} -> ${parent.database}.${parent.collection}.${parent.field}`;
}

/** A time as `2026-12-05 04:12 UTC`. */
export function utcMinute(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** `17:04 UTC` when `date` is today, else `2026-12-04 17:04 UTC`. */
export function utcClock(date: Date, now = new Date()): string {
  const today = date.toISOString().slice(0, 10) === now.toISOString().slice(0, 10);
  return today ? `${date.toISOString().slice(11, 16)} UTC` : utcMinute(date);
}
