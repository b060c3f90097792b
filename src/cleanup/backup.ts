// Over 300 lines: the backup's writer and its reader check one format together.

import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, mkdir, open, realpath, rename, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { dirname, isAbsolute, join, sep } from 'node:path';
import type { Document } from 'bson';
import { RuntimeError, UsageError } from '../errors.ts';
import { bsonFileName, metadataFileName, metadataJson, writeFileSynced } from '../mongo/dump-layout.ts';
import type { KeyMatch } from '../mongo/keys.ts';
import {
  describeFsError,
  ensureWritableDir,
  readRegularFile,
  removeTemporary,
  writeFailure,
} from '../paths.ts';
import { escapeForTerminal } from '../terminal-text.ts';

export const MANIFEST_FORMAT = 'orphan-cleanup-backup/1';
export const MANIFEST_FILE = 'manifest.json';

export type RunStatus = 'running' | 'completed' | 'aborted' | 'failed';
const RUN_STATUSES: readonly RunStatus[] = ['running', 'completed', 'aborted', 'failed'];

export interface ManifestBatch {
  index: number;
  /**
   * Which try at this batch wrote it (1 = the first). A batch whose transaction the server aborted is written
   * again by the next try: the same documents twice, the later copy the one deleted (restore keeps the last).
   */
  attempt?: number;
  /** Set when a later try wrote this batch again: nothing of this copy was deleted by this try. */
  retried?: boolean;
  backedUp: number;
  deleted: number;
  bytes: number;
  at: string;
}

export interface ManifestRelation {
  name: string;
  source: string;
  database: string;
  collection: string;
  field: string;
  keyMatch: KeyMatch;
  /** The `.bson` file holding this relation's documents, relative to the run directory. */
  file: string;
  planned: number;
  backedUp: number;
  deleted: number;
  skipped: Record<string, number>;
  batches: ManifestBatch[];
}

export interface ManifestFile {
  path: string;
  documents: number;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  runId: string;
  operator: string;
  host: string;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  error?: string;
  relations: ManifestRelation[];
  files: ManifestFile[];
}

/** Creates one directory level readable by the owner only (its parent exists: the checked backup root). */
async function privateDir(path: string): Promise<void> {
  await mkdir(path, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw writeFailure(path, error);
  });
}

async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Refuses to start a cleanup whose backups could not be written: the root must be writable and hold at
 * least twice the estimated backup size.
 */
export async function assertBackupRootUsable(root: string, estimatedBytes: number): Promise<void> {
  await ensureWritableDir(root, '--backup-dir');
  const fs = await statfs(root);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (free < 2 * estimatedBytes) {
    throw new RuntimeError(
      `backup directory ${root} has ${free} bytes free, under twice the estimated backup size (${estimatedBytes} bytes)`,
    );
  }
}

interface OpenFile {
  entry: ManifestFile;
  handle: FileHandle;
  hash: Hash;
}

/**
 * One cleanup run's backup, in mongodump layout (`<run>/<db>/<collection>.bson` + `.metadata.json`) so
 * mongorestore reads it, plus `manifest.json`. Every batch is appended and fsynced, and the manifest
 * rewritten atomically, before that batch may be deleted.
 */
export class BackupWriter {
  readonly manifest: Manifest;
  private readonly files = new Map<string, OpenFile>();

  private constructor(
    readonly dir: string,
    manifest: Manifest,
  ) {
    this.manifest = manifest;
  }

  static async create(
    root: string,
    runId: string,
    who: { operator: string; host: string },
  ): Promise<BackupWriter> {
    const dir = join(root, runId);
    await privateDir(dir);
    const now = new Date().toISOString();
    const writer = new BackupWriter(dir, {
      format: MANIFEST_FORMAT,
      runId,
      operator: who.operator,
      host: who.host,
      createdAt: now,
      updatedAt: now,
      status: 'running',
      relations: [],
      files: [],
    });
    await writer.saveManifest();
    await syncDir(root);
    return writer;
  }

