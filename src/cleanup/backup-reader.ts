import { createHash } from 'node:crypto';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BSON } from 'bson';
import { rawIdKey } from '../engine/raw-bson.ts';
import { describeId } from '../engine/scan.ts';
import { RuntimeError, UsageError } from '../errors.ts';
import { describeFsError } from '../paths.ts';
import { checkManifest, MANIFEST_FILE, type Manifest, type ManifestFile, readManifest } from './backup.ts';

/** Bytes read from a backup file at a time: memory follows this (and the largest document), not the file. */
const READ_CHUNK = 4 * 1024 * 1024;
/** mongod's document limit and some room: a length above it is a corrupt file, not a document to buffer. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 + 16 * 1024;
/** Unverified tail documents named one by one in the restore's note; more are counted. */
const TAIL_IDS_SHOWN = 20;

export interface BackupFileCheck {
  entry: ManifestFile;
  path: string;
  /** The file as checked: a second read fails when it changed since. */
  size: number;
  mtimeMs: number;
  /** Complete documents after the last checksummed batch (an interrupted batch), and their bytes. */
  tailDocuments: number;
  tailBytes: number;
  /** The first unverified tail documents' `_id`s, as shown. */
  tailIds: string[];
  /** Bytes of a document cut off by a crash mid-write (never deleted, so nothing is lost). */
  truncatedTailBytes: number;
  /**
   * Positions (in file order, the tail after the checksummed documents) of copies superseded by a later copy
   * of the same `_id`: a batch whose transaction the server aborted is backed up again by the next try, and
   * only the last copy can have been deleted. `withTail` when the tail is read too.
   */
  superseded: { recorded: Set<number>; withTail: Set<number> };
}

export interface BackupContents {
  dir: string;
  manifest: Manifest;
  files: Map<string, BackupFileCheck>;
}

/**
 * Reads a run directory and checks it without holding its files: the manifest parses, each file's recorded
 * bytes match their sha256, and every document in them is whole and counted as the manifest says. Read in
 * chunks, so a backup of any size is checked in bounded memory (the chunk, the largest document, and one
 * short key per document to find repeated copies). Any failure is one error and nothing is returned.
 */
export async function readBackup(dir: string): Promise<BackupContents> {
  const manifestPath = join(dir, MANIFEST_FILE);
  const manifest = await readManifest(dir);
  const paths = await checkManifest(manifest, dir, manifestPath);
  const files = new Map<string, BackupFileCheck>();
  for (const entry of manifest.files)
    files.set(entry.path, await checkFile(entry, paths.get(entry.path)!, manifest.status === 'completed'));
  return { dir, manifest, files };
}

/**
 * The checked documents of one backup file, raw, in file order, each copy superseded by a later one skipped;
 * the unverified tail too when `withTail`. Fails when the file changed since it was checked.
 */
export async function* backupDocuments(file: BackupFileCheck, withTail: boolean): AsyncGenerator<Uint8Array> {
  const handle = await openBackupFile(file.path);
  try {
    const unchanged = async () => {
      const now = await handle.stat();
      if (now.size !== file.size || now.mtimeMs !== file.mtimeMs)
        throw new RuntimeError(
          `${file.path}: changed while it was being read (it was checked at ${file.size} bytes); stopped — run the command again`,
        );
    };
    await unchanged();
    const skip = withTail ? file.superseded.withTail : file.superseded.recorded;
    const end = file.entry.bytes + (withTail ? file.tailBytes : 0);
    let position = 0;
    for await (const { raw } of documentsIn(handle, 0, end, file.path)) {
      if (!skip.has(position)) yield raw.slice();
      position++;
    }
    await unchanged();
  } finally {
    await handle.close();
  }
}

