import { Decimal128, Long, ObjectId } from 'bson';
import { render } from 'ink-testing-library';
import type { ReactElement } from 'react';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CleanupPlan } from '../../../src/cleanup/plan.ts';
import type { Relation } from '../../../src/config/load.ts';
import type { RelationReport } from '../../../src/engine/run-scan.ts';
import { CATEGORIES, type Category, type Sample } from '../../../src/engine/scan.ts';
import type { ExceptionEntry } from '../../../src/store/exceptions.ts';
import type { RunRecord } from '../../../src/store/runs.ts';
import { Footer, footerLines } from '../../../src/ui/components/Footer.tsx';
import { Header } from '../../../src/ui/components/Header.tsx';
import { CleanupScreen, type CleanupState } from '../../../src/ui/screens/Cleanup.tsx';
import { Dashboard } from '../../../src/ui/screens/Dashboard.tsx';
import { ExceptionsScreen, HistoryScreen, RecoveryScreen } from '../../../src/ui/screens/Lists.tsx';
import { DocumentView, RelationReview } from '../../../src/ui/screens/RelationReview.tsx';
import { SettingsScreen } from '../../../src/ui/screens/Settings.tsx';
import { TABS } from '../../../src/ui/state/reducer.ts';

/**
 * Every screen in its empty, loading, error and full states, from fake data: no sandbox, no services. The
 * journeys through a real server are in console-journey and console-paging.
 */
let mounted: ReturnType<typeof render>[] = [];
function frameOf(element: ReactElement): string {
  const r = render(element);
  mounted.push(r);
  return r.lastFrame() ?? '';
}
beforeAll(() => {
  process.env.NO_COLOR = '1';
});
afterEach(() => {
  for (const r of mounted) r.unmount();
  mounted = [];
});

const RELATION = {
  name: 'content_embeddings',
  child: { source: 'olorin', collection: 'content_embeddings', field: 'content_id' },
  parent: { source: 'bayit', collection: 'content', field: '_id' },
} as Relation;

function samples(n: number, category: Category): Sample[] {
  return Array.from({ length: n }, (_, i) => ({
    id: new ObjectId(),
    reference: `ref-${category}-${i}`,
    since: new Date(Date.now() - 3 * 86_400_000),
    doc: { _id: i, content_id: `ref-${category}-${i}`, title: `doc ${i}` },
  }));
}

function report(overrides: Partial<RelationReport> = {}): RelationReport {
  return {
    name: RELATION.name,
    child: { source: 'olorin', database: 'olorin', collection: 'content_embeddings', field: 'content_id' },
    parent: { source: 'bayit', database: 'bayit', collection: 'content', field: '_id' },
    scanned: 6620,
    documentsRead: 6620,
    graceDays: 7,
    ok: 6000,
    orphans: 300,
    parentInactive: 300,
    invalidReference: 20,
    excepted: 0,
    inGrace: 0,
    deletable: 600,
    safe: true,
    unsafeReasons: [],
    durationMs: 120,
    changeSincePrevious: null,
    growthPerDay: null,
    complete: true,
    estimatedTotal: 6620,
    samples: Object.fromEntries(CATEGORIES.map((c) => [c, samples(c === 'excepted' ? 0 : 3, c)])) as Record<
      Category,
      Sample[]
    >,
    candidates: [],
    roundTrips: { childBatches: 2, parentProbes: 1, sizeQueries: 1 },
    probeLatencyMs: { count: 1, p50: 1, p95: 1, p99: 1 },
    probeDurationsMs: [1],
    orphanBytes: 1000,
    runId: 'run-1',
    ...overrides,
  };
}

describe('Header', () => {
  it('says it is connecting, then each source, with the failing one in words', () => {
    expect(frameOf(<Header readOnly={false} />)).toContain('connecting…');
    const frame = frameOf(
      <Header
        readOnly
        statuses={[
          {
            name: 'olorin',
            uri: 'mongodb://h1/',
            hosts: 'h1:27017',
            database: 'olorin',
            ok: true,
            version: '7.0.0',
            topology: 'standalone',
            latencyMs: 1.2,
          },
          {
            name: 'bayit',
            uri: 'mongodb://h2/',
            hosts: 'h2:27017',
            database: 'bayit',
            ok: false,
            error: 'connection refused',
          },
        ]}
      />,
    );
    expect(frame).toContain('[READ-ONLY]');
    expect(frame).toMatch(/✓ olorin h1:27017 db olorin {2}MongoDB 7\.0\.0 standalone 1\.2 ms/);
    expect(frame).toMatch(/✗ bayit .*connection refused \(r retries\)/);
  });
});

