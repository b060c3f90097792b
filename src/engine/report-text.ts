import { formatCount as n, relationHeading } from './format.ts';
import type { RelationReport, ScanReport } from './run-scan.ts';
import { fittedTable, wrapLine } from './text-layout.ts';

function trend(relation: RelationReport): string {
  if (!relation.complete) return 'change: n/a (incomplete scan)';
  if (relation.changeSincePrevious === null) return 'change: first scan, growth unknown';
  const sign = relation.changeSincePrevious > 0 ? '+' : '';
  return `change: ${sign}${n(relation.changeSincePrevious)} since last scan, growth ${relation.growthPerDay}/day`;
}

const COLUMNS: [header: string, value: (r: RelationReport) => string][] = [
  ['relation', (r) => r.name],
  ['scanned', (r) => n(r.scanned)],
  ['ok', (r) => n(r.ok)],
  ['orphans', (r) => n(r.orphans)],
  ['inactive', (r) => n(r.parentInactive)],
  ['invalid', (r) => n(r.invalidReference)],
  ['excepted', (r) => n(r.excepted)],
  ['deletable', (r) => n(r.deletable)],
  ['in grace', (r) => n(r.inGrace)],
  ['p95 ms', (r) => (r.probeLatencyMs.count ? n(Math.round(r.probeLatencyMs.p95)) : '-')],
  ['safe', (r) => (r.error ? 'FAILED' : r.safe ? 'yes' : 'NO')],
];

/**
 * The human-readable scan report: one aligned row per relation (names left, numbers right) so relations
 * compare at a glance, then per relation where it points, its trend and, when unsafe, why. Laid out for
 * `width` columns (80 unless the terminal is wider): a table too wide is printed in two parts, long lines wrap.
 */
export function scanReportText(report: ScanReport, width = 80): string {
  const rows = [
    COLUMNS.map(([header]) => header),
    ...report.relations.map((r) => COLUMNS.map(([, value]) => value(r))),
  ];
  const lines = fittedTable(rows, width);
  for (const r of report.relations) {
    lines.push('');
    lines.push(...wrapLine(relationHeading(r), width, 2));
    lines.push(...wrapLine(`  ${trend(r)}  (${(r.durationMs / 1000).toFixed(1)} s)`, width));
    if (!r.safe) lines.push(...wrapLine(`  unsafe: ${r.unsafeReasons.join('; ')}`, width));
  }
  return `${lines.join('\n')}\n`;
}
