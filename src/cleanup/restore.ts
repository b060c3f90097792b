import { realpathSync } from 'node:fs';
import { delimiter, dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BSON, type Document } from 'bson';
import type { ResolvedConfig } from '../config/load.ts';
import { utcMinute } from '../engine/format.ts';
import { ParentProbe } from '../engine/probe.ts';
import { describeId } from '../engine/scan.ts';
import { RuntimeError, UsageError } from '../errors.ts';
import { DAY_MS } from '../limits.ts';
import { canonicalKey, referenceKeyOf } from '../mongo/keys.ts';
import { redact } from '../mongo/redact.ts';
import type { SourcePool } from '../mongo/sources.ts';
import { majorityWrite } from '../mongo/timeouts.ts';
import { assertWritable, type WriteAccess } from '../store/access.ts';
import { parseValueArgument } from '../store/exception-input.ts';
import { FirstSeenStore } from '../store/first-seen.ts';
import { currentHost, currentOperator, newRunId, RunsStore } from '../store/runs.ts';
import { escapeForTerminal } from '../terminal-text.ts';
import { appendAudit } from './audit.ts';
import type { ManifestRelation } from './backup.ts';
import { type BackupContents, type BackupFileCheck, backupDocuments, readBackup } from './backup-reader.ts';

const INSERT_BATCH = 1000;
/** A batch also ends at this many bytes of documents: memory follows it, whatever the documents' size. */
const BATCH_BYTES = 16 * 1024 * 1024;

export interface RestoreSelection {
  relation?: string;
  /** Only the children of this parent: a reference value, matched as the relation matches keys. */
  ref?: string;
  /**
   * Also the complete documents written after the last checksummed batch of an interrupted run (a batch
   * cut off before its manifest update): never checksummed, so only on request, each one named.
   */
  includeUnverifiedTail?: boolean;
}

export interface RelationRestore {
  name: string;
  database: string;
  collection: string;
  /** Backed-up documents selected for restore. */
  selected: number;
  inserted: number;
  /** Already present (`_id` exists): insert-only, never overwritten. */
  skippedExisting: number;
}

export interface RestoreResult {
  runDir: string;
  runId: string;
  dryRun: boolean;
  relations: RelationRestore[];
  notes: string[];
}

/** The command that restores a run's backup, the path quoted for a POSIX shell when it needs it. */
export function restoreCommandFor(
  runDir: string,
  config?: Pick<ResolvedConfig, 'configPath' | 'sources'>,
): string {
  return `${cliInvocation()} restore ${shellQuote(resolvePath(runDir))}${config?.configPath ? ` --config ${shellQuote(config.configPath)}` : ''}`;
}

/**
 * What a printed restore command needs from the shell it is pasted into, in words (empty when nothing): the
 * environment variables the child sources' URIs come from (named, never their values), and any URI given with
 * `--source`, which it must be given again.
 */
export function restoreNeeds(config: Pick<ResolvedConfig, 'sources' | 'relations'>): string {
  const env = new Set<string>();
  const flags = new Set<string>();
  const children = new Set(config.relations.map((relation) => relation.child.source));
  for (const source of Object.values(config.sources)) {
    if (!children.has(source.name)) continue;
    if (source.uriFrom && 'env' in source.uriFrom) env.add(source.uriFrom.env);
    else if (source.uriFrom) flags.add(`--source ${source.name}=URI`);
  }
  const parts = [
    ...(env.size ? [`${[...env].join(', ')} set as in this shell`] : []),
    ...(flags.size ? [`${[...flags].join(' ')} as given to this run`] : []),
  ];
  return parts.length ? `run it with ${parts.join(', and ')}` : '';
}

/** The package's own launcher: what a printed command runs. */
const LAUNCHER = fileURLToPath(new URL('../../bin/orphan-cleanup', import.meta.url));
let invocation: string | undefined;

/**
 * How a printed command starts so that it runs as printed from any shell: `orphan-cleanup` when that name on
 * the PATH is this very launcher (installed), else the launcher's absolute path (a checkout, npx).
 */
function cliInvocation(): string {
  invocation ??= findInvocation();
  return invocation;
}

function findInvocation(): string {
  let target: string;
  try {
    target = realpathSync(LAUNCHER);
  } catch {
    return 'orphan-cleanup';
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    try {
      if (realpathSync(join(dir, 'orphan-cleanup')) === target) return 'orphan-cleanup';
    } catch {
      // Not there.
    }
  }
  return shellQuote(target);
}

