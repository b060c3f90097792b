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
import { decodeTyped } from './typed-values.ts';

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
      const coll = new Collection(
        name,
        meta?.options ?? {},
        meta?.uuid ? new UUID(meta.uuid) : undefined,
        dbEntry.name,
      );
      for (const spec of (meta?.indexes ?? []) as IndexSpec[])
        if (spec.name !== ID_INDEX.name) coll.addIndex(spec);
      // Numbers keep their BSON types, as documents arriving over the wire do.
      for (const doc of await readBsonFile(join(dbDir, file), (raw) => decodeTyped(raw).doc))
        coll.insert(doc);
      db.collections.set(name, coll);
    }
  }
}

/** Replaces one file atomically: a synced temp file renamed over it. */
async function replaceFile(path: string, data: Uint8Array | string): Promise<void> {
  await writeFileSynced(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}

async function saveCollection(dbDir: string, coll: Collection): Promise<void> {
  const parts: Uint8Array[] = [];
  for (const doc of coll.docs.values()) parts.push(BSON.serialize(doc));
  await replaceFile(join(dbDir, bsonFileName(coll.name)), Buffer.concat(parts));
  await replaceFile(
    join(dbDir, metadataFileName(coll.name)),
    metadataJson({
      collectionName: coll.name,
      indexes: coll.indexSpecs,
      options: coll.options,
      uuid: coll.uuid.toHexString(),
    }),
  );
}

/**
 * Saves what changed since the last save (the store's dirty collections) into `dir`, one collection file
 * at a time, each replaced atomically; dropped collections and databases lose their files.
 */
export async function saveDataDir(store: Store, dir: string): Promise<void> {
  const dirty = [...store.dirty.values()];
  store.dirty.clear();
  for (const [dbName, collName] of dirty) {
    // `local` (the oplog) lives as long as the process, as a restarted set member starts a new one here.
    if (dbName === 'local') continue;
    const dbDir = join(dir, dbName);
    const db = store.database(dbName, false);
    if (!db) {
      await rm(dbDir, { recursive: true, force: true });
      continue;
    }
    await mkdir(dbDir, { recursive: true, mode: 0o700 });
    const names = collName === '*' ? [...db.collections.keys()] : [collName];
    for (const name of names) {
      const coll = db.collections.get(name);
      if (coll) await saveCollection(dbDir, coll);
      else {
        await rm(join(dbDir, bsonFileName(name)), { force: true });
        await rm(join(dbDir, metadataFileName(name)), { force: true });
      }
    }
  }
}
