import { BSON, ObjectId } from 'bson';
import type { FindCursor } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { takeRawBatch } from '../../src/engine/raw-batches.ts';
import { RawFieldReader } from '../../src/engine/raw-bson.ts';

/** A cursor as another driver version might look: only the public API, no buffered reply to read in place. */
function publicOnlyCursor(docs: Uint8Array[]): FindCursor {
  const buffered = [...docs];
  return { readBufferedDocuments: () => buffered.splice(0) } as unknown as FindCursor;
}

describe('takeRawBatch without the driver internals it expects', () => {
  it('copies the buffered documents into one buffer, offsets and bytes intact', () => {
    const docs = [
      { _id: new ObjectId(), content_id: 'a'.repeat(24) },
      { _id: 2, content_id: null, pad: 'x'.repeat(300) },
      { _id: 'three', nested: { content_id: new ObjectId() } },
    ].map((doc) => BSON.serialize(doc));
    const batch = takeRawBatch(publicOnlyCursor(docs));
    expect(batch.inPlace).toBe(false);
    expect(batch.offsets).toHaveLength(3);
    const ids = new RawFieldReader('_id');
    expect(batch.offsets.map((at) => ids.read(batch.bytes, at))).toEqual([
      BSON.deserialize(docs[0])._id,
      2,
      'three',
    ]);
    batch.offsets.forEach((at, i) => {
      expect(Buffer.from(batch.bytes.subarray(at, at + docs[i].length)).equals(Buffer.from(docs[i]))).toBe(
        true,
      );
    });
  });

  it('falls back when the buffered reply is partly read already', () => {
    const docs = [BSON.serialize({ _id: 1 })];
    const cursor = Object.assign(publicOnlyCursor(docs), {
      documents: { iterated: 1, clear() {}, batch: { bson: new Uint8Array(5), offset: 0, isArray: true } },
    }) as unknown as FindCursor;
    const batch = takeRawBatch(cursor);
    expect(batch.inPlace).toBe(false);
    expect(batch.offsets).toEqual([0]);
  });
});