/**
 * A word for a shell: as is when it holds only safe characters, else in single quotes; a word holding a
 * character a terminal would act on (controls, bidirectional overrides) in `$'…'` with those characters as
 * escapes (bash, zsh, ksh), so the printed command runs as printed and never acts on the terminal showing it.
 */
export function shellQuote(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  if (!TERMINAL_ACTIVE.test(word)) return `'${word.replace(/'/g, "'\\''")}'`;
  const escaped = [...word]
    .map((char) => {
      if (char === '\\') return '\\\\';
      if (char === "'") return "\\'";
      if (!TERMINAL_ACTIVE.test(char)) return char;
      const code = char.codePointAt(0)!;
      return code <= 0xff
        ? `\\x${code.toString(16).padStart(2, '0')}`
        : `\\u${code.toString(16).padStart(4, '0')}`;
    })
    .join('');
  return `$'${escaped}'`;
}

/** Characters a terminal acts on: C0 and C1 controls, DEL, bidirectional marks and overrides. */
const TERMINAL_ACTIVE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/**
 * A manifest relation must be the configured relation's child, as the configuration says it is: the manifest
 * cannot send documents to another database or collection.
 */
function assertConfiguredChild(
  backup: BackupContents,
  relation: ManifestRelation,
  config: ResolvedConfig,
): void {
  const configured = config.relations.find((r) => r.name === relation.name);
  const where = `${backup.dir}: manifest relation ${relation.name}`;
  if (!configured)
    throw new UsageError(
      `${where} is not a relation of the configuration (${config.origin}); nothing was restored`,
    );
  const source = config.sources[configured.child.source];
  const expected = {
    source: configured.child.source,
    database: source?.database,
    collection: configured.child.collection,
  };
  for (const field of ['source', 'database', 'collection'] as const)
    if (relation[field] !== expected[field])
      throw new RuntimeError(
        `${where}: ${field} ${JSON.stringify(relation[field])} is not the configured child's (${JSON.stringify(expected[field])}); nothing was restored`,
      );
}

interface WriteErrorLike {
  index?: number;
  code?: number;
  errmsg?: string;
  err?: { index?: number; errmsg?: string; keyPattern?: Document };
  keyPattern?: Document;
}

/** A duplicate key on `_id` itself (the document is there already), not on another unique index. */
function isDuplicateId(error: WriteErrorLike): boolean {
  if (error.code !== 11000) return false;
  const pattern = error.keyPattern ?? error.err?.keyPattern;
  if (pattern) return Object.keys(pattern).length === 1 && Object.keys(pattern)[0] === '_id';
  return / index: _id_ /.test(String(error.errmsg ?? error.err?.errmsg ?? ''));
}

interface SelectedRelation {
  relation: ManifestRelation;
  file: BackupFileCheck;
  /** The reference's canonical key when only its children are selected. */
  wanted?: string;
  /** How many documents are read (before a `--ref` filter): the file's, each `_id` once. */
  documents: number;
}

