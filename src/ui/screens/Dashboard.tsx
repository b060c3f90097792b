import { ProgressBar } from '@inkjs/ui';
import { Box, Text } from 'ink';
import Spinner from 'ink-spinner';
import type { Relation } from '../../config/load.ts';
import { type AlertThresholds, relationAlerts } from '../../engine/alerts.ts';
import { utcClock } from '../../engine/format.ts';
import type { RelationReport } from '../../engine/run-scan.ts';
import type { ScanProgress } from '../../engine/scan.ts';
import type { LiveCounts } from '../../engine/watch.ts';
import type { RelationHistory } from '../services.ts';
import { bytes, count, sparkline, theme } from '../theme.ts';

export interface DashboardProps {
  relations: Relation[];
  selected: number;
  progress: Record<string, ScanProgress>;
  reports: Record<string, RelationReport>;
  trends: Record<string, RelationHistory>;
  scanning: boolean;
  /** When the figures shown were scanned. */
  scannedAt?: Date;
  /** Relations whose last scan failed: their figures are the last known, not current. */
  staleRelations?: string[];
  /** Live counts per watched relation (change streams). */
  live?: Record<string, LiveCounts>;
  /** Relations whose live counts are not live now (a source not answering), with the line to show instead. */
  liveStale?: Record<string, string>;
  /** The config's alert thresholds: a relation that crossed one is marked with it. */
  thresholds: AlertThresholds;
  width: number;
  /** Lines available: relations that do not fit are left out around the selected one, which always shows. */
  height?: number;
}

/** When the figures on screen were true: the time when today, else with its date. */
function clock(date: Date | undefined): string {
  return date ? utcClock(date) : 'earlier';
}

function Figures({
  report,
  history,
  live,
  stale,
  scannedAt,
  thresholds,
}: {
  report: RelationReport;
  thresholds: AlertThresholds;
  history?: RelationHistory;
  /** Why the live counts are not live now (shown instead of the badge). */
  stale?: string;
  /** Counts kept current by change streams since the scan, when the relation is watched. */
  live?: LiveCounts;
  scannedAt?: Date;
}) {
  const last = history?.lastCleanup;
  const alerts = relationAlerts(report, thresholds);
  // Live counts replace the scan's five categories; deletable and in grace (first-seen, grace) stay the scan's.
  const figures = live ? live.counts : report;
  const change =
    report.changeSincePrevious === null
      ? 'first scan'
      : `${report.changeSincePrevious >= 0 ? '+' : ''}${count(report.changeSincePrevious)} since last`;
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        {'   orphans '}
        <Text bold color={figures.orphans ? theme.color('warn') : undefined}>
          {count(figures.orphans)}
        </Text>
        {`  parent inactive ${count(figures.parentInactive)}  invalid ${count(figures.invalidReference)}  excepted ${count(figures.excepted)}  `}
        {live && stale ? (
          <Text color={theme.color('warn')}>◌ stale</Text>
        ) : live ? (
          <Text color={theme.color('ok')} bold>
            ● live
          </Text>
        ) : (
          <Text color={theme.color('dim')}>{`snapshot as of ${clock(scannedAt)} (not live)`}</Text>
        )}
      </Text>
      {live && stale && (
        <Text color={theme.color('warn')} wrap="truncate-end">{`   live counts ${stale}`}</Text>
      )}
      <Text wrap="truncate-end">
        {'   deletable '}
        <Text bold>{count(report.deletable)}</Text>
        {/* Beside live figures, the scan's are labelled with their time. */}
        {`${live ? ` as of scan ${clock(scannedAt)}` : ''}  in grace ${count(report.inGrace)}`}
        {'  '}
        {report.safe ? (
          <Text color={theme.color('ok')}>safe</Text>
        ) : (
          <Text color={theme.color('danger')}>UNSAFE: {report.unsafeReasons.join('; ')}</Text>
        )}
        {`  ${change}`}
        {report.growthPerDay !== null ? `  ${report.growthPerDay}/day` : ''}
      </Text>
      {alerts.length > 0 && (
        // Colour says alert, and the words say it without colour (NO_COLOR): each crossing with its threshold.
        <Text color={theme.color('danger')} bold wrap="truncate-end">
          {`   ▲ ALERT ${alerts.map((alert) => alert.short).join(' · ')}`}
        </Text>
      )}
      <Text wrap="truncate-end" color={theme.color('dim')}>
        {`   orphan storage ${bytes(report.orphanBytes)}  probe p95 ${report.probeLatencyMs.p95.toFixed(0)} ms (${report.parent.source})`}
        {last
          ? `  last cleanup ${count(last.deleted)}/${count(last.planned)} (${last.planned ? Math.round((last.deleted / last.planned) * 100) : 100}%)`
          : '  no cleanup yet'}
      </Text>
    </Box>
  );
}

