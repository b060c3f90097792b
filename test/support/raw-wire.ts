import { connect } from 'node:net';
import { BSON, type Document } from 'bson';

/** Host and port of a mongodb:// URI. */
export function addressOf(uri: string): { host: string; port: number } {
  const url = new URL(uri.replace(/^mongodb:/, 'http:'));
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 27017) };
}

/** Sends raw bytes and collects what comes back until the server goes quiet or closes. */
export function exchange(
  uri: string,
  payload: Buffer,
  quietMs = 300,
): Promise<{ reply: Buffer; closed: boolean }> {
  const { host, port } = addressOf(uri);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ reply: Buffer.concat(chunks), closed });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), quietMs);
    };
    socket.on('connect', () => {
      socket.write(payload);
      arm();
    });
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      arm();
    });
    socket.on('close', () => finish(true));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      error.code === 'ECONNRESET' ? finish(true) : reject(error),
    );
  });
}

function header(length: number, requestId: number, opCode: number): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeInt32LE(length, 0);
  buf.writeInt32LE(requestId, 4);
  buf.writeInt32LE(0, 8);
  buf.writeInt32LE(opCode, 12);
  return buf;
}

/** A legacy OP_QUERY command, as old drivers open a connection with. */
export function opQuery(namespace: string, command: Document, requestId = 1): Buffer {
  const body = Buffer.concat([
    Buffer.alloc(4),
    Buffer.from(`${namespace}\0`),
    Buffer.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from(BSON.serialize(command)),
  ]);
  return Buffer.concat([header(16 + body.length, requestId, 2004), body]);
}

/** An OP_MSG with one body section. */
export function opMsg(command: Document, requestId = 1): Buffer {
  const body = Buffer.concat([Buffer.alloc(4), Buffer.from([0]), Buffer.from(BSON.serialize(command))]);
  return Buffer.concat([header(16 + body.length, requestId, 2013), body]);
}

/** The documents of one OP_REPLY or OP_MSG reply. */
export function parseReply(reply: Buffer): { opCode: number; responseTo: number; doc: Document } {
  const opCode = reply.readInt32LE(12);
  const responseTo = reply.readInt32LE(8);
  const docStart = opCode === 1 ? 36 : 21;
  const size = reply.readInt32LE(docStart);
  return { opCode, responseTo, doc: BSON.deserialize(reply.subarray(docStart, docStart + size)) };
}

export { header as wireHeader };