/** Which relations of a checked backup are restored, and the notes its files call for (tail, cut document). */
function selectRelations(
  backup: BackupContents,
  selection: RestoreSelection,
  /** Checked to know each relation's child source; absent when nothing is written or read back (`--find`). */
  config: ResolvedConfig | undefined,
): { selected: SelectedRelation[]; notes: string[] } {
  const { manifest } = backup;
  const notes: string[] = [];
  if (config) for (const relation of manifest.relations) assertConfiguredChild(backup, relation, config);
  if (selection.relation && !manifest.relations.some((r) => r.name === selection.relation)) {
    throw new UsageError(
      `relation ${selection.relation}: not in this backup (it holds ${manifest.relations.map((r) => r.name).join(', ') || 'nothing'})`,
    );
  }
  const noted = new Set<string>();
  const selected: SelectedRelation[] = [];
  for (const relation of manifest.relations) {
    if (selection.relation && relation.name !== selection.relation) continue;
    const file = backup.files.get(relation.file);
    if (!file) throw new UsageError(`${backup.dir}: manifest lists ${relation.file} but has no entry for it`);
    if (!noted.has(relation.file)) {
      noted.add(relation.file);
      const more = file.tailDocuments - file.tailIds.length;
      const ids = `${file.tailIds.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
      if (file.tailDocuments && selection.includeUnverifiedTail)
        notes.push(
          `${relation.file}: including ${file.tailDocuments} unverified documents written after the last checksummed batch: ${ids}`,
        );
      else if (file.tailDocuments)
        notes.push(
          `${relation.file}: ${file.tailDocuments} documents after the last checksummed batch (an interrupted batch) are not restored: no checksum covers them; --include-unverified-tail restores them`,
        );
      if (file.truncatedTailBytes)
        notes.push(
          `${relation.file}: ignored ${file.truncatedTailBytes} bytes of a document cut off mid-write (never deleted)`,
        );
    }
    let wanted: string | undefined;
    if (selection.ref !== undefined) {
      // In any notation the tool displays (ObjectId(…), oid …, "text"): what is copied from a screen works.
      wanted = canonicalKey(parseValueArgument(selection.ref), relation.keyMatch);
      if (wanted === undefined)
        throw new UsageError(
          `reference ${escapeForTerminal(selection.ref)} is not a valid key for relation ${relation.name} (${relation.keyMatch})`,
        );
    }
    const withTail = Boolean(selection.includeUnverifiedTail);
    const documents =
      file.entry.documents +
      (withTail ? file.tailDocuments : 0) -
      (withTail ? file.superseded.withTail : file.superseded.recorded).size;
    selected.push({ relation, file, wanted, documents });
  }
  return { selected, notes };
}

/**
 * A selected relation's documents, a batch at a time, read from its file as they are needed (memory follows
 * the batch, not the backup): each `_id` once (the last copy), only the reference's children with `--ref`.
 * Wrapper types (Int32, Double, Long) keep every value's BSON type, so a restore is byte-exact.
 */
async function* documentBatches(
  { relation, file, wanted }: SelectedRelation,
  withTail: boolean,
  size = INSERT_BATCH,
): AsyncGenerator<Document[]> {
  let batch: Document[] = [];
  let bytes = 0;
  for await (const raw of backupDocuments(file, withTail)) {
    const doc = BSON.deserialize(raw, { promoteValues: false });
    if (wanted !== undefined && referenceKeyOf(doc, relation.field, relation.keyMatch) !== wanted) continue;
    batch.push(doc);
    bytes += raw.length;
    if (batch.length >= size || bytes >= BATCH_BYTES) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length) yield batch;
}

/**
 * Puts backed-up documents back, insert-only: the backup is verified first (checksums, whole documents),
 * so a corrupted backup inserts nothing; documents whose `_id` exists are skipped and counted.
 */
export async function restoreBackup(
  runDir: string,
  options: {
    config: ResolvedConfig;
    pool: SourcePool;
    access: WriteAccess;
    selection: RestoreSelection;
    dryRun: boolean;
    operator?: string;
    /** Told before each batch: what is being done and what is done so far (for a silent source's line). */
    onActivity?: (doing: string, done: string) => void;
  },
): Promise<RestoreResult> {
  const backup = await readBackup(runDir);
  const { selected, notes } = selectRelations(backup, options.selection, options.config);
  const withTail = Boolean(options.selection.includeUnverifiedTail);
  if (!options.dryRun) assertWritable(options.access, 'restore documents');
  const results: RelationRestore[] = [];
  const started = new Date();
  for (const chosen of selected) {
    const { relation } = chosen;
    const source = options.config.sources[relation.source];
    if (!source)
      throw new UsageError(
        `backup relation ${relation.name} uses source '${relation.source}', which the configuration does not define`,
      );
    const db = (await options.pool.primaryDb(relation.source)).client.db(relation.database);
    const coll = db.collection(relation.collection);
    const result: RelationRestore = {
      name: relation.name,
      database: relation.database,
      collection: relation.collection,
      selected: 0,
      inserted: 0,
      skippedExisting: 0,
    };
    // Batches end at 1,000 documents or 16 MB: their number is known only as they come; the documents' is.
    const of = chosen.wanted === undefined ? ` (${chosen.documents} documents in all)` : '';
    let number = 0;
    for await (const batch of documentBatches(chosen, withTail)) {
      result.selected += batch.length;
      options.onActivity?.(
        `${options.dryRun ? 'counting' : 'restoring'} batch ${++number} of ${relation.name} into ${relation.database}.${relation.collection}${of}`,
        `${results.reduce((sum, r) => sum + r.inserted, result.inserted)} ${options.dryRun ? 'would be inserted' : 'inserted'} so far`,
      );
      if (options.dryRun) {
        const present = await coll.countDocuments({ _id: { $in: batch.map((d) => d._id) } } as Document, {
          maxTimeMS: options.config.maxTimeMS,
        });
        result.skippedExisting += present;
        result.inserted += batch.length - present;
        continue;
      }
      try {
        result.inserted += (
          await coll.insertMany(batch, {
            ordered: false,
            writeConcern: majorityWrite(options.config.maxTimeMS),
          })
        ).insertedCount;
      } catch (error) {
        // The server decides what already exists: only a duplicate `_id` is a document already present. Any
        // other write error (a duplicate on another unique index, a validator) leaves that document absent,
        // and is said with the document and the index.
        const e = error as {
          code?: number;
          result?: { insertedCount?: number };
          writeErrors?: WriteErrorLike[];
        };
        const writeErrors = Array.isArray(e.writeErrors) ? e.writeErrors : [];
        if (writeErrors.length === 0) throw error;
        const inserted = e.result?.insertedCount ?? batch.length - writeErrors.length;
        result.inserted += inserted;
        const other = writeErrors.find((w) => !isDuplicateId(w));
        if (other) {
          const index = Number(other.index ?? other.err?.index);
          const doc = Number.isInteger(index) ? batch[index] : undefined;
          throw new RuntimeError(
            `restore of ${relation.name} into ${relation.database}.${relation.collection}: document _id ${doc ? describeId(doc._id) : '(unknown)'} was not restored: ${redact(String(other.errmsg ?? other.err?.errmsg ?? `error ${other.code}`))}; ${result.inserted} documents restored so far, the rest of the run not attempted (resolve the conflict, then run restore again: present documents are skipped)`,
          );
        }
        result.skippedExisting += writeErrors.length;
      }
    }
    results.push(result);
  }
  if (!options.dryRun) {
    const runId = newRunId(started);
    const operator = currentOperator(options.operator);
    for (const result of results) {
      const relation = selected.find((s) => s.relation.name === result.name)!.relation;
      await new RunsStore(
        (await options.pool.primaryDb(relation.source)).client.db(relation.database),
        options.access,
      )
        .record({
          runId,
          kind: 'restore',
          relation: result.name,
          startedAt: started,
          finishedAt: new Date(),
          durationMs: Date.now() - started.getTime(),
          operator,
          host: currentHost(),
          outcome: 'succeeded',
          complete: true,
          counts: {
            selected: result.selected,
            inserted: result.inserted,
            skippedExisting: result.skippedExisting,
          },
          backupPath: runDir,
        })
        .catch(() => undefined);
    }
    // The audit trail lives beside the backups: the run directory's parent.
    await appendAudit(dirname(runDir), {
      kind: 'restore',
      runId,
      operator,
      host: currentHost(),
      backup: runDir,
      selection: options.selection,
      relations: results,
    });
  }
  return { runDir, runId: backup.manifest.runId, dryRun: options.dryRun, relations: results, notes };
}

/**
 * Whether the parent a reference names is still missing or inactive on the relation's parent source (read
 * from the primary, as a delete's re-check is) — restored children of such a parent are orphans again — and
 * whether their grace period restarted, in words: it counts from the parent's soft-delete time when it has
 * one, else from the reference's first sighting, which a restore does not reset (the first complete scan that
 * no longer saw the reference forgot it; then the next scan sees them for the first time). Undefined when
 * the parent is there and active.
 */
export async function parentUnresolved(
  config: ResolvedConfig,
  pool: SourcePool,
  relationName: string,
  ref: string,
  now = new Date(),
): Promise<string | undefined> {
  const relation = config.relations.find((r) => r.name === relationName);
  if (!relation) return undefined;
  const value = parseValueArgument(ref);
  const key = canonicalKey(value, relation.keyMatch);
  if (key === undefined) return undefined;
  const states = await new ParentProbe(relation, await pool.primaryDb(relation.parent.source), {
    maxTimeMS: config.maxTimeMS,
  }).probe(new Map([[key, value]]));
  const state = states.get(key) ?? { kind: 'missing' as const };
  if (state.kind === 'active') return undefined;
  let from: Date | undefined;
  let basis = '';
  if (state.kind === 'inactive' && state.since) {
    from = state.since;
    basis = `the parent's ${relation.parent.softDeleteField ?? 'soft delete'} (${utcMinute(from)})`;
  } else {
    const seen = await new FirstSeenStore(await pool.primaryDb(relation.child.source), relation.name, {
      readOnly: true,
    }).lookup([key], config.maxTimeMS);
    from = seen.get(key);
    if (from) basis = `the reference's first sighting (${utcMinute(from)})`;
  }
  const why = `its parent is still ${state.kind}`;
  if (!from)
    return `${why}; their grace period restarts: the next scan sees them for the first time, and they are deletable ${relation.graceDays} days after it`;
  const end = new Date(from.getTime() + relation.graceDays * DAY_MS);
  return `${why}; their grace period did not restart: it counts from ${basis}, so they are deletable ${
    end <= now
      ? 'again now — the next clean deletes them unless they are allow-listed'
      : `from ${utcMinute(end)}`
  }`;
}

export interface RelationVerify {
  name: string;
  database: string;
  collection: string;
  backedUp: number;
  present: number;
  absent: number;
}

/** How many backed-up documents are in the database now, and how many are not. Reads only. */
export async function verifyBackup(
  runDir: string,
  options: {
    config: ResolvedConfig;
    pool: SourcePool;
    selection?: RestoreSelection;
    onActivity?: (doing: string) => void;
  },
): Promise<{ relations: RelationVerify[]; notes: string[] }> {
  const backup = await readBackup(runDir);
  const { selected, notes } = selectRelations(backup, options.selection ?? {}, options.config);
  const withTail = Boolean(options.selection?.includeUnverifiedTail);
  const relations: RelationVerify[] = [];
  for (const chosen of selected) {
    const { relation } = chosen;
    if (!options.config.sources[relation.source]) {
      throw new UsageError(
        `backup relation ${relation.name} uses source '${relation.source}', which the configuration does not define`,
      );
    }
    const coll = (await options.pool.primaryDb(relation.source)).client
      .db(relation.database)
      .collection(relation.collection);
    let present = 0;
    let backedUp = 0;
    options.onActivity?.(`verifying ${relation.name} against ${relation.database}.${relation.collection}`);
    for await (const batch of documentBatches(chosen, withTail)) {
      backedUp += batch.length;
      present += await coll.countDocuments({ _id: { $in: batch.map((d) => d._id) } } as Document, {
        maxTimeMS: options.config.maxTimeMS,
      });
    }
    relations.push({
      name: relation.name,
      database: relation.database,
      collection: relation.collection,
      backedUp,
      present,
      absent: backedUp - present,
    });
  }
  return { relations, notes };
}

export interface BackupHolding {
  dir: string;
  runId: string;
  createdAt: string;
  relation: string;
  /** Children of the reference in this backup. */
  children: number;
}

/**
 * Every backup under `root` holding children of a reference (newest first), read from the files alone: no
 * database is needed, so it works while the clusters are down. Backups that fail their checks are listed in
 * `unreadable` with why, never silently skipped.
 */
export async function findBackupsOf(
  ref: string,
  root: string,
): Promise<{ holdings: BackupHolding[]; unreadable: string[]; searched: number }> {
  const { readdir } = await import('node:fs/promises');
  const entries = await readdir(root, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new UsageError(`--backup-dir ${root}: no such directory`);
    if (error.code === 'ENOTDIR') throw new UsageError(`--backup-dir ${root}: is a file, not a directory`);
    throw error;
  });
  const holdings: BackupHolding[] = [];
  const unreadable: string[] = [];
  let searched = 0;
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const dir = join(root, entry.name);
    let backup: BackupContents;
    try {
      backup = await readBackup(dir);
    } catch (error) {
      unreadable.push(`${dir}: ${(error as Error).message}`);
      continue;
    }
    searched++;
    const { selected } = selectRelations(backup, { ref }, undefined);
    for (const chosen of selected) {
      let children = 0;
      try {
        for await (const batch of documentBatches(chosen, false)) children += batch.length;
      } catch (error) {
        unreadable.push(`${dir}: ${(error as Error).message}`);
        continue;
      }
      if (children)
        holdings.push({
          dir,
          runId: backup.manifest.runId,
          createdAt: backup.manifest.createdAt,
          relation: chosen.relation.name,
          children,
        });
    }
  }
  holdings.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return { holdings, unreadable, searched };
}