export function Dashboard({
  relations,
  selected,
  progress,
  reports,
  trends,
  scanning,
  scannedAt,
  staleRelations = [],
  live: liveCounts = {},
  liveStale = {},
  thresholds,
  width,
  height = Number.POSITIVE_INFINITY,
}: DashboardProps) {
  const narrow = width < 80;
  // The lines each relation takes (as rendered below), to keep the selected one in sight when not all fit.
  const linesOf = (relation: Relation, i: number): number => {
    const report = reports[relation.name];
    let lines = (i ? 1 : 0) + 1;
    if (scanning) lines += 1 + (report ? 1 : 0);
    else if (report) {
      lines += 3;
      if (liveStale[relation.name] && liveCounts[relation.name]) lines += 1;
      if (relationAlerts(report, thresholds).length) lines += 1;
      if (staleRelations.includes(relation.name)) lines += 1;
    } else lines += 1;
    return lines;
  };
  const [first, last] = visibleRange(relations.map(linesOf), selected, height);
  return (
    <Box flexDirection="column">
      {first > 0 && (
        <Text color={theme.color('dim')}>{`↑ ${first} more relation${first > 1 ? 's' : ''} (↑ shows)`}</Text>
      )}
      {relations.map((relation, i) => {
        if (i < first || i > last) return null;
        const report = reports[relation.name];
        const live = progress[relation.name];
        const history = trends[relation.name];
        const current = liveCounts[relation.name];
        // The trend ends with the live figure when there is one.
        const trend = [...(history?.orphans ?? []), ...(current ? [current.counts.orphans] : [])];
        return (
          <Box key={relation.name} flexDirection="column" marginTop={i ? 1 : 0}>
            <Text wrap="truncate-end">
              <Text color={i === selected ? theme.color('accent') : undefined} bold={i === selected}>
                {i === selected ? '▶ ' : '  '}
                {relation.name}
              </Text>
              {narrow
                ? ''
                : `  ${relation.child.collection}.${relation.child.field} → ${relation.parent.collection}.${relation.parent.field}`}
              {trend.length > 1 ? `  orphans trend ${sparkline(trend)}` : ''}
            </Text>
            {scanning && live ? (
              <Box>
                <Text>{'   '}</Text>
                <Spinner type="dots" />
                <Box width={20} marginLeft={1}>
                  <ProgressBar
                    value={
                      live.estimatedTotal ? Math.min(100, (live.scanned / live.estimatedTotal) * 100) : 0
                    }
                  />
                </Box>
                <Text>
                  {` ${count(live.scanned)}/${count(live.estimatedTotal)}  ${count(Math.round(live.docsPerSecond))}/s`}
                  {live.etaSeconds !== undefined ? `  ETA ${Math.ceil(live.etaSeconds)}s` : ''}
                  {`  orphans ${count(live.counts.orphans)}`}
                </Text>
              </Box>
            ) : scanning ? (
              <Text color={theme.color('dim')}>{'   waiting to scan…'}</Text>
            ) : report ? (
              <Figures
                report={report}
                history={history}
                live={current}
                stale={liveStale[relation.name]}
                scannedAt={scannedAt}
                thresholds={thresholds}
              />
            ) : (
              <Text color={theme.color('dim')}>{'   not scanned'}</Text>
            )}
            {/* The last known figures stay in sight, marked with their time, while a scan runs or after one failed. */}
            {report && scanning && (
              <Text color={theme.color('dim')} wrap="truncate-end">
                {`   last scan ${clock(scannedAt)}: ${count(report.orphans)} orphans, ${count(report.parentInactive)} inactive, ${count(report.deletable)} to delete`}
              </Text>
            )}
            {report && !scanning && staleRelations.includes(relation.name) && (
              <Text color={theme.color('warn')} wrap="truncate-end">
                {`   as of ${clock(scannedAt)}: the last scan failed, these are the last known figures (r retries)`}
              </Text>
            )}
          </Box>
        );
      })}
      {last < relations.length - 1 && (
        <Text color={theme.color('dim')}>
          {`↓ ${relations.length - 1 - last} more relation${relations.length - 1 - last > 1 ? 's' : ''} (↓ shows)`}
        </Text>
      )}
    </Box>
  );
}

/**
 * The relations shown when their lines do not all fit `height`: a run of them holding the selected one, from
 * the top when it fits there, else ending at the selected one (a line above and below says how many are left out).
 */
export function visibleRange(lines: number[], selected: number, height: number): [number, number] {
  const total = lines.reduce((sum, n) => sum + n, 0);
  if (total <= height) return [0, lines.length - 1];
  const room = Math.max(1, height - 2);
  let first = 0;
  let used = 0;
  let last = -1;
  for (let i = 0; i < lines.length && used + lines[i] <= room; i++) {
    used += lines[i];
    last = i;
  }
  if (selected <= last) return [first, Math.max(last, first)];
  // From the selected one upwards.
  first = selected;
  last = selected;
  used = lines[selected];
  while (first > 0 && used + lines[first - 1] <= room) used += lines[--first];
  return [first, last];
}
