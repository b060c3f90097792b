import { EJSON } from 'bson';
import { Box, Text } from 'ink';
import type { Relation } from '../../config/load.ts';
import { utcMinute } from '../../engine/format.ts';
import type { RelationReport } from '../../engine/run-scan.ts';
import type { Sample } from '../../engine/scan.ts';
import { DAY_MS } from '../../limits.ts';
import { displayValue } from '../../mongo/keys.ts';
import { escapeForTerminal } from '../../terminal-text.ts';
import { type AllChildren, listableCategory } from '../hooks/use-all-children.ts';
import { shellLines } from '../shell-value.ts';
import { TABS } from '../state/reducer.ts';
import { cell, count, theme, truncate } from '../theme.ts';

const TAB_LABELS: Record<string, string> = {
  orphans: 'Orphans',
  parentInactive: 'Parent inactive',
  invalidReference: 'Invalid refs',
  excepted: 'Excepted',
  ok: 'OK',
};

/** Table form: an ObjectId as `oid <hex>`, so an id and a string reference fit their columns yet stay distinct. */
function compact(value: unknown): string {
  if (value && typeof value === 'object' && (value as { _bsontype?: string })._bsontype === 'ObjectId')
    return `oid ${String(value)}`;
  return displayValue(value);
}

function age(since: Date | undefined, now: number): string {
  if (!since) return '';
  const days = (now - since.getTime()) / DAY_MS;
  return days >= 1 ? `${Math.floor(days)}d` : `${Math.floor(days * 24)}h`;
}

/**
 * How long a child has been unresolved, and whether it is deletable now or in grace until a date: `9d now`,
 * `2d grace→12-07`.
 */
function ageAndStatus(since: Date | undefined, now: number, graceDays: number): string {
  if (!since) return '';
  const until = since.getTime() + graceDays * DAY_MS;
  return `${age(since, now)} ${until <= now ? 'now' : `grace→${dayOrTime(new Date(until), now)}`}`;
}

/** A date with its year (`2026-12-12`), or its time when it is today (`14:05 UTC`). */
function dayOrTime(date: Date, now: number): string {
  const iso = date.toISOString();
  return iso.slice(0, 10) === new Date(now).toISOString().slice(0, 10)
    ? `${iso.slice(11, 16)} UTC`
    : iso.slice(0, 10);
}

/**
 * Why an unresolved child's parent counts as inactive (its soft-delete field, or the relation's activeFilter), and
 * when its grace ends: what the document view says above the document.
 */
export function unresolvedLines(
  tab: string,
  relation: Relation | undefined,
  sample: Sample,
  graceDays: number,
  now: number,
): string[] {
  if (tab !== 'orphans' && tab !== 'parentInactive') return [];
  const lines: string[] = [];
  const soft = relation?.parent.softDeleteField;
  const filter = relation?.parent.activeFilter;
  let basis = sample.since ? `first seen ${utcMinute(sample.since)}` : '';
  if (tab === 'parentInactive') {
    if (soft && sample.since) {
      lines.push(`inactive: the parent's ${soft} is set (soft delete at ${utcMinute(sample.since)})`);
      basis = 'the soft delete';
    } else if (soft) lines.push(`inactive: the parent's ${soft} is set (a soft delete)`);
    if (filter) lines.push(`inactive: the parent does not match activeFilter ${JSON.stringify(filter)}`);
  }
  if (sample.since) {
    const until = new Date(sample.since.getTime() + graceDays * DAY_MS);
    lines.push(
      until.getTime() <= now
        ? `deletable since ${utcMinute(until)} (grace ${graceDays} days from ${basis})`
        : `in grace until ${utcMinute(until)} (${graceDays} days from ${basis})`,
    );
  }
  return lines.map(escapeForTerminal);
}

function summary(sample: Sample, field: string): string {
  if (!sample.doc) return '';
  const rest = Object.entries(sample.doc)
    .filter(([key]) => key !== '_id' && key !== field)
    .map(([key, value]) => `${key}: ${Array.isArray(value) ? `[${value.length}]` : displayValue(value)}`);
  return rest.join(', ');
}

/** The samples of the current tab that match the filter (searched in the whole document). */
export function visibleSamples(
  report: RelationReport | undefined,
  tab: number,
  filter: string,
  /** Every child of the tab (`a`), when loaded: shown instead of the samples. */
  all?: Sample[],
): Sample[] {
  const samples = all ?? report?.samples[TABS[tab]] ?? [];
  if (!filter) return samples;
  const needle = filter.toLowerCase();
  return samples.filter((s) =>
    EJSON.stringify(s.doc ?? { _id: s.id, ref: s.reference }, { relaxed: true })
      .toLowerCase()
      .includes(needle),
  );
}