/** Thresholds nothing in these tests crosses. */
const QUIET = { alertThreshold: 10_000, growthAlertPerDay: 1000, latencyAlertMs: 500 };

describe('honest state during outages', () => {
  it('a long wait shows what it is, its seconds so far, and what bounds it', () => {
    const busy = {
      what: 'restoring',
      since: Date.now() - 5200,
      bound: 'each operation ends after 90 s of silence',
    };
    const frame = frameOf(<Footer view="recovery" message={undefined} width={100} busy={busy} />);
    expect(frame).toContain('restoring… 5 s (each operation ends after 90 s of silence)');
    expect(footerLines('recovery', undefined, 100, busy)).toBe(frame.split('\n').length);
  });

  it('the header counts the seconds of a connection attempt against its timeout', () => {
    const frame = frameOf(<Header readOnly={false} connectingSince={Date.now() - 4200} />);
    expect(frame).toMatch(/connecting… 4 s \(gives up after 30 s\)/);
  });

  it('keeps the last known figures, with their time, while a rescan runs and after one failed', () => {
    const props = {
      relations: [RELATION],
      selected: 0,
      progress: {},
      trends: {},
      width: 100,
      thresholds: QUIET,
    };
    const reports = { [RELATION.name]: report() };
    const at = new Date('2026-11-30T16:04:00Z');
    const rescanning = frameOf(<Dashboard {...props} reports={reports} scannedAt={at} scanning />);
    expect(rescanning).toContain('waiting to scan…');
    // Not today: with its date and year (issue 26 item 7).
    expect(rescanning).toContain('last scan 2026-11-30 16:04 UTC: 300 orphans, 300 inactive, 600 to delete');
    // Never passed off as current: the live "deletable" figure appears only with a finished scan.
    expect(rescanning).not.toMatch(/deletable \d/);
    const failed = frameOf(
      <Dashboard
        {...props}
        reports={reports}
        scannedAt={at}
        scanning={false}
        staleRelations={[RELATION.name]}
      />,
    );
    expect(failed).toContain('deletable 600');
    expect(failed).toContain(
      'as of 2026-11-30 16:04 UTC: the last scan failed, these are the last known figures (r retries)',
    );
    const fine = frameOf(
      <Dashboard {...props} reports={reports} scannedAt={at} scanning={false} staleRelations={[]} />,
    );
    expect(fine).not.toContain('last known');
  });
});

