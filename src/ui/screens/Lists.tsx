import { Box, Text } from 'ink';
import { utcMinute } from '../../engine/format.ts';
import { displayValue } from '../../mongo/keys.ts';
import type { ExceptionEntry } from '../../store/exceptions.ts';
import type { RunRecord } from '../../store/runs.ts';
import { escapeForTerminal } from '../../terminal-text.ts';
import type { BackupPreview, BackupSummary } from '../services.ts';
import { count, theme } from '../theme.ts';

function windowOf<T>(items: T[], row: number, size: number): [T[], number] {
  const start = Math.max(0, Math.min(row - Math.floor(size / 2), items.length - size));
  return [items.slice(start, start + size), start];
}

/** Exceptions whose relation, value or reason contain the filter. */
export function visibleExceptions(entries: ExceptionEntry[], filter: string): ExceptionEntry[] {
  const needle = filter.toLowerCase();
  return entries.filter(
    (e) =>
      !needle ||
      `${e.relation} ${displayValue(e.value)} ${e.reason} ${e.createdBy}`.toLowerCase().includes(needle),
  );
}

export function ExceptionsScreen({
  entries,
  error,
  row,
  filter,
  detail,
  height,
}: {
  entries: ExceptionEntry[] | undefined;
  /** Why the list could not be read: said as such, never shown as an empty list. */
  error?: string;
  row: number;
  filter: string;
  /** The selected exception's detail instead of the list. */
  detail?: boolean;
  height: number;
}) {
  if (error)
    return (
      <Text color={theme.color('danger')}>
        could not read the exceptions: {error}. Esc, then e, tries again; nothing is known to be allow-listed
        meanwhile
      </Text>
    );
  if (!entries) return <Text>loading exceptions…</Text>;
  const visible = visibleExceptions(entries, filter);
  if (detail && visible[row]) return <ExceptionDetail entry={visible[row]} />;
  const [page, start] = windowOf(visible, row, Math.max(3, height - 4));
  return (
    <Box flexDirection="column">
      <Text bold>Exceptions (allow-listed orphans, never deleted): {visible.length}</Text>
      {filter && <Text color={theme.color('warn')}>filter: {filter}</Text>}
      {visible.length === 0 && (
        <Text color={theme.color('dim')}>none; press x on a sample in a relation's review to add one</Text>
      )}
      {page.map((e, i) => (
        <Text key={`${e.relation}-${e.kind}-${e.valueKey}`} inverse={start + i === row} wrap="truncate-end">
          {e.relation} {e.kind} {displayValue(e.value)} "{escapeForTerminal(e.reason)}" by{' '}
          {escapeForTerminal(e.createdBy)} {e.createdAt.toISOString().slice(0, 10)}{' '}
          {e.expiresAt ? `expires ${e.expiresAt.toISOString().slice(0, 10)}` : 'no expiry'}
        </Text>
      ))}
    </Box>
  );
}

/** One exception whole: every field on its own line, the reason wrapped rather than cut (80 columns and up). */
function ExceptionDetail({ entry }: { entry: ExceptionEntry }) {
  const now = Date.now();
  const expiry = entry.expiresAt
    ? `${utcMinute(entry.expiresAt)} (${entry.expiresAt.getTime() <= now ? 'expired: its children count again' : `in ${Math.ceil((entry.expiresAt.getTime() - now) / 86_400_000)} days`})`
    : 'never';
  const rows: [string, string][] = [
    ['relation', entry.relation],
    ['kind', entry.kind === 'document' ? 'document (this child)' : 'reference (every child of it)'],
    ['value', displayValue(entry.value)],
    ['reason', escapeForTerminal(entry.reason)],
    ['added by', escapeForTerminal(entry.createdBy)],
    ['added', utcMinute(entry.createdAt)],
    ['expires', expiry],
  ];
  return (
    <Box flexDirection="column">
      <Text bold>Exception (Enter or Esc closes)</Text>
      {rows.map(([label, value]) => (
        <Box key={label}>
          <Box width={10} flexShrink={0}>
            <Text color={theme.color('dim')}>{label}</Text>
          </Box>
          <Text wrap="wrap">{value}</Text>
        </Box>
      ))}
    </Box>
  );
}

export function RecoveryScreen({
  backups,
  found,
  folder,
  row,
  preview,
  lines,
  height,
}: {
  backups: BackupSummary[] | undefined;
  /** The reference searched with `/`: the list holds only the backups with its children. */
  found?: string;
  /** The backup root the list is read from. */
  folder: string;
  row: number;
  preview?: BackupPreview;
  lines: string[];
  height: number;
}) {
  if (!backups) return <Text>loading backups…</Text>;
  const [page, start] = windowOf(backups, row, Math.max(3, height - 9 - lines.length));
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        {found
          ? `Backups holding children of ${escapeForTerminal(found)}: ${backups.length} (/ then Enter lists all)`
          : `Backups (newest first): ${backups.length}`}
      </Text>
      <Text color={theme.color('dim')} wrap="truncate-middle">
        in {escapeForTerminal(folder)}
      </Text>
      {backups.length === 0 && (
        <Text color={theme.color('dim')}>{found ? 'none holds this reference' : 'no backups yet'}</Text>
      )}
      {page.map((b, i) => (
        <Text key={b.dir} inverse={start + i === row} wrap="truncate-end">
          {b.runId} {b.createdAt.slice(0, 16).replace('T', ' ')} UTC {b.status} by{' '}
          {escapeForTerminal(b.operator)}:{' '}
          {b.relations.map((r) => `${r.name} ${r.deleted} deleted`).join(', ')}
        </Text>
      ))}
      {preview && (
        <Box flexDirection="column" borderStyle="round" paddingX={1}>
          <Text bold>{preview.dir}</Text>
          {preview.relations.map((r) => (
            <Text key={r.name}>
              {r.name}: {r.backedUp} backed up, {r.deleted} deleted
            </Text>
          ))}
          {preview.checksumsOk ? (
            <Text color={theme.color('ok')}>checksums OK</Text>
          ) : (
            <Text color={theme.color('danger')}>damaged: {preview.problem}</Text>
          )}
        </Box>
      )}
      {lines.map((line) => (
        <Text key={line}>{line}</Text>
      ))}
    </Box>
  );
}

