import { ProgressBar } from '@inkjs/ui';
import { Box, Text } from 'ink';
import Spinner from 'ink-spinner';
import type { CleanupProgress, CleanupResult } from '../../cleanup/execute.ts';
import type { CleanupPlan } from '../../cleanup/plan.ts';
import { formatBatches } from '../../engine/format.ts';
import { bytes, count, theme } from '../theme.ts';

export type CleanupPhase = 'planning' | 'plan' | 'running' | 'summary' | 'error';

export interface CleanupState {
  relation: string;
  phase: CleanupPhase;
  plan?: CleanupPlan;
  progress?: CleanupProgress;
  result?: CleanupResult;
  error?: string;
  allowUnsafe: boolean;
  stopping: boolean;
}

function PlanPanel({ plan }: { plan: CleanupPlan }) {
  const [r] = plan.relations;
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text bold>Plan for {r.name}</Text>
      <Text>
        delete {count(r.toDelete)} of {count(r.deletable)} deletable documents in{' '}
        {formatBatches(r.batches, plan.deleteBatchSize)}
      </Text>
      <Text>
        kept: {count(r.excepted)} excepted, {count(r.inGrace)} in grace, {count(r.invalidReference)} invalid
        references (never deleted)
      </Text>
      <Text>
        backup first: ~{bytes(r.estimatedBackupBytes)} to {plan.backupRoot}/&lt;run id&gt;/{r.child.database}/
        {r.child.collection}.bson
      </Text>
      <Text>each batch: re-read, parents re-checked, backed up + fsynced, then deleted</Text>
      {r.safe ? (
        <Text color={theme.color('ok')}>guards: safe</Text>
      ) : (
        <Text color={theme.color('danger')}>guards: UNSAFE: {r.unsafeReasons.join('; ')}</Text>
      )}
      {plan.refusals.map((refusal) => (
        <Text key={refusal} color={theme.color('danger')}>
          refused: {refusal}
        </Text>
      ))}
    </Box>
  );
}

export function CleanupScreen({
  state,
  restore,
}: {
  state: CleanupState;
  /** The restore command for a run directory, as printed, and what a shell running it needs. */
  restore: (runDir: string) => { command: string; needs: string };
}) {
  const { phase, plan, progress, result } = state;
  if (phase === 'planning') {
    return (
      <Text>
        <Spinner type="dots" /> planning {state.relation}…
      </Text>
    );
  }
  if (phase === 'error')
    return (
      <Box flexDirection="column">
        {plan && <PlanPanel plan={plan} />}
        <Text color={theme.color('danger')}>
          {state.result || state.progress ? 'cleanup failed' : 'cleanup not started'}: {state.error}
        </Text>
      </Box>
    );
  return (
    <Box flexDirection="column">
      {/* Once the run is over its summary replaces the plan (which it repeats in figures): the box fits 80x24 whole. */}
      {plan && phase !== 'summary' && <PlanPanel plan={plan} />}
      {phase === 'plan' && plan?.relations[0].toDelete === 0 && (
        <Text>Nothing to delete. Esc goes back.</Text>
      )}
      {phase === 'running' && (
        <Box flexDirection="column">
          <Box>
            <Spinner type="dots" />
            <Text> {state.stopping ? 'stopping after the current batch…' : 'deleting'} </Text>
            <Box width={24}>
              <ProgressBar value={progress ? (progress.batch / Math.max(1, progress.batches)) * 100 : 0} />
            </Box>
          </Box>
          {progress && (
            <Text>
              batch {progress.batch}/{progress.batches} · backed up {count(progress.backedUp)} · deleted{' '}
              {count(progress.deleted)} · kept by re-check {count(progress.skipped)} ·{' '}
              {count(Math.round(progress.docsPerSecond))}/s
              {progress.etaSeconds !== undefined ? ` · ETA ${Math.ceil(progress.etaSeconds)}s` : ''}
            </Text>
          )}
        </Box>
      )}
      {phase === 'summary' && result && (
        <Box
          flexDirection="column"
          borderStyle="round"
          paddingX={1}
          borderColor={theme.color(result.status === 'completed' ? 'ok' : 'warn')}
        >
          <Text bold>
            Run {result.runId}: {result.status}
            {result.error ? ` (${result.error})` : ''}
          </Text>
          {result.relations.map((r) => (
            <Text key={r.name}>
              {r.name}: backed up {count(r.backedUp)}, deleted {count(r.deleted)} of {count(r.planned)}; kept
              by re-check:{' '}
              {Object.entries(r.skipped)
                .filter(([, n]) => n)
                .map(([reason, n]) => `${reason} ${n}`)
                .join(', ') || 'none'}
              {r.mismatch ? `; WARNING ${r.mismatch} backed up but not deleted` : ''}
              {r.collectionBytesBefore !== undefined && r.collectionBytesAfter !== undefined
                ? `; collection ${count(r.collectionBytesBefore)} → ${count(r.collectionBytesAfter)} bytes`
                : ''}
            </Text>
          ))}
          {result.runDir ? (
            <RestoreLines runDir={result.runDir} restore={restore(result.runDir)} />
          ) : (
            <Text>nothing was backed up or deleted: there is nothing to restore</Text>
          )}
        </Box>
      )}
    </Box>
  );
}

/** Where the run's backup is, the command that restores it (worked out once), and what that command needs. */
function RestoreLines({ runDir, restore }: { runDir: string; restore: { command: string; needs: string } }) {
  return (
    <>
      <Text>backup: {runDir}</Text>
      <Text color={theme.color('accent')}>restore: {restore.command}</Text>
      <Text color={theme.color('dim')}>
        y copies it; it is printed again when you quit{restore.needs ? `; ${restore.needs}` : ''}.
      </Text>
    </>
  );
}
