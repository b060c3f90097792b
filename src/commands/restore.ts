import {
  findBackupsOf,
  parentUnresolved,
  type RestoreResult,
  restoreBackup,
  restoreCommandFor,
  shellQuote,
  verifyBackup,
} from '../cleanup/restore.ts';
import type { Document } from 'mongodb';
import { loadConfig, type ResolvedConfig } from '../config/load.ts';
import { ExitCode, UsageError } from '../errors.ts';
import { canonicalKey, valuesForKey } from '../mongo/keys.ts';
import { redact } from '../mongo/redact.ts';
import { SourcePool } from '../mongo/sources.ts';
import { parseValueArgument, valueArgument } from '../store/exception-input.ts';
import { escapeForTerminal } from '../terminal-text.ts';
import { defaultBackupRoot } from '../limits.ts';
import { type EngineFlags, type EngineSession, withEngine } from './engine-session.ts';

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
  const root = flags.backupDir ?? defaultBackupRoot();
  const { holdings, unreadable, searched } = await findBackupsOf(ref, root);
  if (flags.json) process.stdout.write(`${JSON.stringify({ holdings, unreadable }, null, 2)}\n`);
  else {
    const rows = [
      ['run', 'created', 'relation', 'children', 'restore with'],
      // Read from manifests and directory names: escaped for the terminal, and the command quoted as clean's is.
      ...holdings.map((h) => [
        escapeForTerminal(h.runId),
        escapeForTerminal(h.createdAt.slice(0, 19).replace('T', ' ')),
        escapeForTerminal(h.relation),
        h.children.toLocaleString('en-US'),
        `${restoreCommandFor(h.dir)} --ref ${shellQuote(valueArgument(parseValueArgument(ref)))}`,
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
    for (const problem of unreadable)
      process.stderr.write(`skipped (failed its checks): ${escapeForTerminal(problem)}\n`);
  }
  if (holdings.length === 0) {
    process.stderr.write(
      `orphan-cleanup: reference ${escapeForTerminal(ref)}: no child of it in the ${searched} backups under ${escapeForTerminal(root)}; ${await childrenInDatabase(ref, flags)}\n`,
    );
    return ExitCode.NothingSelected;
  }
  return 0;
}

/**
 * For a reference in no backup: how many of its children each relation's child collection holds now (so the
 * operator knows whether there is anything to recover), when the configuration and the child URIs are at hand;
 * otherwise what to give to know. Bounded by maxTimeMS per count.
 */
async function childrenInDatabase(ref: string, flags: RestoreFlags): Promise<string> {
  let config: ResolvedConfig;
  try {
    config = await loadConfig({
      configPath: flags.config,
      sourceOverrides: flags.source,
      sourcesNeeded: 'children',
    });
  } catch {
    return 'give --config and the child URIs to count its children in the database';
  }
  const pool = new SourcePool(config.sources, { maxTimeMS: config.maxTimeMS });
  try {
    const counts: string[] = [];
    for (const relation of config.relations) {
      const key = canonicalKey(parseValueArgument(ref), relation.keyMatch);
      if (key === undefined) continue;
      const n = await (await pool.db(relation.child.source))
        .collection(relation.child.collection)
        .countDocuments(
          { [relation.child.field]: { $in: valuesForKey(key, relation.keyMatch) } } as Document,
          {
            maxTimeMS: config.maxTimeMS,
          },
        );
      counts.push(`${relation.name} ${n.toLocaleString('en-US')}`);
    }
    return `its children in the database now: ${counts.join(', ') || 'none of the relations can hold it'}`;
  } catch (error) {
    return `its children in the database could not be counted (${redact((error as Error).message)})`;
  } finally {
    await pool.close();
  }
}

/**
 * After restoring the children of one reference: says when its parent is still missing or inactive (the
 * restored children are orphans again, in grace). The restore is complete whatever this check finds; a parent
 * source that goes silent during it ends the command with a line that says so.
 */
async function warnIfParentStillMissing(
  ref: string,
  result: RestoreResult,
  { config, pool, activity }: Pick<EngineSession, 'config' | 'pool' | 'activity'>,
): Promise<void> {
  const inserted = result.relations.reduce((sum, r) => sum + r.inserted, 0);
  for (const r of result.relations) {
    if (r.inserted === 0) continue;
    const relation = config.relations.find((candidate) => candidate.name === r.name);
    if (!relation || !config.sources[relation.parent.source]) continue;
    activity.command = 'the parent check after the restore';
    activity.doing = `checking whether parent ${ref} of ${r.name} exists on ${relation.parent.source}`;
    activity.done = `the restore itself is complete: ${inserted} inserted`;
    activity.next = `run scan when {source} answers to see whether the restored children are orphans again`;
    const unresolved = await parentUnresolved(config, pool, r.name, ref);
    if (unresolved)
      process.stderr.write(
        `warning: the ${r.inserted} restored children of ${r.name} are orphans again: ${unresolved}\n`,
      );
  }
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
    async ({ config, pool, access, activity }) => {
      activity.command = flags.dryRun ? 'restore dry run' : 'restore';
      activity.next = flags.dryRun
        ? 'nothing was written; run it again when {source} answers'
        : 'every document is still in the backup: run the same restore again when {source} answers (documents already present are skipped)';
      // The parent check after a restore by reference needs the parent sources: connected in the background,
      // so a parent cluster that is down never holds up the restore itself.
      if (flags.ref !== undefined && !flags.dryRun)
        for (const relation of config.relations)
          if (config.sources[relation.parent.source])
            pool.client(relation.parent.source).catch(() => undefined);
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
        onActivity: (doing, done) => {
          activity.doing = doing;
          activity.done = done;
        },
      });
      const selected = result.relations.reduce((sum, r) => sum + r.selected, 0);
      if (selected === 0) {
        process.stderr.write(
          `orphan-cleanup: nothing to restore: ${flags.ref !== undefined ? `no child of reference ${escapeForTerminal(flags.ref)} is in` : 'no document selected from'} ${escapeForTerminal(runDir)}${result.notes.length ? ` (${result.notes.join('; ')})` : ''}\n`,
        );
        return ExitCode.NothingSelected;
      }
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
      if (flags.ref !== undefined && !result.dryRun)
        await warnIfParentStillMissing(flags.ref, result, { config, pool, activity });
      // Nothing inserted (or, in a dry run, nothing that would be): every selected document is present.
      return result.relations.every((r) => r.inserted === 0) ? ExitCode.AllPresent : ExitCode.Ok;
    },
    flags.ref !== undefined && !flags.dryRun ? 'children-and-given-parents' : 'children',
  );
}

/** `orphan-cleanup verify <runDir>`: how many backed-up documents are present in the database, and absent. */
export async function runVerifyCommand(runDir: string, flags: RestoreFlags): Promise<number> {
  return withEngine(
    { ...flags, relation: undefined },
    async ({ config, pool, activity }) => {
      activity.command = 'verify';
      activity.next = 'nothing was written; run verify again when {source} answers';
      const result = await verifyBackup(runDir, {
        config,
        pool,
        onActivity: (doing) => {
          activity.doing = doing;
        },
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
      if (result.relations.every((r) => r.backedUp === 0)) return ExitCode.NothingSelected;
      return result.relations.some((r) => r.absent > 0) ? ExitCode.SomeAbsent : ExitCode.Ok;
    },
    'children',
  );
}