describe('Dashboard', () => {
  const props = {
    relations: [RELATION],
    selected: 0,
    progress: {},
    reports: {},
    trends: {},
    width: 100,
    thresholds: QUIET,
  };
  it('before, during and after a scan', () => {
    expect(frameOf(<Dashboard {...props} scanning={false} />)).toContain('not scanned');
    expect(frameOf(<Dashboard {...props} scanning />)).toContain('waiting to scan…');
    const live = frameOf(
      <Dashboard
        {...props}
        scanning
        progress={{
          [RELATION.name]: {
            relation: RELATION.name,
            scanned: 3000,
            estimatedTotal: 6620,
            counts: { ok: 2800, orphans: 150, parentInactive: 40, invalidReference: 10, excepted: 0 },
            docsPerSecond: 12_000,
            etaSeconds: 1,
          },
        }}
      />,
    );
    expect(live).toMatch(/3,000\/6,620 {2}12,000\/s {2}ETA 1s {2}orphans 150/);
    const done = frameOf(<Dashboard {...props} scanning={false} reports={{ [RELATION.name]: report() }} />);
    expect(done).toMatch(/orphans 300 {2}parent inactive 300 {2}invalid 20 {2}excepted 0/);
    expect(done).toContain('deletable 600');
    expect(done).not.toContain('ALERT');
  });

  // Issue 26 item 7: in a short terminal the relations that do not fit are left out around the selected one,
  // which is never the one cut, and the lines left out are said.
  it('keeps the selected relation in sight when not all relations fit', () => {
    const three = ['content_embeddings', 'recap_sessions', 'dubbing_sessions'].map(
      (name) => ({ ...RELATION, name }) as Relation,
    );
    const reports = Object.fromEntries(three.map((r) => [r.name, report({ name: r.name })]));
    const at = (selected: number) =>
      frameOf(
        <Dashboard
          {...props}
          relations={three}
          reports={reports}
          scanning={false}
          selected={selected}
          height={10}
        />,
      );
    const top = at(0);
    expect(top).toContain('▶ content_embeddings');
    expect(top).toMatch(/↓ [12] more relations? \(↓ shows\)/);
    const bottom = at(2);
    expect(bottom).toContain('▶ dubbing_sessions');
    expect(bottom).toMatch(/↑ [12] more relations? \(↑ shows\)/);
    expect(bottom).not.toContain('content_embeddings  ');
    // All of them when they fit.
    const all = frameOf(
      <Dashboard {...props} relations={three} reports={reports} scanning={false} selected={2} height={40} />,
    );
    for (const r of three) expect(all).toContain(r.name);
    expect(all).not.toMatch(/more relations? \(/);
  });

  // Issue 26 item 6: a crossed threshold is marked where the operator looks, with the threshold, in words that
  // stay without colour (NO_COLOR); scan figures beside live ones say when they were scanned.
  it('marks the thresholds a relation crossed, and labels scan figures shown beside live ones', () => {
    const crossed = frameOf(
      <Dashboard
        {...props}
        scanning={false}
        reports={{
          [RELATION.name]: report({
            growthPerDay: 1500,
            probeLatencyMs: { ...report().probeLatencyMs, count: 10, p95: 812 },
          }),
        }}
        thresholds={{ alertThreshold: 250, growthAlertPerDay: 1000, latencyAlertMs: 500 }}
      />,
    );
    expect(crossed).toContain(
      '▲ ALERT orphans 300 > 250 · growth 1,500/day > 1,000/day · probe p95 812 ms > 500 ms',
    );
    const at = new Date('2026-11-30T21:33:00Z');
    const live = frameOf(
      <Dashboard
        {...props}
        scanning={false}
        scannedAt={at}
        reports={{ [RELATION.name]: report() }}
        live={{
          [RELATION.name]: {
            relation: RELATION.name,
            counts: { ok: 6000, orphans: 310, parentInactive: 300, invalidReference: 20, excepted: 0 },
            at: new Date(),
            events: 3,
            resumed: false,
            churn: 3,
            series: at,
          },
        }}
      />,
    );
    expect(live).toContain('orphans 310');
    expect(live).toContain('deletable 600 as of scan 2026-11-30 21:33 UTC');
    // Today's: the time alone.
    const today = new Date();
    const now = frameOf(
      <Dashboard
        {...props}
        scanning={false}
        scannedAt={today}
        staleRelations={[RELATION.name]}
        reports={{ [RELATION.name]: report() }}
      />,
    );
    expect(now).toContain(`as of ${today.toISOString().slice(11, 16)} UTC: the last scan failed`);
  });
});

describe('RelationReview', () => {
  const base = { tab: 0, row: 0, filter: '', width: 100, height: 20 };
  it('while scanning, empty, full, and filtered', () => {
    expect(frameOf(<RelationReview {...base} report={undefined} />)).toContain('Scanning…');
    const empty = report({ samples: { ...report().samples, orphans: [] } });
    expect(frameOf(<RelationReview {...base} report={empty} />)).toContain('no samples in this category');
    const full = frameOf(<RelationReview {...base} report={report()} />);
    expect(full).toContain('[Orphans 300]');
    expect(full).toContain('1/3 samples');
    expect(full).toContain('a: every child');
    expect(frameOf(<RelationReview {...base} filter="ref-orphans-2" report={report()} />)).toContain(
      '1/1 samples',
    );
  });

  it('at 80 columns shows whole references, and whether each child is deletable now or in grace until when', () => {
    const grace = report();
    const frame = frameOf(<RelationReview {...base} width={80} report={grace} />);
    const [sample] = grace.samples.orphans;
    // With its year (issue 26 item 7).
    const until = new Date((sample.since as Date).getTime() + 7 * 86_400_000).toISOString().slice(0, 10);
    expect(frame).toContain('age · deletable');
    expect(frame).toContain(`${String(sample.reference)}`);
    expect(frame).toContain(`3d grace→${until}`);
    for (const line of frame.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    const overdue = report({ graceDays: 1 });
    expect(frameOf(<RelationReview {...base} width={80} report={overdue} />)).toContain('3d now');
    const withIds = report({
      samples: {
        ...report().samples,
        orphans: [
          { id: new ObjectId(), reference: new ObjectId('507f1f77bcf86cd799439011'), since: new Date() },
        ],
      },
    });
    expect(frameOf(<RelationReview {...base} width={80} report={withIds} />)).toContain(
      'oid 507f1f77bcf86cd799439011',
    );
  });

  it('every child of a category: loading, loaded with more to come, and a listing that failed', () => {
    const all = { relation: RELATION.name, tab: 0, rows: [], done: false, loading: true };
    expect(frameOf(<RelationReview {...base} report={report()} all={all} />)).toContain('loading…');
    const some = { ...all, rows: samples(500, 'orphans'), loading: false };
    expect(frameOf(<RelationReview {...base} report={report()} all={some} />)).toContain(
      '1/500+ of 300 children',
    );
    const failed = {
      ...all,
      loading: false,
      done: true,
      error: 'listing children by reference needs an index',
    };
    expect(frameOf(<RelationReview {...base} report={report()} all={failed} />)).toContain(
      'could not list: listing children by reference needs an index',
    );
  });
});

describe('the document of an unresolved child (issue 26 item 7)', () => {
  const since = new Date('2026-11-10T07:07:00Z');
  const sample = { id: 1, reference: 'p-9', since, doc: { _id: 1, partner_id: 'p-9' } };
  it('says why its parent is inactive — the soft-delete field, or the activeFilter — and when grace ends', () => {
    const soft = { ...RELATION, parent: { ...RELATION.parent, softDeleteField: 'deleted_at' } } as Relation;
    const frame = frameOf(
      <DocumentView
        sample={sample}
        report={report({ graceDays: 7 })}
        relation={soft}
        tab={TABS.indexOf('parentInactive')}
        scroll={0}
        expanded={false}
        height={20}
      />,
    );
    expect(frame).toContain("inactive: the parent's deleted_at is set (soft delete at 2026-11-10 07:07 UTC)");
    expect(frame).toContain('deletable since 2026-11-17 07:07 UTC (grace 7 days from the soft delete)');
    const filtered = {
      ...RELATION,
      parent: { ...RELATION.parent, activeFilter: { status: { $ne: 'suspended' } } },
    } as Relation;
    const recent = { ...sample, since: new Date(Date.now() - 86_400_000) };
    const inGrace = frameOf(
      <DocumentView
        sample={recent}
        report={report({ graceDays: 7 })}
        relation={filtered}
        tab={TABS.indexOf('parentInactive')}
        scroll={0}
        expanded={false}
        height={20}
      />,
    );
    expect(inGrace).toContain(
      'inactive: the parent does not match activeFilter {"status":{"$ne":"suspended"}}',
    );
    expect(inGrace).toMatch(
      /in grace until \d{4}-\d\d-\d\d \d\d:\d\d UTC \(7 days from first seen \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/,
    );
  });
});

describe('DocumentView', () => {
  const view = { report: report(), tab: 0, scroll: 0, expanded: false, height: 20 };
  it('a document, one being read, one that could not be read, and one gone', () => {
    const [sample] = samples(1, 'orphans');
    expect(frameOf(<DocumentView {...view} sample={sample} />)).toContain("title: 'doc 0'");
    expect(
      frameOf(<DocumentView {...view} sample={{ ...sample, doc: undefined, docState: 'loading' }} />),
    ).toContain('loading the document…');
    expect(
      frameOf(
        <DocumentView
          {...view}
          sample={{ ...sample, doc: undefined, docState: 'could not read the document: timeout' }}
        />,
      ),
    ).toContain('could not read the document: timeout');
    expect(frameOf(<DocumentView {...view} sample={{ ...sample, doc: undefined }} />)).toContain(
      'the document is no longer there',
    );
  });

  it('writes values as the shell does, collapses a long vector, and says what the scan found of the parent', () => {
    const id = new ObjectId('690a47865eac526a1b2c3d4e');
    const sample: Sample = {
      id,
      reference: id,
      doc: {
        _id: id,
        content_id: id,
        created: new Date('2026-11-01T10:00:00Z'),
        views: Long.fromString('9007199254740993'),
        price: Decimal128.fromString('9.99'),
        'odd key': "it's",
        vector: Array.from({ length: 1536 }, (_, i) => i / 1536),
        tags: ['a', 'b'],
      },
    };
    const frame = frameOf(<DocumentView {...view} sample={sample} />);
    expect(frame).toContain("_id ObjectId('690a47865eac526a1b2c3d4e')");
    expect(frame).toContain('parent in bayit.content: missing as of the last scan');
    expect(frame).toContain("created: ISODate('2026-11-01T10:00:00.000Z'),");
    expect(frame).toContain("views: Long('9007199254740993'),");
    expect(frame).toContain("price: Decimal128('9.99'),");
    expect(frame).toContain("'odd key': 'it\\'s',");
    expect(frame).toContain('vector: [1536 numbers],   (Enter expands)');
    expect(frame).toContain('lines 1-13 of 13');
    const expanded = frameOf(<DocumentView {...view} sample={sample} expanded height={30} />);
    expect(expanded).toContain('lines 1-27 of 1550');
    expect(expanded).toContain('  vector: [');
    expect(frameOf(<DocumentView {...view} tab={1} sample={sample} />)).toContain(
      ': present but inactive as of',
    );
  });
});

describe('CleanupScreen', () => {
  const plan: CleanupPlan = {
    backupRoot: '/backups',
    deleteBatchSize: 100,
    refusals: [],
    relations: [
      {
        name: RELATION.name,
        child: report().child,
        parent: report().parent,
        deletable: 600,
        toDelete: 600,
        deferred: 0,
        batches: 6,
        estimatedBackupBytes: 120_000,
        excepted: 0,
        inGrace: 0,
        invalidReference: 20,
        safe: true,
        unsafeReasons: [],
        candidates: [],
        sampled: false,
      },
    ],
  };
  const state = (overrides: Partial<CleanupState>): CleanupState => ({
    relation: RELATION.name,
    phase: 'plan',
    allowUnsafe: false,
    stopping: false,
    ...overrides,
  });
  const restoreOf = (runDir: string) => ({
    command: `orphan-cleanup restore ${runDir}`,
    needs: 'run it with OLORIN_MONGODB_URI set as in this shell',
  });
  it('planning, the plan, nothing to delete, refused, running, and the summary', () => {
    expect(frameOf(<CleanupScreen restore={restoreOf} state={state({ phase: 'planning' })} />)).toContain(
      'planning content_embeddings…',
    );
    const planned = frameOf(<CleanupScreen restore={restoreOf} state={state({ plan })} />);
    expect(planned).toContain('delete 600 of 600 deletable documents in 6 batches');
    expect(planned).toContain('guards: safe');
    const nothing = { ...plan, relations: [{ ...plan.relations[0], toDelete: 0 }] };
    expect(frameOf(<CleanupScreen restore={restoreOf} state={state({ plan: nothing })} />)).toContain(
      'Nothing to delete.',
    );
    const refused = frameOf(
      <CleanupScreen
        restore={restoreOf}
        state={state({
          phase: 'error',
          plan,
          error: 'cleanup refused: OLORIN_USE_SEPARATE_DATABASE is not set; nothing was deleted',
        })}
      />,
    );
    expect(refused).toContain('Plan for content_embeddings');
    expect(refused).toContain(
      'cleanup not started: cleanup refused: OLORIN_USE_SEPARATE_DATABASE is not set',
    );
    const running = frameOf(
      <CleanupScreen
        restore={restoreOf}
        state={state({
          phase: 'running',
          plan,
          stopping: true,
          progress: {
            relation: RELATION.name,
            batch: 2,
            batches: 6,
            backedUp: 200,
            deleted: 200,
            skipped: 0,
            docsPerSecond: 400,
            etaSeconds: 1,
          },
        })}
      />,
    );
    expect(running).toContain('stopping after the current batch…');
    expect(running).toMatch(/batch 2\/6 · backed up 200 · deleted 200/);
  });
});

describe('lists', () => {
  const exception: ExceptionEntry = {
    relation: RELATION.name,
    kind: 'reference',
    value: 'ref-1',
    valueKey: 'sref-1',
    reason: 'legal hold',
    createdBy: 'ops',
    createdAt: new Date('2026-11-01'),
  };
  it('exceptions: loading, none, and some', () => {
    expect(frameOf(<ExceptionsScreen entries={undefined} row={0} filter="" height={20} />)).toContain(
      'loading exceptions…',
    );
    expect(frameOf(<ExceptionsScreen entries={[]} row={0} filter="" height={20} />)).toContain(
      'none; press x',
    );
    const some = frameOf(<ExceptionsScreen entries={[exception]} row={0} filter="" height={20} />);
    expect(some).toContain('legal hold');
    expect(some).toContain('no expiry');
  });

  it('backups: loading, none, and one with what a verify said', () => {
    expect(
      frameOf(<RecoveryScreen backups={undefined} folder="/b" row={0} lines={[]} height={20} />),
    ).toContain('loading backups…');
    expect(frameOf(<RecoveryScreen backups={[]} folder="/b" row={0} lines={[]} height={20} />)).toContain(
      'no backups yet',
    );
    const one = frameOf(
      <RecoveryScreen
        backups={[
          {
            dir: '/b/run-1',
            runId: 'run-1',
            status: 'completed',
            operator: 'ops',
            createdAt: '2026-11-30T10:00:00Z',
            relations: [{ name: RELATION.name, backedUp: 600, deleted: 600 }],
          },
        ]}
        folder="/srv/backups/orphan-cleanup"
        row={0}
        lines={['verify content_embeddings: 600 backed up, 0 present, 600 absent']}
        height={20}
      />,
    );
    expect(one).toContain('run-1');
    expect(one).toContain('600 absent');
    // The folder the list is read from is named (issue 26 item 5): a second terminal's restore --find can be
    // pointed at the same one.
    expect(one).toContain('in /srv/backups/orphan-cleanup');
  });

  it('history: loading and runs', () => {
    expect(frameOf(<HistoryScreen runs={undefined} row={0} height={20} />)).toContain('loading history…');
    const run: RunRecord = {
      runId: 'run-9',
      kind: 'scan',
      relation: RELATION.name,
      startedAt: new Date('2026-11-30T10:00:00Z'),
      finishedAt: new Date('2026-11-30T10:00:01Z'),
      durationMs: 1000,
      operator: 'ops',
      host: 'h',
      outcome: 'aborted',
      complete: false,
      counts: { scanned: 5000 },
    };
    const frame = frameOf(<HistoryScreen runs={[run]} row={0} height={20} />);
    expect(frame).toContain('aborted');
    expect(frame).toContain(RELATION.name);
  });
});

describe('SettingsScreen', () => {
  it('unsaved and without profiles, then saved with a flag-set value and a read-only profile', () => {
    const bare = frameOf(
      <SettingsScreen
        settings={{ backupRoot: '/b', batchSize: 1000 }}
        info={{ fromFlags: [], profiles: [] }}
        row={0}
      />,
    );
    expect(bare).toContain('this session does not save settings');
    expect(bare).toContain('(not set: your login name)');
    expect(bare).toContain('none yet');
    const full = frameOf(
      <SettingsScreen
        settings={{ operator: 'alice', backupRoot: '/b', batchSize: 250 }}
        info={{
          file: '/home/a/.config/oc.json',
          activeProfile: 'prod',
          fromFlags: ['backupRoot'],
          profiles: [{ name: 'prod', sources: ['olorin=env:OLORIN_URI'], readOnly: true }],
        }}
        row={2}
      />,
    );
    expect(full).toContain('saved in /home/a/.config/oc.json');
    expect(full).toMatch(/backup root +\/b +\(set by a flag for this session\)/);
    expect(full).toContain('Connection profiles (this session: prod)');
    expect(full).toContain('prod [read-only]: olorin=env:OLORIN_URI');
  });
});
