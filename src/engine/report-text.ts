import { formatCount as n, relationHeading } from './format.ts';
import type { RelationReport, ScanReport } from './run-scan.ts';

function trend(relation: RelationReport): string {
  if (!relation.complete) return 'change: n/a (incomplete scan)';
  if (relation.changeSincePrevious === null) return 'change: first scan, growth unknown';
  const sign = relation.changeSincePrevious > 0 ? '+' : '';
  return `change: ${sign}${n(relation.changeSincePrevious)} since last scan, growth ${relation.growthPerDay}/day`;
}

/** The human-readable scan report: two lines of figures per relation, then its guard verdict. */
export function scanReportText(report: ScanReport): string {
  const lines: string[] = [];
  for (const r of report.relations) {
    lines.push(relationHeading(r));
    lines.push(
      `  scanned ${n(r.scanned)}  ok ${n(r.ok)}  orphans ${n(r.orphans)}  parent inactive ${n(r.parentInactive)}  invalid ref ${n(r.invalidReference)}  excepted ${n(r.excepted)}`,
    );
    lines.push(
      `  in grace ${n(r.inGrace)}  deletable ${n(r.deletable)}  ${trend(r)}  (${(r.durationMs / 1000).toFixed(1)} s)`,
    );
    lines.push(r.safe ? '  safe: yes' : `  safe: NO - ${r.unsafeReasons.join('; ')}`);
  }
  return `${lines.join('\n')}\n`;
}