async function checkFile(entry: ManifestFile, path: string, completed: boolean): Promise<BackupFileCheck> {
  const handle = await openBackupFile(path);
  try {
    const info = await handle.stat();
    if (info.size < entry.bytes)
      throw new RuntimeError(`${path}: truncated backup (${info.size} bytes, manifest says ${entry.bytes})`);
    const hash = createHash('sha256');
    const lastCopy = new Map<string, number>();
    const recorded = new Set<number>();
    let position = 0;
    let invalid: string | undefined;
    // Every document is decoded once here, so a malformed one fails the check before anything is restored
    // (said after the checksum: a corrupted file is a checksum mismatch first).
    const note = (raw: Uint8Array, into: Set<number>) => {
      if (!invalid)
        try {
          BSON.deserialize(raw, { promoteValues: false });
        } catch (error) {
          invalid = `${path}: document ${position} is not valid BSON (${(error as Error).message})`;
        }
      const key = rawIdKey(raw);
      const earlier = key === undefined ? undefined : lastCopy.get(key);
      if (earlier !== undefined) into.add(earlier);
      if (key !== undefined) lastCopy.set(key, position);
      position++;
    };
    let hashed = 0;
    const hashBytes = (bytes: Uint8Array) => {
      hash.update(bytes);
      hashed += bytes.length;
    };
    try {
      for await (const { raw } of documentsIn(handle, 0, entry.bytes, path, hashBytes)) note(raw, recorded);
    } catch (error) {
      // A document cut wrong: the rest of the range is hashed so a corrupted file is said as one.
      invalid ??= (error as Error).message;
      const rest = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(entry.bytes - hashed, 1)));
      while (hashed < entry.bytes) {
        const { bytesRead } = await handle.read(rest, 0, Math.min(rest.length, entry.bytes - hashed), hashed);
        if (bytesRead === 0) break;
        hashBytes(rest.subarray(0, bytesRead));
      }
    }
    if (hash.digest('hex') !== entry.sha256)
      throw new RuntimeError(`${path}: checksum mismatch (corrupted backup)`);
    if (invalid) throw new RuntimeError(invalid);
    if (position !== entry.documents)
      throw new RuntimeError(`${path}: holds ${position} documents, manifest says ${entry.documents}`);
    const tailLength = info.size - entry.bytes;
    // A finished run's file ends at its last checksummed batch: bytes after it were added later, by someone else.
    if (tailLength && completed)
      throw new RuntimeError(
        `${path}: ${tailLength} bytes after the last checksummed batch of a completed run (the file was changed after the backup); nothing was read`,
      );
    const withTail = new Set(recorded);
    let tailDocuments = 0;
    let tailBytes = 0;
    const tailIds: string[] = [];
    for await (const { raw } of documentsIn(handle, entry.bytes, info.size, path, undefined, true)) {
      note(raw, withTail);
      if (invalid) throw new RuntimeError(invalid);
      tailDocuments++;
      tailBytes += raw.length;
      if (tailIds.length < TAIL_IDS_SHOWN) tailIds.push(describeRawId(raw));
    }
    return {
      entry,
      path,
      size: info.size,
      mtimeMs: info.mtimeMs,
      tailDocuments,
      tailBytes,
      tailIds,
      truncatedTailBytes: tailLength - tailBytes,
      superseded: { recorded, withTail },
    };
  } finally {
    await handle.close();
  }
}

function describeRawId(raw: Uint8Array): string {
  try {
    return describeId(BSON.deserialize(raw, { promoteValues: false })._id);
  } catch {
    return '(unreadable _id)';
  }
}

/** Opens a backup file for reading after checking it is a regular file (a FIFO would block, a device never end). */
async function openBackupFile(path: string): Promise<FileHandle> {
  const info = await stat(path).catch((error) => {
    throw new RuntimeError(`${path}: unreadable backup file (${describeFsError(error)})`);
  });
  if (!info.isFile()) throw new UsageError(`backup file ${path}: is not a regular file`);
  const handle = await open(path, 'r').catch((error) => {
    throw new RuntimeError(`${path}: unreadable backup file (${describeFsError(error)})`);
  });
  return handle;
}

/**
 * The whole BSON documents between `start` and `end` of a file, read a chunk at a time. `onBytes` sees every
 * byte of the range once, in order (for a checksum). A document that does not fit the range, or a length no
 * document has, fails (`lenient`: ends the walk instead, for a tail a crash may have cut).
 */
async function* documentsIn(
  handle: FileHandle,
  start: number,
  end: number,
  path: string,
  onBytes?: (bytes: Uint8Array) => void,
  lenient = false,
): AsyncGenerator<{ raw: Uint8Array; offset: number }> {
  let buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(end - start, 5)));
  let filled = 0; // bytes of `buffer` holding data, from `bufferAt` in the file
  let bufferAt = start;
  let read = start; // next file offset to read
  for (;;) {
    // Whole documents at the front of the buffer.
    let at = 0;
    while (filled - at >= 4) {
      const size = buffer.readInt32LE(at);
      const offset = bufferAt + at;
      if (size < 5 || size > MAX_DOCUMENT_BYTES || offset + size > end) {
        if (lenient) return;
        throw new RuntimeError(`${path}: truncated or corrupt document at byte ${offset}`);
      }
      if (filled - at < size) {
        // Needs more bytes than the buffer holds: a larger buffer for this document.
        if (size > buffer.length) {
          const larger = Buffer.allocUnsafe(size);
          buffer.copy(larger, 0, at, filled);
          buffer = larger;
          filled -= at;
          bufferAt += at;
          at = 0;
        }
        break;
      }
      if (buffer[at + size - 1] !== 0) {
        if (lenient) return;
        throw new RuntimeError(`${path}: corrupt document at byte ${offset}`);
      }
      yield { raw: buffer.subarray(at, at + size), offset };
      at += size;
    }
    if (at > 0) {
      buffer.copy(buffer, 0, at, filled);
      filled -= at;
      bufferAt += at;
    }
    if (read >= end) {
      if (filled > 0 && !lenient) throw new RuntimeError(`${path}: truncated at byte ${bufferAt}`);
      return;
    }
    const want = Math.min(buffer.length - filled, end - read);
    const { bytesRead } = await handle.read(buffer, filled, want, read);
    if (bytesRead === 0) throw new RuntimeError(`${path}: ended at byte ${read} while being read`);
    onBytes?.(buffer.subarray(filled, filled + bytesRead));
    filled += bytesRead;
    read += bytesRead;
  }
}