export function RelationReview({
  report,
  scanning = true,
  tab,
  row,
  filter,
  all,
  width,
  height,
}: {
  report: RelationReport | undefined;
  /** Whether a scan is running now: without one and without a report, nothing is pretended. */
  scanning?: boolean;
  tab: number;
  row: number;
  filter: string;
  all?: AllChildren;
  width: number;
  height: number;
}) {
  if (!report)
    return scanning ? (
      <Text>Scanning… the samples appear when the scan of this relation is done.</Text>
    ) : (
      <Text color={theme.color('warn')}>
        Not scanned: the last scan failed or was stopped (see the message below). Esc, then r, scans again.
      </Text>
    );
  const rows = visibleSamples(report, tab, filter, all?.rows);
  const pageSize = Math.max(3, height - 6);
  const start = Math.max(0, Math.min(row - Math.floor(pageSize / 2), rows.length - pageSize));
  const page = rows.slice(start, start + pageSize);
  const now = Date.now();
  // The reference is what recovery needs: always whole ("oid " and 24 hex digits); the other columns give way.
  const refWidth = 28;
  // `10d grace→2026-12-12`: dates with their year.
  const ageWidth = 20;
  const idWidth = Math.max(12, Math.min(28, width - refWidth - ageWidth - 3 - 10));
  const restWidth = Math.max(0, width - idWidth - refWidth - ageWidth - 3);
  const unresolved = TABS[tab] === 'orphans' || TABS[tab] === 'parentInactive';
  const totals: Record<string, number> = {
    orphans: report.orphans,
    parentInactive: report.parentInactive,
    invalidReference: report.invalidReference,
    excepted: report.excepted,
    ok: report.ok,
  };
  return (
    <Box flexDirection="column">
      <Text bold>
        {report.name}: {report.child.collection}.{report.child.field} → {report.parent.database}.
        {report.parent.collection}.{report.parent.field}
      </Text>
      <Box>
        {TABS.map((category, i) => (
          <Text key={category} inverse={i === tab} color={i === tab ? theme.color('accent') : undefined}>
            {/* Brackets mark the open tab where colour and inverse are off (NO_COLOR). */}
            {i === tab
              ? `[${TAB_LABELS[category]} ${count(totals[category])}]`
              : ` ${TAB_LABELS[category]} ${count(totals[category])} `}
          </Text>
        ))}
      </Box>
      {filter && <Text color={theme.color('warn')}>filter: {filter}</Text>}
      <Text color={theme.color('dim')}>
        {'_id'.padEnd(idWidth)} {'reference'.padEnd(refWidth)}{' '}
        {(unresolved ? 'age · deletable' : 'age').padEnd(ageWidth)} {restWidth > 8 ? 'document' : ''}
      </Text>
      {page.length === 0 && (
        <Text color={theme.color('dim')}>
          {all?.loading
            ? 'loading…'
            : all
              ? 'no child in this category as of the last complete scan'
              : 'no samples in this category'}
        </Text>
      )}
      {page.map((sample, i) => {
        const index = start + i;
        const selected = index === row;
        return (
          <Text key={index} inverse={selected} wrap="truncate-end">
            {cell(compact(sample.id), idWidth)} {cell(compact(sample.reference), refWidth)}{' '}
            {cell(
              unresolved ? ageAndStatus(sample.since, now, report.graceDays) : age(sample.since, now),
              ageWidth,
            )}{' '}
            {restWidth > 8 ? truncate(summary(sample, report.child.field), restWidth) : ''}
          </Text>
        );
      })}
      {all?.error && <Text color={theme.color('danger')}>could not list: {all.error}</Text>}
      <Text color={theme.color('dim')}>
        {all
          ? `${rows.length ? `${count(row + 1)}/${count(rows.length)}${all.done ? '' : '+'}` : '0'} of ${count(totals[TABS[tab]])} children, all of them as of the last complete scan (a: back to the samples)`
          : `${rows.length ? `${row + 1}/${rows.length} samples` : ''} (up to ${count(50)} per category are kept${listableCategory(tab) ? '; a: every child' : ''})`}
      </Text>
    </Box>
  );
}

/** What the scan found of the parent, by the review tab the child was listed under. */
const PARENT_STATE: Record<string, string> = {
  orphans: 'missing',
  parentInactive: 'present but inactive',
  invalidReference: 'not looked up (the reference is null, missing or malformed)',
  excepted: 'not checked (the child is allow-listed)',
  ok: 'present and active',
};

/** The lines the viewer shows for a sample (the document in shell notation, or why there is none). */
export function documentLines(sample: Sample | undefined, expanded: boolean): string[] {
  if (!sample) return [];
  if (sample.doc) return shellLines(sample.doc, expanded);
  return [
    sample.docState === 'loading'
      ? 'loading the document…'
      : (sample.docState ?? '(the document is no longer there)'),
  ];
}

export function DocumentView({
  sample,
  report,
  relation,
  tab,
  scroll,
  expanded,
  height,
}: {
  sample: Sample | undefined;
  report: RelationReport | undefined;
  /** The relation's definition: its soft-delete field or activeFilter says why a parent is inactive. */
  relation?: Relation;
  tab: number;
  scroll: number;
  expanded: boolean;
  height: number;
}) {
  if (!sample) return <Text>No document.</Text>;
  const lines = documentLines(sample, expanded);
  const why = report ? unresolvedLines(TABS[tab], relation, sample, report.graceDays, Date.now()) : [];
  const pageSize = Math.max(3, height - 3 - why.length);
  const top = Math.min(scroll, Math.max(0, lines.length - pageSize));
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        _id {shellLines(sample.id)[0]} (lines {top + 1}-{Math.min(lines.length, top + pageSize)} of{' '}
        {lines.length})
      </Text>
      {report && (
        <Text color={theme.color('dim')} wrap="truncate-end">
          parent in {report.parent.database}.{report.parent.collection}: {PARENT_STATE[TABS[tab]]} as of the
          last scan
        </Text>
      )}
      {why.map((line) => (
        <Text key={line} color={theme.color('dim')} wrap="truncate-end">
          {line}
        </Text>
      ))}
      {lines.slice(top, top + pageSize).map((line, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: the line number is the line's identity in this view
        <Text key={top + i} wrap="truncate-end">
          {line}
        </Text>
      ))}
    </Box>
  );
}
