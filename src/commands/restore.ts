import { findBackupsOf, restoreBackup, verifyBackup } from '../cleanup/restore.ts';
import { RuntimeError, UsageError } from '../errors.ts';
import { DEFAULT_BACKUP_ROOT } from '../limits.ts';
import { type EngineFlags, withEngine } from './engine-session.ts';

export interface RestoreFlags extends EngineFlags {
  relation?: string[];
  ref?: string;
  dryRun?: boolean;
  json?: boolean;
  operator?: string;
  includeUnverifiedTail?: boolean;
  /** List the backups holding children of this reference instead of restoring. */
  find?: string;
  backupDir?: string;
}

/**
 * `restore --find REF`: every backup under the backup root holding children of a reference (run, date,
 * relation, count), read from the files alone. Exit 1 when none does.
 */
async function runFind(ref: string, flags: RestoreFlags): Promise<number> {
  const root = flags.backupDir ?? DEFAULT_BACKUP_ROOT;
  const { holdings, unreadable, searched } = await findBackupsOf(ref, root);
  if (flags.json) process.stdout.write(`${JSON.stringify({ holdings, unreadable }, null, 2)}\n`);
  else {
    const rows = [
      ['run', 'created', 'relation', 'children', 'restore with'],
      ...holdings.map((h) => [
        h.runId,
        h.createdAt.slice(0, 19).replace('T', ' '),
        h.relation,
        h.children.toLocaleString('en-US'),
        `orphan-cleanup restore ${h.dir} --ref ${ref}`,
      ]),
    ];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    if (holdings.length)
      for (const row of rows)
        process.stdout.write(
          `${row
            .map((cell, i) => cell.padEnd(widths[i]))
            .join('  ')
            .trimEnd()}\n`,
        );
    for (const problem of unreadable) process.stderr.write(`skipped (failed its checks): ${problem}\n`);
  }
  if (holdings.length === 0)
    throw new RuntimeError(`reference ${ref}: no child of it in the ${searched} backups under ${root}`);
  return 0;
}

function onlyRelation(flags: RestoreFlags): string | undefined {
  return flags.relation?.[0];
}

/** `orphan-cleanup restore <runDir>`: verifies the backup, then inserts the documents that are absent. */
export async function runRestoreCommand(runDir: string | undefined, flags: RestoreFlags): Promise<number> {
  if (flags.find !== undefined) {
    if (runDir !== undefined)
      throw new UsageError('--find searches every backup: give it without a run directory');
    return runFind(flags.find, flags);
  }
  if (runDir === undefined)
    throw new UsageError('restore needs a backup run directory (or --find REF to look for one)');
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
