import type { FindCursor } from 'mongodb';
import { prefetchedBatches } from '../engine/raw-batches.ts';
import { MISSING, RawFieldReader, readString } from '../engine/raw-bson.ts';

/** The fields of a first-seen document a scan reads, decoded from raw BSON (absent or of another type: undefined). */
export interface RawSighting {
  /** `_id` (a string as the tool writes it; any other value decoded, so a forged document can still be removed). */
  id?: unknown;
  key?: string;
  /** `firstSeenAt` in ms, when it is a BSON date within JavaScript's range. */
  firstSeenAtMs?: number;
  state?: string;
  pending?: boolean;
  /** Decoded only for a pending document (a confirmed one's is never needed: a backlog's worth of strings). */
  seenBy?: string;
}

const BSON_STRING = 0x02;
const BSON_BOOLEAN = 0x08;
const BSON_DATE = 0x09;
/** The largest time a JavaScript Date holds (ms either side of 1970). */
const MAX_DATE_MS = 8.64e15;

const readers = {
  id: new RawFieldReader('_id'),
  key: new RawFieldReader('key'),
  firstSeenAt: new RawFieldReader('firstSeenAt'),
  state: new RawFieldReader('state'),
  pending: new RawFieldReader('pending'),
  seenBy: new RawFieldReader('seenBy'),
};

function stringAt(reader: RawFieldReader, bytes: Uint8Array, at: number): string | undefined {
  return reader.locate(bytes, at) && reader.type === BSON_STRING
    ? readString(bytes, reader.valueAt)
    : undefined;
}

/**
 * Visits the documents of a `raw: true` cursor over first-seen documents a batch at a time, decoding only the
 * fields a scan uses: no JavaScript object per stored document (a backlog of millions is read every scan), and
 * a value of an unexpected type reads as absent, so the caller's checks fail closed. A visitor that returns a
 * promise is waited for before the next document.
 */
export async function forEachSighting(
  cursor: FindCursor,
  visit: (sighting: RawSighting) => void | Promise<void>,
): Promise<void> {
  for await (const { bytes, offsets } of prefetchedBatches(cursor)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const at of offsets) {
      const sighting: RawSighting = {
        id: stringAt(readers.id, bytes, at) ?? readers.id.read(bytes, at),
        key: stringAt(readers.key, bytes, at),
        state: stringAt(readers.state, bytes, at),
      };
      if (readers.firstSeenAt.locate(bytes, at) && readers.firstSeenAt.type === BSON_DATE) {
        const ms = Number(view.getBigInt64(readers.firstSeenAt.valueAt, true));
        if (Math.abs(ms) <= MAX_DATE_MS) sighting.firstSeenAtMs = ms;
      }
      if (readers.pending.locate(bytes, at) && readers.pending.type === BSON_BOOLEAN)
        sighting.pending = bytes[readers.pending.valueAt] === 1;
      if (sighting.pending === true) sighting.seenBy = stringAt(readers.seenBy, bytes, at);
      if (sighting.id === MISSING) sighting.id = undefined;
      // Awaited only when the visitor has work to wait for (a page of writes).
      const waiting = visit(sighting);
      if (waiting) await waiting;
    }
  }
}
