import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Collection } from 'mongodb';
import { RawFieldReader } from '../../src/engine/raw-bson.ts';
import { documentKey } from '../../src/store/exceptions.ts';
import { readBackupFiles } from './backups.ts';

const idReader = new RawFieldReader('_id');

/** Every document of a collection as raw bytes, by `_id`. */
export async function snapshot(coll: Collection): Promise<Map<string, Buffer>> {
  const docs = (await coll.find({}, { raw: true }).toArray()) as unknown as Buffer[];
  return new Map(docs.map((raw) => [documentKey(idReader.read(raw)), Buffer.from(raw)]));
}

/** Every document in every backup run under `root` that parses (including a crashed batch's unrecorded ones). */
export async function backedUp(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const backup = await readBackupFiles(join(root, entry.name));
    for (const file of backup.files.values()) {
      for (const raw of [...file.documents, ...file.unrecorded])
        out.set(documentKey(idReader.read(raw)), Buffer.from(raw));
    }
  }
  return out;
}

/** What disappeared between two snapshots. */
export function missingFrom(before: Map<string, Buffer>, after: Map<string, Buffer>): string[] {
  return [...before.keys()].filter((key) => !after.has(key));
}

/** Batches recorded in the (single) run's manifest so far. */
export async function batchesRecorded(backupRoot: string): Promise<number> {
  const runs = (await readdir(backupRoot).catch(() => [])).filter((name) => !name.endsWith('.jsonl'));
  if (runs.length === 0) return 0;
  try {
    const manifest = JSON.parse(await readFile(join(backupRoot, runs[0], 'manifest.json'), 'utf8'));
    return manifest.relations[0]?.batches.length ?? 0;
  } catch {
    return 0;
  }
}

export async function waitForBatches(backupRoot: string, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await batchesRecorded(backupRoot)) < count) {
    if (Date.now() > deadline) throw new Error(`no ${count} batches recorded in time`);
    await sleep(10);
  }
}
