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
