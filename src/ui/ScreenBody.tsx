import type { useAllChildren } from './hooks/use-all-children.ts';
import type { LiveState } from './hooks/use-live-counts.ts';
import { type ConsoleState, visibleBackups } from './hooks/use-console-actions.ts';
import { CleanupScreen } from './screens/Cleanup.tsx';
import { Dashboard } from './screens/Dashboard.tsx';
import { ExceptionsScreen, HistoryScreen, RecoveryScreen } from './screens/Lists.tsx';
import { DocumentView, RelationReview, visibleSamples } from './screens/RelationReview.tsx';
import { SettingsScreen } from './screens/Settings.tsx';
import type { ConsoleServices } from './services.ts';
import type { View } from './state/reducer.ts';

/** The screen of the current view, drawn from the console's state. */
export function ScreenBody({
  view,
  selected,
  state,
  services,
  all,
  live,
  liveStale,
  width,
  height,
}: {
  view: View;
  selected: number;
  state: ConsoleState;
  services: ConsoleServices;
  all: ReturnType<typeof useAllChildren>['all'];
  live: LiveState['counts'];
  liveStale?: Record<string, string>;
  width: number;
  height: number;
}) {
  switch (view.name) {
    case 'dashboard':
      return (
        <Dashboard
          relations={services.relations}
          selected={selected}
          progress={state.progress}
          reports={state.reports}
          trends={state.trends}
          scanning={state.scanning}
          scannedAt={state.scannedAt}
          staleRelations={state.staleRelations}
          live={live}
          liveStale={liveStale}
          thresholds={services.thresholds}
          width={width}
          height={height}
        />
      );
    case 'relation':
      return (
        <RelationReview
          report={state.reports[view.relation]}
          scanning={state.scanning}
          tab={view.tab}
          row={view.row}
          filter={view.filter}
          all={all}
          width={width}
          height={height}
        />
      );
    case 'document':
      return (
        <DocumentView
          sample={visibleSamples(state.reports[view.relation], view.tab, '', all?.rows)[view.index]}
          report={state.reports[view.relation]}
          relation={services.relations.find((r) => r.name === view.relation)}
          tab={view.tab}
          scroll={view.scroll}
          expanded={Boolean(view.expanded)}
          height={height}
        />
      );
    case 'cleanup':
      return state.cleanup ? <CleanupScreen state={state.cleanup} restore={services.restoreCommand} /> : null;
    case 'exceptions':
      return (
        <ExceptionsScreen
          entries={state.exceptions}
          row={view.row}
          filter={view.filter}
          detail={view.detail}
          height={height}
        />
      );
    case 'recovery':
      return (
        <RecoveryScreen
          backups={state.backups && visibleBackups(state)}
          found={state.found?.ref}
          folder={services.settings.backupRoot}
          row={view.row}
          preview={state.preview}
          lines={state.recoveryLines}
          height={height}
        />
      );
    case 'history':
      return (
        <HistoryScreen
          runs={state.history}
          row={view.row}
          kind={view.kind}
          detail={view.detail}
          height={height}
        />
      );
    case 'settings':
      return <SettingsScreen settings={services.settings} info={services.settingsInfo()} row={view.row} />;
  }
}