  /** Registers a relation and opens its collection's `.bson` file (shared when relations share a collection). */
  async addRelation(
    relation: Omit<ManifestRelation, 'file' | 'backedUp' | 'deleted' | 'skipped' | 'batches'>,
    collection: { indexes: Document[]; options?: Document; uuid?: string },
  ): Promise<ManifestRelation> {
    const file = `${relation.database}/${bsonFileName(relation.collection)}`;
    if (!this.files.has(file)) {
      const dbDir = join(this.dir, relation.database);
      await privateDir(dbDir);
      await writeFileSynced(
        join(dbDir, metadataFileName(relation.collection)),
        metadataJson({ collectionName: relation.collection, ...collection }),
      );
      const handle = await open(join(this.dir, file), 'a', 0o600);
      const entry: ManifestFile = {
        path: file,
        documents: 0,
        bytes: 0,
        sha256: createHash('sha256').digest('hex'),
      };
      this.manifest.files.push(entry);
      this.files.set(file, { entry, handle, hash: createHash('sha256') });
      await syncDir(dbDir);
    }
    const entry: ManifestRelation = { ...relation, file, backedUp: 0, deleted: 0, skipped: {}, batches: [] };
    this.manifest.relations.push(entry);
    await this.saveManifest();
    return entry;
  }

  /**
   * Appends raw documents to the relation's file, fsyncs it, and records them in the manifest (fsynced too).
   * A failed write (a full disk) is cut back to the last recorded batch and fails with the directory and the
   * bytes it needed; the caller deletes nothing of the batch.
   */
  async appendBatch(relation: ManifestRelation, docs: Uint8Array[], attempt = 1): Promise<ManifestBatch> {
    const file = this.files.get(relation.file);
    if (!file) throw new Error(`no open backup file for ${relation.file}`);
    const data = Buffer.concat(docs);
    try {
      let written = 0;
      while (written < data.length)
        written += (await file.handle.write(data, written, data.length - written, file.entry.bytes + written))
          .bytesWritten;
      await file.handle.sync();
    } catch (error) {
      await file.handle.truncate(file.entry.bytes).catch(() => undefined);
      throw new RuntimeError(
        `backup ${this.dir}: ${describeFsError(error)} while writing batch ${relation.batches.length + 1} of ${relation.name} (${data.length} bytes needed); that batch was not deleted`,
      );
    }
    file.hash.update(data);
    file.entry.documents += docs.length;
    file.entry.bytes += data.length;
    file.entry.sha256 = file.hash.copy().digest('hex');
    const batch: ManifestBatch = {
      index: relation.batches.length,
      attempt,
      backedUp: docs.length,
      deleted: 0,
      bytes: data.length,
      at: new Date().toISOString(),
    };
    relation.batches.push(batch);
    relation.backedUp += docs.length;
    await this.saveManifest();
    return batch;
  }

  /** Marks the relation's last batch as tried again (saved with the next batch's append). */
  markRetried(relation: ManifestRelation): void {
    const last = relation.batches.at(-1);
    if (last) last.retried = true;
  }

  /** Rewrites manifest.json atomically and durably: temp file, fsync, rename, fsync of the directory. */
  async saveManifest(): Promise<void> {
    this.manifest.updatedAt = new Date().toISOString();
    const path = join(this.dir, MANIFEST_FILE);
    const temp = `${path}.tmp`;
    try {
      await writeFileSynced(temp, `${JSON.stringify(this.manifest, null, 2)}\n`);
      await rename(temp, path);
      await syncDir(this.dir);
    } catch (error) {
      await removeTemporary(temp);
      throw new RuntimeError(`backup ${this.dir}: cannot update ${MANIFEST_FILE}: ${describeFsError(error)}`);
    }
  }

  /**
   * Removes the run directory when no relation was ever added to it (the run ended before its first backup:
   * a lock held by another run, a refused check): nothing in it to restore, so nothing is left to mislead.
   * Returns whether it was removed.
   */
  async discardIfEmpty(): Promise<boolean> {
    if (this.manifest.relations.length > 0 || this.files.size > 0) return false;
    await rm(join(this.dir, MANIFEST_FILE), { force: true });
    await rmdir(this.dir);
    await syncDir(dirname(this.dir));
    return true;
  }

