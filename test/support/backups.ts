import { readFile } from 'node:fs/promises';
import { readBackup } from '../../src/cleanup/backup-reader.ts';
import { splitBsonDocuments } from '../../src/mongo/dump-layout.ts';

/**
 * A run directory checked as restore checks it, with every file's raw documents (each copy, in file order): the
 * checksummed ones and the complete ones written after them. For tests, which read small backups whole.
 */
export async function readBackupFiles(runDir: string) {
  const backup = await readBackup(runDir);
  const files = new Map<string, { documents: Uint8Array[]; unrecorded: Uint8Array[] }>();
  for (const [name, file] of backup.files) {
    const data = await readFile(file.path);
    files.set(name, {
      documents: splitBsonDocuments(data.subarray(0, file.entry.bytes), file.path),
      unrecorded: splitBsonDocuments(
        data.subarray(file.entry.bytes, file.entry.bytes + file.tailBytes),
        file.path,
      ),
    });
  }
  return { ...backup, files };
}
