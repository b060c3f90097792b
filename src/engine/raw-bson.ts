import { BSON, ObjectId } from 'bson';

/** Marks a field that is absent from a document (distinct from a stored null). */
export const MISSING: unique symbol = Symbol('missing');

export const BSON_STRING = 0x02;
export const BSON_OBJECT_ID = 0x07;

const textDecoder = new TextDecoder();

/** A BSON string value starting at `at` (its int32 length first). */
export function readString(buf: Uint8Array, at: number): string {
  const end = at + 4 + int32(buf, at) - 1;
  return Buffer.isBuffer(buf)
    ? buf.toString('utf8', at + 4, end)
    : textDecoder.decode(buf.subarray(at + 4, end));
}

/** The 24-hex form of an ObjectId value starting at `at`. */
export function readObjectIdHex(buf: Uint8Array, at: number): string {
  return Buffer.isBuffer(buf)
    ? buf.toString('hex', at, at + 12)
    : Buffer.from(buf.buffer, buf.byteOffset + at, 12).toString('hex');
}

function cstringEnd(buf: Uint8Array, at: number): number {
  while (buf[at] !== 0) at++;
  return at;
}

export function int32(buf: Uint8Array, at: number): number {
  return buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24);
}

/** Bytes taken by the value of an element of `type` starting at `at`. */
function valueSize(buf: Uint8Array, type: number, at: number): number {
  switch (type) {
    case 0x01:
    case 0x09:
    case 0x11:
    case 0x12:
      return 8;
    case 0x02:
    case 0x0d:
    case 0x0e:
      return 4 + int32(buf, at);
    case 0x03:
    case 0x04:
    case 0x0f:
      return int32(buf, at);
    case 0x05:
      return 5 + int32(buf, at);
    case 0x06:
    case 0x0a:
    case 0x7f:
    case 0xff:
      return 0;
    case 0x07:
      return 12;
    case 0x08:
      return 1;
    case 0x0b: {
      const patternEnd = cstringEnd(buf, at);
      return cstringEnd(buf, patternEnd + 1) + 1 - at;
    }
    case 0x0c:
      return 4 + int32(buf, at) + 12;
    case 0x10:
      return 4;
    case 0x13:
      return 16;
    default:
      throw new Error(`unknown BSON element type 0x${type.toString(16)}`);
  }
}

function nameEquals(buf: Uint8Array, at: number, end: number, name: Uint8Array): boolean {
  if (end - at !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (buf[at + i] !== name[i]) return false;
  return true;
}

/** Decodes one element's value; the common key types directly, anything else through a one-field document. */
export function decodeValue(buf: Uint8Array, type: number, at: number): unknown {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  switch (type) {
    case 0x02:
      return readString(buf, at);
    case 0x07:
      return new ObjectId(buf.slice(at, at + 12));
    case 0x10:
      return int32(buf, at);
    case 0x01:
      return view.getFloat64(at, true);
    case 0x0a:
      return null;
    case 0x06:
      return undefined;
    case 0x08:
      return buf[at] === 1;
    case 0x09:
      return new Date(Number(view.getBigInt64(at, true)));
  }
  const size = valueSize(buf, type, at);
  const doc = new Uint8Array(4 + 1 + 2 + size + 1);
  new DataView(doc.buffer).setInt32(0, doc.length, true);
  doc[4] = type;
  doc[5] = 0x76; // "v"
  doc.set(buf.subarray(at, at + size), 7);
  if (type === 0x12) {
    // An Int64 beyond 2^53 stays a Long: as a double it would name a different `_id` or reference.
    const long = BSON.deserialize(doc, { promoteLongs: false }).v as { toNumber(): number };
    return Number.isSafeInteger(long.toNumber()) ? long.toNumber() : long;
  }
  return BSON.deserialize(doc).v;
}

/**
 * Reads a top-level or dotted field from a raw BSON document without decoding anything else: the scan
 * decodes two fields per child instead of whole documents. Returns MISSING when the path is absent or
 * passes through a non-document.
 */
export class RawFieldReader {
  private readonly path: Uint8Array[];

  constructor(path: string) {
    this.path = path.split('.').map((part) => new TextEncoder().encode(part));
  }

  /** BSON type of the element found by the last `locate` (0 when absent). */
  type = 0;
  /** Where that element's value starts. */
  valueAt = 0;

  /** The field's value in the document starting at `docAt` of `buf`, or MISSING. */
  read(buf: Uint8Array, docAt = 0): unknown {
    return this.locate(buf, docAt) ? decodeValue(buf, this.type, this.valueAt) : MISSING;
  }

  /**
   * Finds the field without decoding it or allocating: on success `type` and `valueAt` describe the
   * element (offsets into `doc`). `docAt` is where the document starts, for documents read in place from a
   * batch. Returns false when the path is absent or passes through a non-document.
   */
  locate(doc: Uint8Array, docAt = 0): boolean {
    let start = docAt + 4;
    let end = docAt + int32(doc, docAt) - 1;
    for (let depth = 0; depth < this.path.length; depth++) {
      if (!this.find(doc, start, end, this.path[depth])) return false;
      if (depth === this.path.length - 1) return true;
      if (this.type !== 0x03) return false;
      start = this.valueAt + 4;
      end = this.valueAt + int32(doc, this.valueAt) - 1;
    }
    return false;
  }

  private find(doc: Uint8Array, at: number, end: number, name: Uint8Array): boolean {
    while (at < end) {
      const type = doc[at];
      const nameEnd = cstringEnd(doc, at + 1);
      const valueAt = nameEnd + 1;
      if (nameEquals(doc, at + 1, nameEnd, name)) {
        this.type = type;
        this.valueAt = valueAt;
        return true;
      }
      at = valueAt + valueSize(doc, type, valueAt);
    }
    this.type = 0;
    return false;
  }
}

/**
 * A value read with `promoteLongs: false`, with every Int64 in the safe range made a number as the scan
 * decodes it (larger ones stay Long): what a checkpoint's ids are compared and written back as.
 */
export function promoteSafeLongs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(promoteSafeLongs);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  const type = (value as { _bsontype?: string })._bsontype;
  if (type === 'Long') {
    const n = (value as { toNumber(): number }).toNumber();
    return Number.isSafeInteger(n) ? n : value;
  }
  if (type !== undefined) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, promoteSafeLongs(v)]));
}

const ID_READER = new RawFieldReader('_id');

/**
 * A raw document's `_id` as a short string (its BSON type and value bytes): equal for equal values of one type,
 * so repeated copies of a document are found without decoding it. Undefined when it has no `_id`.
 */
export function rawIdKey(doc: Uint8Array): string | undefined {
  if (!ID_READER.locate(doc)) return undefined;
  const size = valueSize(doc, ID_READER.type, ID_READER.valueAt);
  return (
    String.fromCharCode(ID_READER.type) +
    Buffer.from(doc.buffer, doc.byteOffset + ID_READER.valueAt, size).toString('latin1')
  );
}