  /** Records the run's end in the manifest and closes the files; a manifest that cannot be written is said. */
  async finish(status: RunStatus, error?: string): Promise<void> {
    this.manifest.status = status;
    if (error) this.manifest.error = error;
    try {
      await this.saveManifest();
    } finally {
      for (const { handle } of this.files.values()) await handle.close().catch(() => undefined);
      this.files.clear();
    }
  }
}

const SYSTEM_DATABASES = new Set(['admin', 'config', 'local']);

/**
 * The manifest is input like any other: every file it names must lie inside the run directory (no `..`, no
 * absolute path, no symbolic link leading out), and every relation must name a file it lists and a plain
 * database and collection (never admin, config, local or system.*). Returns each file's checked path.
 */
export async function checkManifest(
  manifest: Manifest,
  dir: string,
  manifestPath: string,
): Promise<Map<string, string>> {
  const bad = (field: string, why: string) =>
    new RuntimeError(`${manifestPath}: ${field} ${why}; nothing was read`);
  const root = await realpath(dir);
  const paths = new Map<string, string>();
  for (const [i, entry] of manifest.files.entries()) {
    const field = `files[${i}].path`;
    if (typeof entry?.path !== 'string' || entry.path === '') throw bad(field, 'is missing');
    if (isAbsolute(entry.path) || entry.path.split(/[\\/]/).includes('..'))
      throw bad(field, `${JSON.stringify(entry.path)} leads outside the run directory`);
    if (!Number.isSafeInteger(entry.bytes) || entry.bytes < 0 || !Number.isSafeInteger(entry.documents))
      throw bad(`files[${i}]`, 'has no valid bytes or documents count');
    const path = join(dir, entry.path);
    const real = await realpath(path).catch(() => path);
    if (real !== root && !real.startsWith(`${root}${sep}`))
      throw bad(field, `${JSON.stringify(entry.path)} resolves outside the run directory (a symbolic link?)`);
    paths.set(entry.path, path);
  }
  for (const [i, relation] of manifest.relations.entries()) {
    const where = `relations[${i}]`;
    if (typeof relation?.database !== 'string' || !/^[^/\\. "$]+$/.test(relation.database))
      throw bad(`${where}.database`, 'is not a database name');
    if (SYSTEM_DATABASES.has(relation.database))
      throw bad(`${where}.database`, `is ${relation.database}, which a backup never restores into`);
    if (
      typeof relation.collection !== 'string' ||
      relation.collection === '' ||
      relation.collection.includes('$')
    )
      throw bad(`${where}.collection`, 'is not a collection name');
    if (relation.collection.startsWith('system.'))
      throw bad(`${where}.collection`, `is ${relation.collection}, which a backup never restores into`);
    if (!paths.has(relation.file))
      throw bad(`${where}.file`, `${JSON.stringify(relation.file)} is not among files`);
  }
  return paths;
}

/**
 * A run directory's manifest, parsed and checked for its format (not its files: `readBackup` does that).
 * Any failure is one error naming the directory or the manifest.
 */
export async function readManifest(dir: string): Promise<Manifest> {
  const manifestPath = join(dir, MANIFEST_FILE);
  const exists = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!exists) throw new UsageError(`${dir}: no such backup run directory`);
  let manifest: Manifest;
  const text = (await readRegularFile(manifestPath, 'backup manifest')).toString('utf8');
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (error) {
    throw new RuntimeError(
      `${manifestPath}: unreadable backup manifest (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  if (
    manifest?.format !== MANIFEST_FORMAT ||
    !Array.isArray(manifest.files) ||
    !Array.isArray(manifest.relations)
  ) {
    throw new RuntimeError(`${manifestPath}: not an orphan-cleanup backup manifest`);
  }
  // Read back, so checked: a status the tool never writes, or a run id or date that is not text, fails closed.
  if (!RUN_STATUSES.includes(manifest.status))
    throw new RuntimeError(
      `${manifestPath}: status ${escapeForTerminal(JSON.stringify(manifest.status) ?? 'undefined')} is not one of ${RUN_STATUSES.join(', ')}; nothing was read`,
    );
  if (typeof manifest.runId !== 'string' || typeof manifest.createdAt !== 'string')
    throw new RuntimeError(`${manifestPath}: runId and createdAt must be text; nothing was read`);
  return manifest;
}
