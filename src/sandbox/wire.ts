import { BSON, type Document } from 'bson';
import { type Decoded, decodeTyped, promoted } from './typed-values.ts';

/** Opcodes of the MongoDB wire protocol the sandbox speaks. */
export const OpCode = { Reply: 1, Query: 2004, Compressed: 2012, Msg: 2013 } as const;

export const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
export const MAX_MESSAGE_SIZE_BYTES = 48_000_000;
export const MAX_WRITE_BATCH_SIZE = 100_000;
const HEADER_SIZE = 16;
/** The largest document BSON serializes (its own internal buffer's size: 16 MiB and room for a command). */
const MAX_SERIALIZED = 17 * 1024 * 1024;
let scratch: Buffer | undefined;

const MSG_CHECKSUM_PRESENT = 1 << 0;
const MSG_MORE_TO_COME = 1 << 1;

/** A frame that cannot be a MongoDB message; the connection answers with an error or closes. */
export class WireFormatError extends Error {}

export interface IncomingCommand {
  requestId: number;
  /** The legacy OP_QUERY handshake wants an OP_REPLY; everything else an OP_MSG. */
  legacy: boolean;
  /** OP_MSG moreToCome: the client expects no reply. */
  moreToCome: boolean;
  db: string;
  /** The command, every number a plain JavaScript number where it fits (what options are read from). */
  body: Document;
  /**
   * The same command with int64 and whole-double values kept typed (`typed-values.ts`): what documents to
   * store are taken from. The same object as `body` when it holds none.
   */
  typed: Document;
}

export function readMessageLength(chunk: Buffer, offset: number): number {
  return chunk.readInt32LE(offset);
}

function readCString(buf: Buffer, offset: number): [string, number] {
  const end = buf.indexOf(0, offset);
  if (end < 0) throw new WireFormatError('unterminated C string in message');
  return [buf.toString('utf8', offset, end), end + 1];
}

function readDocument(buf: Buffer, offset: number, limit: number): [Decoded, number] {
  if (offset + 5 > limit) throw new WireFormatError('truncated BSON document in message');
  const size = buf.readInt32LE(offset);
  if (size < 5 || offset + size > limit) throw new WireFormatError('BSON document length exceeds message');
  try {
    return [decodeTyped(buf.subarray(offset, offset + size)), offset + size];
  } catch (error) {
    throw new WireFormatError(`invalid BSON: ${(error as Error).message}`);
  }
}

/** Parses one complete frame (header included) into the command it carries. */
export function parseMessage(frame: Buffer): IncomingCommand {
  const requestId = frame.readInt32LE(4);
  const opCode = frame.readInt32LE(12);
  if (opCode === OpCode.Msg) return parseOpMsg(frame, requestId);
  if (opCode === OpCode.Query) return parseOpQuery(frame, requestId);
  if (opCode === OpCode.Compressed)
    throw new WireFormatError('OP_COMPRESSED is not negotiated by this server');
  throw new WireFormatError(`unsupported opCode ${opCode}`);
}

function parseOpMsg(frame: Buffer, requestId: number): IncomingCommand {
  const flags = frame.readUInt32LE(HEADER_SIZE);
  const end = flags & MSG_CHECKSUM_PRESENT ? frame.length - 4 : frame.length;
  let offset = HEADER_SIZE + 4;
  let body: Document | undefined;
  let typed = false;
  const sequences: [string, Document[]][] = [];
  while (offset < end) {
    const kind = frame[offset++];
    if (kind === 0) {
      if (body) throw new WireFormatError('OP_MSG has more than one body section');
      let decoded: Decoded;
      [decoded, offset] = readDocument(frame, offset, end);
      body = decoded.doc;
      typed ||= decoded.typed;
    } else if (kind === 1) {
      const size = frame.readInt32LE(offset);
      const sectionEnd = offset + size;
      if (size < 5 || sectionEnd > end) throw new WireFormatError('document sequence length exceeds message');
      let [identifier, at] = readCString(frame, offset + 4);
      const docs: Document[] = [];
      while (at < sectionEnd) {
        let decoded: Decoded;
        [decoded, at] = readDocument(frame, at, sectionEnd);
        docs.push(decoded.doc);
        typed ||= decoded.typed;
      }
      sequences.push([identifier, docs]);
      offset = sectionEnd;
    } else {
      throw new WireFormatError(`unknown OP_MSG section kind ${kind}`);
    }
  }
  if (!body) throw new WireFormatError('OP_MSG without a body section');
  for (const [identifier, docs] of sequences) {
    const existing = body[identifier];
    body[identifier] = Array.isArray(existing) ? existing.concat(docs) : docs;
  }
  const db = typeof body.$db === 'string' ? body.$db : '';
  if (!db) throw new WireFormatError('OP_MSG body has no $db');
  return {
    requestId,
    legacy: false,
    moreToCome: (flags & MSG_MORE_TO_COME) !== 0,
    db,
    body: typed ? promoted(body) : body,
    typed: body,
  };
}

