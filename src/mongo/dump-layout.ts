import { open, readFile } from 'node:fs/promises';
import { type Document, EJSON } from 'bson';

/**
 * mongodump's on-disk layout, shared by the sandbox's persistence and the cleanup backups:
 * `<root>/<db>/<collection>.bson` holds plain concatenated BSON documents and
 * `<collection>.metadata.json` the collection's indexes in canonical Extended JSON.
 */
export function bsonFileName(collection: string): string {
  return `${collection}.bson`;
}

export function metadataFileName(collection: string): string {
  return `${collection}.metadata.json`;
}

export interface CollectionMetadata {
  collectionName: string;
  indexes: Document[];
  options?: Document;
  uuid?: string;
}

export function metadataJson(meta: CollectionMetadata): string {
  return EJSON.stringify(
    {
      options: meta.options ?? {},
      indexes: meta.indexes,
      uuid: meta.uuid ?? '',
      collectionName: meta.collectionName,
      type: 'collection',
    },
    { relaxed: false },
  );
}

export function parseMetadata(text: string, path: string): CollectionMetadata {
  let parsed: Document;
  try {
    parsed = EJSON.parse(text, { relaxed: true }) as Document;
  } catch (error) {
    throw new DumpFormatError(`${path}: not valid Extended JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed.indexes)) throw new DumpFormatError(`${path}: has no 'indexes' array`);
  return parsed as CollectionMetadata;
}

/** A dump file that is truncated or not BSON. */
export class DumpFormatError extends Error {}

/** Splits concatenated BSON into its documents' raw bytes, refusing anything truncated or malformed. */
export function splitBsonDocuments(data: Uint8Array, path: string): Uint8Array[] {
  const docs: Uint8Array[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  while (offset < data.length) {
    if (offset + 5 > data.length) throw new DumpFormatError(`${path}: truncated at byte ${offset}`);
    const size = view.getInt32(offset, true);
    if (size < 5 || offset + size > data.length)
      throw new DumpFormatError(`${path}: truncated or corrupt document at byte ${offset}`);
    if (data[offset + size - 1] !== 0)
      throw new DumpFormatError(`${path}: corrupt document at byte ${offset}`);
    docs.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return docs;
}

/** Reads every document of a `.bson` dump file, each decoded by `decode`; any malformed document fails the whole file. */
export async function readBsonFile(path: string, decode: (raw: Uint8Array) => Document): Promise<Document[]> {
  const data = await readFile(path);
  return splitBsonDocuments(data, path).map((raw, i) => {
    try {
      return decode(raw);
    } catch (error) {
      throw new DumpFormatError(`${path}: document ${i} is not valid BSON (${(error as Error).message})`);
    }
  });
}

/** Writes a whole file and fsyncs it before returning. */
export async function writeFileSynced(path: string, data: Uint8Array | string, mode = 0o600): Promise<void> {
  const handle = await open(path, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
