import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BSON, UUID } from 'bson';
import {
  bsonFileName,
  metadataFileName,
  metadataJson,
  parseMetadata,
  readBsonFile,
  writeFileSynced,
} from '../mongo/dump-layout.ts';
import { Collection, ID_INDEX, type IndexSpec, type Store } from './storage.ts';

/** Loads every `<db>/<coll>.bson` under `dir` (mongodump layout) into the store. A missing dir is empty. */
export async function loadDataDir(store: Store, dir: string): Promise<void> {
  const exists = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!exists) return;
  for (const dbEntry of await readdir(dir, { withFileTypes: true })) {
    if (!dbEntry.isDirectory() || dbEntry.name.startsWith('.')) continue;
    const db = store.database(dbEntry.name, true)!;
    const dbDir = join(dir, dbEntry.name);
    for (const file of await readdir(dbDir)) {
      if (!file.endsWith('.bson')) continue;
      const name = file.slice(0, -'.bson'.length);
      const metaPath = join(dbDir, metadataFileName(name));
      const meta = await readFile(metaPath, 'utf8').then(
        (text) => parseMetadata(text, metaPath),
        () => undefined,
      );
      const coll = new Collection(name, meta?.options ?? {}, meta?.uuid ? new UUID(meta.uuid) : undefined);
      for (const spec of (meta?.indexes ?? []) as IndexSpec[])
        if (spec.name !== ID_INDEX.name) coll.addIndex(spec);
      for (const doc of await readBsonFile(join(dbDir, file))) coll.insert(doc);
      db.collections.set(name, coll);
    }
  }
}

/** Writes the whole store to `dir`, replacing it atomically (a new tree, then a rename). */
export async function saveDataDir(store: Store, dir: string): Promise<void> {
  const next = `${dir}.saving`;
  await rm(next, { recursive: true, force: true });
  await mkdir(next, { recursive: true, mode: 0o700 });
  for (const db of store.databases.values()) {
    const dbDir = join(next, db.name);
    await mkdir(dbDir, { mode: 0o700 });
    for (const coll of db.collections.values()) {
      const parts: Uint8Array[] = [];
      for (const doc of coll.docs.values()) parts.push(BSON.serialize(doc));
      await writeFileSynced(join(dbDir, bsonFileName(coll.name)), Buffer.concat(parts));
      await writeFileSynced(
        join(dbDir, metadataFileName(coll.name)),
        metadataJson({
          collectionName: coll.name,
          indexes: coll.indexSpecs,
          options: coll.options,
          uuid: coll.uuid.toHexString(),
        }),
      );
    }
  }
  const previous = `${dir}.previous`;
  await rm(previous, { recursive: true, force: true });
  await rename(dir, previous).catch(() => undefined);
  await rename(next, dir);
  await rm(previous, { recursive: true, force: true });
}
