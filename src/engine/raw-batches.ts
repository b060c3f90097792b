import type { FindCursor } from 'mongodb';
import { log } from '../logging.ts';
import { int32 } from './raw-bson.ts';

let fallbackLogged = false;

/** One batch of a cursor as raw BSON: `offsets[i]` is where document i starts in `bytes`. */
export interface RawBatch {
  bytes: Uint8Array;
  offsets: number[];
  /** True when read in place from the server's reply; false when copied from the driver's per-document buffers. */
  inPlace: boolean;
}

/**
 * The driver's buffered reply (mongodb 6.x–7.x, `@internal` there): the batch array as bytes, its offset, and
 * how many documents of it were already handed out. Checked field by field; any mismatch takes the copy path.
 */
interface BufferedReply {
  iterated: number;
  batch: { bson: Uint8Array; offset: number; isArray: boolean };
  clear(): void;
}

function bufferedReply(cursor: FindCursor): BufferedReply | undefined {
  const documents = (cursor as unknown as { documents?: Partial<BufferedReply> | null }).documents;
  if (documents?.iterated !== 0 || typeof documents.clear !== 'function') return undefined;
  const batch = documents.batch;
  if (!batch || !(batch.bson instanceof Uint8Array) || typeof batch.offset !== 'number' || !batch.isArray)
    return undefined;
  return documents as BufferedReply;
}

/** Start offsets of the documents of a BSON array whose own length prefix is at `at`. */
function arrayDocumentOffsets(bytes: Uint8Array, at: number): number[] | undefined {
  const end = at + int32(bytes, at) - 1;
  const offsets: number[] = [];
  let position = at + 4;
  while (position < end) {
    if (bytes[position] !== 0x03) return undefined;
    position++;
    while (bytes[position] !== 0) position++;
    position++;
    offsets.push(position);
    position += int32(bytes, position);
  }
  return position === end ? offsets : undefined;
}

/**
 * Takes every buffered document of a `raw: true` cursor at once. In place, the documents stay where the
 * reply put them, without a Buffer and a parsed element table per document; otherwise (another driver
 * version) they are read through the public API and copied into one buffer.
 */
export function takeRawBatch(cursor: FindCursor): RawBatch {
  const reply = bufferedReply(cursor);
  const offsets = reply && arrayDocumentOffsets(reply.batch.bson, reply.batch.offset);
  if (reply && offsets) {
    reply.clear();
    return { bytes: reply.batch.bson, offsets, inPlace: true };
  }
  if (!fallbackLogged) {
    fallbackLogged = true;
    log.warn("the driver's buffered reply is not in the expected shape: batches are copied (slower scans)");
  }
  const documents = cursor.readBufferedDocuments() as unknown as Uint8Array[];
  const bytes = Buffer.concat(documents);
  const copied: number[] = [];
  let position = 0;
  for (const document of documents) {
    copied.push(position);
    position += document.length;
  }
  return { bytes, offsets: copied, inPlace: false };
}

/**
 * A `raw: true` cursor's batches, each taken whole, with the next one already asked for while the caller
 * works on the current one: the server reads batch n+1 while the client classifies batch n.
 */
export async function* prefetchedBatches(cursor: FindCursor): AsyncGenerator<RawBatch> {
  let next = cursor.hasNext();
  try {
    while (await next) {
      const batch = takeRawBatch(cursor);
      next = cursor.hasNext();
      // A failure of the early fetch is thrown by the await above, or dropped when the caller stops first.
      next.catch(() => undefined);
      // Let the driver put the getMore on the wire before the caller's synchronous work starts.
      await new Promise((resolve) => setImmediate(resolve));
      yield batch;
    }
  } finally {
    await next.catch(() => undefined);
  }
}