/** What `/` on the history shows next. */
function nextKindLabel(kind: RunRecord['kind'] | undefined): string {
  const order: (RunRecord['kind'] | undefined)[] = [undefined, 'scan', 'clean', 'restore', 'exception'];
  const next = order[(order.indexOf(kind) + 1) % order.length];
  return next === undefined ? 'all' : next === 'clean' ? 'cleanups' : `${next}s`;
}

/** The figures that matter for each kind of run, most important first. */
function runSummary(run: RunRecord): string {
  const c = run.counts;
  if (run.kind === 'clean')
    return `deleted ${count(c.deleted ?? 0)} of ${count(c.planned ?? 0)} planned, backed up ${count(c.backedUp ?? 0)}${c.mismatch ? `, MISMATCH ${count(c.mismatch)}` : ''}`;
  if (run.kind === 'exception') return escapeForTerminal(run.note ?? '');
  if (run.kind === 'restore')
    return `inserted ${count(c.inserted ?? 0)} of ${count(c.selected ?? 0)}, ${count(c.skippedExisting ?? 0)} already present`;
  return `orphans ${count(c.orphans ?? 0)}, inactive ${count(c.parentInactive ?? 0)}, deletable ${count(c.deletable ?? 0)}, scanned ${count(c.scanned ?? 0)}`;
}

/** A history row: the run, and for a scan how many earlier scans of its relation it stands for. */
export interface HistoryRow {
  run: RunRecord;
  earlierScans: number;
}

/**
 * The runs shown (newest first): of `kind` only when given; scans collapsed to the latest per relation, so
 * a rescan every few minutes does not push the cleanups and restores off the screen.
 */
export function visibleRuns(runs: RunRecord[], kind: RunRecord['kind'] | undefined): HistoryRow[] {
  const rows: HistoryRow[] = [];
  const latestScan = new Map<string, HistoryRow>();
  for (const run of runs) {
    if (kind && run.kind !== kind) continue;
    if (run.kind !== 'scan') {
      rows.push({ run, earlierScans: 0 });
      continue;
    }
    const shown = latestScan.get(run.relation);
    if (shown) shown.earlierScans++;
    else {
      const row = { run, earlierScans: 0 };
      latestScan.set(run.relation, row);
      rows.push(row);
    }
  }
  return rows;
}

/** When runs happened, in UTC, said so. */
function when(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function RunDetail({ run }: { run: RunRecord }) {
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text bold>
        {run.kind} {run.relation} {run.runId}: {run.outcome}
        {run.complete ? '' : ' (incomplete)'}
      </Text>
      <Text>
        {when(run.startedAt)} → {when(run.finishedAt)}, {(run.durationMs / 1000).toFixed(1)} s, by{' '}
        {escapeForTerminal(run.operator)} on {escapeForTerminal(run.host)}
      </Text>
      <Text wrap="wrap">
        {Object.entries(run.counts)
          .map(([key, value]) => `${key} ${count(value)}`)
          .join(' · ')}
      </Text>
      {run.note && <Text wrap="wrap">{escapeForTerminal(run.note)}</Text>}
      {run.backupPath && <Text>backup: {run.backupPath}</Text>}
      {run.error && <Text color={theme.color('danger')}>error: {escapeForTerminal(run.error)}</Text>}
    </Box>
  );
}

export function HistoryScreen({
  runs,
  row,
  kind,
  detail,
  height,
}: {
  runs: RunRecord[] | undefined;
  row: number;
  kind?: RunRecord['kind'];
  detail?: boolean;
  height: number;
}) {
  if (!runs) return <Text>loading history…</Text>;
  const rows = visibleRuns(runs, kind);
  const selected = rows[row];
  const [page, start] = windowOf(rows, row, Math.max(3, height - 2 - (detail ? 6 : 0)));
  return (
    <Box flexDirection="column">
      <Text bold>
        {kind ? `Recent ${kind}s` : 'Recent scans, cleanups, restores and exceptions'} (scans: the latest per
        relation; / shows {nextKindLabel(kind)})
      </Text>
      {rows.length === 0 && <Text color={theme.color('dim')}>nothing recorded yet</Text>}
      {page.map(({ run, earlierScans }, i) => (
        <Text
          key={`${run.runId}-${run.relation}-${run.kind}`}
          inverse={start + i === row}
          wrap="truncate-end"
        >
          {when(run.startedAt)} {run.kind.padEnd(9)} {run.relation}
          {earlierScans ? ` (+${count(earlierScans)} earlier)` : ''}
          {run.kind === 'exception'
            ? ` ${runSummary(run)} by ${escapeForTerminal(run.operator)}`
            : ` ${run.outcome} by ${escapeForTerminal(run.operator)}: ${runSummary(run)}`}
        </Text>
      ))}
      {detail && selected && <RunDetail run={selected.run} />}
    </Box>
  );
}
