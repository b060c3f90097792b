import { restoreBackup, verifyBackup } from '../cleanup/restore.ts';
import { RuntimeError } from '../errors.ts';
import { type EngineFlags, withEngine } from './engine-session.ts';

export interface RestoreFlags extends EngineFlags {
  relation?: string[];
  ref?: string;
  dryRun?: boolean;
  json?: boolean;
  operator?: string;
  includeUnverifiedTail?: boolean;
}

function onlyRelation(flags: RestoreFlags): string | undefined {
  return flags.relation?.[0];
}

/** `orphan-cleanup restore <runDir>`: verifies the backup, then inserts the documents that are absent. */
export async function runRestoreCommand(runDir: string, flags: RestoreFlags): Promise<number> {
  // The backup names its own relations; the config only has to know their sources.
  return withEngine(
    { ...flags, relation: undefined },
    async ({ config, pool, access }) => {
      const result = await restoreBackup(runDir, {
        config,
        pool,
        access,
        selection: {
          relation: onlyRelation(flags),
          ref: flags.ref,
          includeUnverifiedTail: Boolean(flags.includeUnverifiedTail),
        },
        dryRun: Boolean(flags.dryRun),
        operator: flags.operator,
      });
      const selected = result.relations.reduce((sum, r) => sum + r.selected, 0);
      if (selected === 0)
        throw new RuntimeError(
          `nothing to restore: ${flags.ref !== undefined ? `no child of reference ${flags.ref} is in` : 'no document selected from'} ${runDir}${result.notes.length ? ` (${result.notes.join('; ')})` : ''}`,
        );
      if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        for (const note of result.notes) process.stdout.write(`note: ${note}\n`);
        const verb = result.dryRun ? 'would insert' : 'inserted';
        for (const r of result.relations) {
          process.stdout.write(
            `${r.name}: ${r.database}.${r.collection}: ${verb} ${r.inserted} of ${r.selected}, ${r.skippedExisting} already present\n`,
          );
        }
        if (result.relations.every((r) => r.inserted === 0))
          process.stdout.write(
            `nothing to restore: all ${selected} selected documents are already present\n`,
          );
        if (result.dryRun) process.stdout.write('dry run: nothing was written\n');
      }
      return 0;
    },
    'children',
  );
}

/** `orphan-cleanup verify <runDir>`: how many backed-up documents are present in the database, and absent. */
export async function runVerifyCommand(runDir: string, flags: RestoreFlags): Promise<number> {
  return withEngine(
    { ...flags, relation: undefined },
    async ({ config, pool }) => {
      const result = await verifyBackup(runDir, {
        config,
        pool,
        selection: {
          relation: onlyRelation(flags),
          ref: flags.ref,
          includeUnverifiedTail: Boolean(flags.includeUnverifiedTail),
        },
      });
      if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        for (const note of result.notes) process.stdout.write(`note: ${note}\n`);
        for (const r of result.relations) {
          process.stdout.write(
            `${r.name}: ${r.database}.${r.collection}: ${r.backedUp} backed up, ${r.present} present, ${r.absent} absent\n`,
          );
        }
      }
      return 0;
    },
    'children',
  );
}