function parseOpQuery(frame: Buffer, requestId: number): IncomingCommand {
  const [namespace, afterName] = readCString(frame, HEADER_SIZE + 4);
  // numberToSkip and numberToReturn (8 bytes) mean nothing for commands.
  const [{ doc: query }] = readDocument(frame, afterName + 8, frame.length);
  if (!namespace.endsWith('.$cmd')) {
    throw new WireFormatError(`legacy OP_QUERY is only served on <db>.$cmd, not ${namespace}`);
  }
  // Drivers wrap legacy commands as {$query: {...}, $readPreference: ...}.
  const typed = query.$query && typeof query.$query === 'object' ? (query.$query as Document) : query;
  const body = promoted(typed);
  return { requestId, legacy: true, moreToCome: false, db: namespace.slice(0, -'.$cmd'.length), body, typed };
}

/**
 * Builds replies in one growing buffer that is reused for every reply on a connection, so a batch of
 * thousands of documents costs one copy, not one allocation per document.
 */
export class ReplyBuffer {
  private buf = Buffer.allocUnsafe(64 * 1024);
  pos = 0;

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + extra) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  beginOpMsg(responseTo: number): void {
    this.pos = 0;
    this.ensure(HEADER_SIZE + 5);
    this.writeHeader(responseTo, OpCode.Msg);
    this.buf.writeUInt32LE(0, this.pos); // flags: never checksumPresent, never moreToCome
    this.buf[this.pos + 4] = 0; // section kind 0
    this.pos += 5;
  }

  beginOpReply(responseTo: number): void {
    this.pos = 0;
    this.ensure(HEADER_SIZE + 20);
    this.writeHeader(responseTo, OpCode.Reply);
    this.buf.writeInt32LE(0, this.pos); // responseFlags
    this.buf.writeBigInt64LE(0n, this.pos + 4); // cursorID
    this.buf.writeInt32LE(0, this.pos + 12); // startingFrom
    this.buf.writeInt32LE(1, this.pos + 16); // numberReturned
    this.pos += 20;
  }

  private writeHeader(responseTo: number, opCode: number): void {
    this.buf.writeInt32LE(0, 0);
    this.buf.writeInt32LE(nextResponseId(), 4);
    this.buf.writeInt32LE(responseTo, 8);
    this.buf.writeInt32LE(opCode, 12);
    this.pos = HEADER_SIZE;
  }

  /** Appends a whole document; `size` is its BSON size when the caller already knows it. */
  writeDocument(doc: Document, size = BSON.calculateObjectSize(doc)): void {
    this.ensure(size);
    const last = BSON.serializeWithBufferAndIndex(doc, this.buf, { index: this.pos });
    this.pos = last + 1;
  }

  /**
   * Serializes a document aside (a scratch buffer shared by every connection: one thread) and returns its
   * BSON size; `appendSerialized` then copies it in. A cursor batch serializes each document once, instead of
   * walking it once to size it and again to write it.
   */
  serializeAside(doc: Document): number {
    scratch ??= Buffer.allocUnsafe(MAX_SERIALIZED);
    return BSON.serializeWithBufferAndIndex(doc, scratch) + 1;
  }

  /** Appends the document `serializeAside` serialized last (`size` bytes). */
  appendSerialized(size: number): void {
    this.ensure(size);
    scratch!.copy(this.buf, this.pos, 0, size);
    this.pos += size;
  }

  /** Starts an embedded document or array; returns where its length goes. */
  beginDocument(): number {
    this.ensure(4);
    const start = this.pos;
    this.pos += 4;
    return start;
  }

  endDocument(start: number): void {
    this.ensure(1);
    this.buf[this.pos++] = 0;
    this.buf.writeInt32LE(this.pos - start, start);
  }

  elementName(type: number, name: string): void {
    const len = Buffer.byteLength(name);
    this.ensure(len + 2);
    this.buf[this.pos++] = type;
    this.pos += this.buf.write(name, this.pos, 'utf8');
    this.buf[this.pos++] = 0;
  }

  int64(name: string, value: bigint): void {
    this.elementName(0x12, name);
    this.ensure(8);
    this.buf.writeBigInt64LE(value, this.pos);
    this.pos += 8;
  }

  /** A BSON timestamp (0x11): the increment, then the seconds, as two little-endian uint32. */
  timestamp(name: string, value: { high: number; low: number }): void {
    this.elementName(0x11, name);
    this.ensure(8);
    this.buf.writeUInt32LE(value.low >>> 0, this.pos);
    this.buf.writeUInt32LE(value.high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  double(name: string, value: number): void {
    this.elementName(0x01, name);
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  string(name: string, value: string): void {
    this.elementName(0x02, name);
    const len = Buffer.byteLength(value);
    this.ensure(len + 5);
    this.buf.writeInt32LE(len + 1, this.pos);
    this.pos += 4;
    this.pos += this.buf.write(value, this.pos, 'utf8');
    this.buf[this.pos++] = 0;
  }

  /** Finishes the frame and returns a copy the socket may keep while this buffer is reused. */
  finish(): Buffer {
    this.buf.writeInt32LE(this.pos, 0);
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

let responseCounter = 0;
function nextResponseId(): number {
  responseCounter = (responseCounter + 1) & 0x7fffffff;
  return responseCounter;
}
