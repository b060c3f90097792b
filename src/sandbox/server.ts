// Over 300 lines: the wire loop, sessions, fail points and command dispatch of one server.
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Binary, type Document, Long, type Timestamp } from 'bson';
import { CommandError, ErrorCodes } from './command-error.ts';
import { adminCommands } from './commands/admin.ts';
import {
  type CommandContext,
  type CommandHandler,
  type CursorBatch,
  countCommand,
  isCursorBatch,
  type RunningOperation,
  type ServerCounters,
  type ServerState,
} from './commands/context.ts';
import { diagnosticCommands } from './commands/diagnostics.ts';
import { checkCommandFields } from './commands/command-fields.ts';
import { killOp } from './commands/current-op.ts';
import { readCommands } from './commands/read.ts';
import { applyOps } from './commands/apply-ops.ts';
import { renameCollection } from './commands/rename.ts';
import { serverInfoCommands } from './commands/server-info.ts';
import { writeCommands } from './commands/write.ts';
import { CursorRegistry } from './cursors.ts';
import { FailPoints, type FaultAction } from './faults.ts';
import { loadDataDir, saveDataDir } from './persistence.ts';
import { WorkBudget } from './query.ts';
import { Oplog } from './oplog.ts';
import { Collection, ID_INDEX, Store } from './storage.ts';
import { clusterTimeOf } from './history.ts';
import { type ClusterParameters, defaultClusterParameters, defaultParameters } from './parameters.ts';
import { Transactions } from './transactions.ts';
import { replicaSetConfig } from './commands/replica-set.ts';
import { TopCounters } from './commands/top.ts';
import {
  type IncomingCommand,
  MAX_BSON_OBJECT_SIZE,
  MAX_MESSAGE_SIZE_BYTES,
  OpCode,
  parseMessage,
  ReplyBuffer,
  WireFormatError,
} from './wire.ts';

const COMMANDS: Record<string, CommandHandler> = {
  ...adminCommands,
  ...readCommands,
  ...writeCommands,
  ...diagnosticCommands,
  ...serverInfoCommands,
  renameCollection,
  killOp,
  applyOps,
};
const HEADER_SIZE = 16;
/** Room left in a reply for the cursor envelope around the batch. */
const BATCH_BYTES = MAX_BSON_OBJECT_SIZE - 1024;
const SAVE_DELAY_MS = 1000;
const MAX_SAVE_DELAY_MS = 10_000;

export interface SandboxOptions {
  /** Load from and save to this directory in mongodump layout. */
  dataDir?: string;
  /**
   * Act as the primary of a one-member replica set of this name: `hello` reports the set, sessions may run
   * multi-document transactions, and `replSetGetStatus` answers (with a simulated secondary whose lag the
   * `sandboxReplicationLag` fail point sets).
   */
  replicaSet?: string;
  /**
   * With `replicaSet`: also listen here (0 = any free port) as the set's secondary: `hello` says SECONDARY,
   * reads with a non-primary read preference are served (from the same data: replication is instant), writes
   * fail with NotWritablePrimary. The primary's `hello` lists both hosts, so drivers discover it.
   */
  secondaryPort?: number;
  /** With `replicaSet`: the majority commit point trails the last applied write by this long (ms). */
  majorityLagMs?: number;
  /** With `secondaryPort`: reads there see the data as it was this long ago (ms). */
  secondaryLagMs?: number;
}

export interface ListeningAddress {
  host: string;
  port: number;
  uri: string;
}

/**
 * A MongoDB-wire-compatible server holding its data in memory: what a standalone mongod does for the
 * commands this tool and the drivers use, so the demo, tests and benchmarks run through the real driver.
 */
export class SandboxServer implements ServerState {
  readonly store = new Store();
  readonly parameters = defaultParameters();
  /** Replica-set mode only: `changeStreamOptions` (pre-image expiry). */
  clusterParameters?: ClusterParameters;
  readonly cursors = new CursorRegistry(() => this.parameters.cursorTimeoutMillis);
  readonly faults = new FailPoints();
  readonly startedAt = new Date();
  readonly transactions = new Transactions(
    () => this.parameters.transactionLifetimeLimitSeconds,
    // A snapshot transaction reads majority-committed data, as on mongod.
    () => (this.oplog ? clusterTimeOf(this.oplog.majorityPoint()) : 0n),
  );
  readonly operations = new Map<number, RunningOperation>();
  oplog?: Oplog;
  readonly argv = process.argv.slice(1);
  private nextOpid = 1;
  replicaSet?: { name: string; host: string; secondary?: string };
  private readonly replicaSetName?: string;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private nextConnectionId = 1;
  readonly counters: ServerCounters = {
    opcounters: { insert: 0, query: 0, update: 0, delete: 0, getmore: 0, command: 0 },
    network: { bytesIn: 0, bytesOut: 0, numRequests: 0 },
    connectionsCreated: 0,
  };
  readonly top = new TopCounters();
  /** `local.system.replset`: the set's configuration, rewritten before each command on `local` reads it. */
  private replsetDocument?: Collection;
  private readonly dataDir?: string;
  private saveTimer?: NodeJS.Timeout;
  private firstUnsavedAt?: number;
  private savedVersion = 0;
  private saving: Promise<void> = Promise.resolve();

  private readonly secondaryPort?: number;
  private secondaryServer?: Server;

  constructor(options: SandboxOptions = {}) {
    this.dataDir = options.dataDir;
    this.replicaSetName = options.replicaSet;
    this.secondaryPort = options.replicaSet ? options.secondaryPort : undefined;
    this.parameters.sandboxMajorityLagMillis = options.majorityLagMs ?? 0;
    this.parameters.sandboxSecondaryLagMillis = options.secondaryLagMs ?? 0;
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket, false));
  }

  /** Puts the set's current configuration (the fail point may have changed it) in `local.system.replset`. */
  private refreshReplsetDocument(): void {
    const collection = this.replsetDocument!;
    for (const doc of [...collection.docs.values()]) collection.remove(doc);
    collection.insert(replicaSetConfig(this));
  }

  private loaded = false;

  /** Loads `--data-dir` (once); `listen` does it too, so call this only to seed before listening. */
  async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    if (this.dataDir) {
      await loadDataDir(this.store, this.dataDir);
      this.savedVersion = this.store.version;
    }
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<ListeningAddress> {
    await this.load();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('sandbox did not get a TCP address');
    const shownHost = host.includes(':') ? `[${host}]` : host;
    const hostPort = `${shownHost}:${address.port}`;
    if (this.replicaSetName) {
      this.replicaSet = { name: this.replicaSetName, host: hostPort };
      // With a secondary, a majority is both members: the commit point trails the secondary's lag too.
      const cluster = defaultClusterParameters();
      this.clusterParameters = cluster;
      this.oplog = new Oplog(
        () =>
          Math.max(
            this.parameters.sandboxMajorityLagMillis,
            this.secondaryPort !== undefined ? this.parameters.sandboxSecondaryLagMillis : 0,
          ),
        () => cluster.preImagesExpireAfterSeconds,
        () => this.parameters.sandboxOplogEntries,
      );
      this.store.database('local', true)!.collections.set('oplog.rs', this.oplog.collection);
      // A collection's creation (explicit, or by its first write) is an entry, as on mongod.
      const oplog = this.oplog;
      this.store.onCreate = (db, coll) =>
        oplog.append({
          op: 'c',
          ns: `${db}.$cmd`,
          ui: coll.uuid,
          o: { create: coll.name, ...coll.options, idIndex: ID_INDEX },
        });
      this.replsetDocument = new Collection('system.replset', {}, undefined, 'local');
      this.store.database('local', true)!.collections.set('system.replset', this.replsetDocument);
      if (this.secondaryPort !== undefined) {
        const secondary = createServer({ noDelay: true }, (socket) => this.accept(socket, true));
        this.secondaryServer = secondary;
        await new Promise<void>((resolve, reject) => {
          secondary.once('error', reject);
          secondary.listen(this.secondaryPort, host, () => resolve());
        });
        const secondaryAddress = secondary.address();
        if (!secondaryAddress || typeof secondaryAddress === 'string')
          throw new Error('sandbox secondary did not get a TCP address');
        this.replicaSet.secondary = `${shownHost}:${secondaryAddress.port}`;
      }
      return { host, port: address.port, uri: `mongodb://${hostPort}/?replicaSet=${this.replicaSetName}` };
    }
    return { host, port: address.port, uri: `mongodb://${hostPort}/?directConnection=true` };
  }

  openConnections(): number {
    return this.sockets.size;
  }

  /** Stops listening, closes every connection and saves pending data. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.secondaryServer)
      await new Promise<void>((resolve) => this.secondaryServer!.close(() => resolve()));
    clearTimeout(this.saveTimer);
    await this.saveNow();
  }

  /** Called after each command: saves once writes pause for a second (at the latest 10 s after the first). */
  private scheduleSave(): void {
    if (!this.dataDir || this.store.version === this.savedVersion) return;
    this.firstUnsavedAt ??= Date.now();
    clearTimeout(this.saveTimer);
    const overdue = Date.now() - this.firstUnsavedAt >= MAX_SAVE_DELAY_MS;
    this.saveTimer = setTimeout(
      () => {
        this.saveTimer = undefined;
        this.firstUnsavedAt = undefined;
        void this.saveNow();
      },
      overdue ? 0 : SAVE_DELAY_MS,
    );
  }

  commandNames(): string[] {
    return Object.keys(COMMANDS);
  }

  saveNow(): Promise<void> {
    const dataDir = this.dataDir;
    if (!dataDir) return this.saving;
    this.saving = this.saving.then(async () => {
      if (this.store.version === this.savedVersion) return;
      const version = this.store.version;
      await saveDataDir(this.store, dataDir);
      this.savedVersion = version;
    });
    return this.saving;
  }

  private accept(socket: Socket, secondary: boolean): void {
    this.sockets.add(socket);
    const connection = new Connection(this, socket, this.nextConnectionId++, secondary);
    this.counters.connectionsCreated++;
    socket.on('data', (chunk) => connection.receive(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  /**
   * A write's acknowledgement: a `failCommand` writeConcernError as mongod attaches it, or, while
   * `sandboxMajorityUnreachable` is on, a `w: "majority"` write waiting for its wtimeout (without one, until
   * the fail point is turned off, as mongod waits for ever) and then failing with WriteConcernFailed (64).
   */
  private async applyWriteConcern(
    name: string,
    body: Document,
    reply: Document,
    fault: FaultAction | undefined,
  ): Promise<Document> {
    if (!WRITE_COMMANDS.has(name) || reply.ok === 0) return reply;
    if (fault?.writeConcernError) return { ...reply, writeConcernError: fault.writeConcernError };
    const concern = body.writeConcern as Document | undefined;
    if (concern?.w !== 'majority' || !this.oplog) return reply;
    const wtimeout = Number(concern.wtimeout ?? concern.wtimeoutMS ?? 0);
    const deadline = wtimeout > 0 ? Date.now() + wtimeout : Number.POSITIVE_INFINITY;
    // Acknowledged once the majority commit point has reached the write (or, unreachable, never).
    const written = this.oplog.latest();
    const reached = () =>
      !this.faults.majorityUnreachable && (this.oplog?.majorityPoint().compare(written) ?? 0) >= 0;
    while (!reached() && Date.now() < deadline) await sleep(WRITE_CONCERN_POLL_MS);
    if (reached()) return reply;
    return {
      ...reply,
      writeConcernError: {
        code: 64,
        codeName: 'WriteConcernFailed',
        errmsg: 'waiting for replication timed out',
        errInfo: { wtimeout: true, writeConcern: concern },
      },
    };
  }

  /**
   * What a replica-set member adds to every reply: `operationTime` (the last applied write: a causal session's
   * next read waits for it) and the gossiped `$clusterTime` (unsigned: the sandbox has no keys). None standalone.
   */
  clusterTimeFields(): { operationTime?: Timestamp; $clusterTime?: Document } {
    if (!this.oplog) return {};
    const time = this.oplog.latest();
    return {
      operationTime: time,
      $clusterTime: {
        clusterTime: time,
        signature: { hash: new Binary(Buffer.alloc(20), 0), keyId: Long.ZERO },
      },
    };
  }

  /** Runs one command; always resolves to a reply (errors become `{ok: 0}`). */
  async execute(
    command: IncomingCommand,
    connectionId: number,
    appName: string | undefined,
    /** Arrived on the secondary's port. */
    secondary = false,
  ): Promise<Document | CursorBatch | 'close'> {
    const name = Object.keys(command.body)[0] ?? '';
    const opid = this.nextOpid++;
    this.operations.set(opid, {
      opid,
      connectionId,
      appName,
      db: command.db,
      command: command.body,
      startedAt: Date.now(),
    });
    try {
      const target = name === 'getMore' ? command.body.collection : command.body[name];
      const namespace = typeof target === 'string' ? `${command.body.$db}.${target}` : undefined;
      const fault = this.faults.match(name, appName, namespace);
      if (fault) {
        if (fault.delayMs) await sleep(fault.delayMs);
        if (fault.closeConnection) return 'close';
        if (fault.error) throw fault.error;
      }
      if (secondary) refuseOnSecondary(name, command.body);
      if (command.db === 'local' && target === 'oplog.rs' && WRITES_REFUSED_ON_OPLOG.has(name))
        throw new CommandError(ErrorCodes.InvalidNamespace, "cannot write to 'local.oplog.rs'");
      if (command.db === 'local' && target === 'system.replset' && WRITES_REFUSED_ON_OPLOG.has(name))
        throw new CommandError(
          ErrorCodes.NotImplemented,
          "the sandbox's local.system.replset is read-only (its members are set by the sandboxReplicationLag fail point)",
        );
      if (command.db === 'local' && this.replsetDocument) this.refreshReplsetDocument();
      const handler = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
      if (!handler) throw new CommandError(ErrorCodes.CommandNotFound, `no such command: '${name}'`);
      const { body } = command;
      countCommand(this.counters, name, body);
      checkCommandFields(name, body);
      if (this.replicaSet) this.transactions.reapExpired();
      const transaction = this.replicaSet ? this.transactions.forCommand(name, body) : undefined;
      if (
        !this.replicaSet &&
        (body.txnNumber !== undefined || body.startTransaction || body.autocommit === false)
      ) {
        throw new CommandError(
          ErrorCodes.IllegalOperation,
          'Transaction numbers are only allowed on a replica set member or mongos',
        );
      }
      const ctx: CommandContext = {
        server: this,
        connectionId,
        db: command.db,
        body,
        typed: command.typed,
        budget: new WorkBudget(body.maxTimeMS),
        transaction,
        secondary,
      };
      const running = this.operations.get(opid);
      if (running) running.budget = ctx.budget;
      const started = performance.now();
      try {
        const reply = await handler(ctx);
        return isCursorBatch(reply) ? reply : await this.applyWriteConcern(name, body, reply, fault);
      } finally {
        if (namespace) this.top.record(namespace, name, Math.round((performance.now() - started) * 1000));
      }
    } catch (error) {
      if (error instanceof CommandError) return error.toReply();
      return new CommandError(ErrorCodes.InternalError, (error as Error).message ?? String(error)).toReply();
    } finally {
      this.operations.delete(opid);
      this.scheduleSave();
    }
  }
}

/** Commands a secondary serves only when the read preference allows a secondary. */
const READS = new Set([
  'find',
  'getMore',
  'aggregate',
  'count',
  'distinct',
  'listCollections',
  'listIndexes',
  'collStats',
  'dbStats',
]);
const SECONDARY_WRITES = new Set([
  'insert',
  'update',
  'delete',
  'findAndModify',
  'create',
  'drop',
  'dropDatabase',
  'createIndexes',
  'dropIndexes',
  'commitTransaction',
  'abortTransaction',
  'collMod',
  'renameCollection',
  'applyOps',
]);

/** What mongod's secondary refuses: any write, and a read whose read preference is primary. */
function refuseOnSecondary(name: string, body: Document): void {
  if (SECONDARY_WRITES.has(name) || body.startTransaction)
    throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary', {
      errorLabels: ['RetryableWriteError'],
    });
  const mode = (body.$readPreference as Document | undefined)?.mode ?? 'primary';
  if (READS.has(name) && mode === 'primary' && name !== 'getMore')
    throw new CommandError(ErrorCodes.NotPrimaryNoSecondaryOk, 'not primary and secondaryOk=false');
}

/** Writes that would change the oplog behind the server's back (mongod refuses them too). */
const WRITES_REFUSED_ON_OPLOG = new Set([
  'insert',
  'update',
  'delete',
  'findAndModify',
  'drop',
  'createIndexes',
]);

/** Commands whose `writeConcern` the sandbox answers for (the write itself is applied before it waits). */
const WRITE_COMMANDS = new Set(['insert', 'update', 'delete', 'findAndModify', 'commitTransaction']);
const WRITE_CONCERN_POLL_MS = 5;

/** One client connection: reassembles frames, runs their commands one at a time, writes replies. */
class Connection {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private queue: Promise<void> = Promise.resolve();
  private readonly reply = new ReplyBuffer();
  private appName: string | undefined;

  constructor(
    private readonly server: SandboxServer,
    private readonly socket: Socket,
    private readonly id: number,
    private readonly secondary: boolean,
  ) {}

  receive(chunk: Buffer): void {
    this.server.counters.network.bytesIn += chunk.length;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const length = this.chunks[0].readInt32LE(0);
      if (length < HEADER_SIZE || length > MAX_MESSAGE_SIZE_BYTES) {
        this.rejectFrame(length);
        return;
      }
      if (this.buffered < length) return;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      const frame = all.subarray(0, length);
      const rest = all.subarray(length);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
      this.server.counters.network.numRequests++;
      this.queue = this.queue
        .then(() => this.process(frame))
        .catch(() => {
          this.socket.destroy();
        });
    }
  }

  /** A length no MongoDB message can have: answer once if we can tell who asked, then hang up. */
  private rejectFrame(length: number): void {
    const head = Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    this.socket.pause();
    if (head.length >= HEADER_SIZE && length > MAX_MESSAGE_SIZE_BYTES) {
      const error = new CommandError(
        ErrorCodes.BSONObjectTooLarge,
        `message length ${length} exceeds maxMessageSizeBytes ${MAX_MESSAGE_SIZE_BYTES}`,
      );
      this.queue = this.queue.then((): void => {
        this.send(head.readInt32LE(4), head.readInt32LE(12) === OpCode.Query, error.toReply());
        this.socket.end();
      });
      return;
    }
    this.socket.destroy();
  }

  private async process(frame: Buffer): Promise<void> {
    let command: IncomingCommand;
    try {
      command = parseMessage(frame);
    } catch (error) {
      if (!(error instanceof WireFormatError)) throw error;
      const reply = new CommandError(ErrorCodes.InvalidBSON, error.message).toReply();
      this.send(frame.readInt32LE(4), frame.readInt32LE(12) === OpCode.Query, reply);
      return;
    }
    const client = command.body.client as Document | undefined;
    if (client?.application?.name) this.appName = String(client.application.name);
    const result = await this.server.execute(command, this.id, this.appName, this.secondary);
    if (result === 'close') {
      this.socket.destroy();
      return;
    }
    if (command.moreToCome || this.socket.destroyed) return;
    if (!isCursorBatch(result)) {
      this.send(command.requestId, command.legacy, { ...result, ...this.server.clusterTimeFields() });
      return;
    }
    try {
      this.sendCursorBatch(command, result);
    } catch (error) {
      // A projection can fail on a document while the batch is built: answer with the error, keep the connection.
      this.server.cursors.kill(result.cursor.id);
      const reply =
        error instanceof CommandError
          ? error
          : new CommandError(ErrorCodes.BadValue, (error as Error).message);
      this.send(command.requestId, command.legacy, reply.toReply());
    }
  }

  private begin(requestId: number, legacy: boolean): void {
    if (legacy) this.reply.beginOpReply(requestId);
    else this.reply.beginOpMsg(requestId);
  }

  private send(requestId: number, legacy: boolean, doc: Document): void {
    this.begin(requestId, legacy);
    this.reply.writeDocument(doc);
    this.write(this.reply.finish());
  }

  /** Streams a cursor batch into the reply buffer: one projected document at a time, up to 16 MiB. */
  private sendCursorBatch(command: IncomingCommand, batch: CursorBatch): void {
    const { cursor } = batch;
    const r = this.reply;
    this.begin(command.requestId, command.legacy);
    const top = r.beginDocument();
    r.elementName(0x03, 'cursor');
    const envelope = r.beginDocument();
    r.elementName(0x04, batch.field);
    const array = r.beginDocument();
    const start = r.pos;
    const limit = batch.batchSize ?? Number.POSITIVE_INFINITY;
    for (let i = 0; i < limit && cursor.pos < cursor.docs.length; i++) {
      const doc = cursor.project ? cursor.project(cursor.docs[cursor.pos]) : cursor.docs[cursor.pos];
      const size = r.serializeAside(doc);
      if (i > 0 && r.pos - start + size + 8 > BATCH_BYTES) break;
      r.elementName(0x03, String(i));
      r.appendSerialized(size);
      cursor.pos++;
    }
    r.endDocument(array);
    const stream = cursor.changeStream;
    const done = stream ? stream.invalidated : batch.single || cursor.pos >= cursor.docs.length;
    if (done) this.server.cursors.kill(cursor.id);
    r.int64('id', done ? 0n : cursor.id);
    r.string('ns', cursor.ns);
    if (cursor.atClusterTime && batch.field === 'firstBatch')
      r.timestamp('atClusterTime', cursor.atClusterTime);
    if (stream) {
      r.elementName(0x03, 'postBatchResumeToken');
      r.writeDocument(stream.postBatchResumeToken());
    }
    r.endDocument(envelope);
    r.double('ok', 1);
    const times = this.server.clusterTimeFields();
    if (times.operationTime && times.$clusterTime) {
      r.timestamp('operationTime', times.operationTime);
      r.elementName(0x03, '$clusterTime');
      r.writeDocument(times.$clusterTime);
    }
    r.endDocument(top);
    this.write(r.finish());
  }

  private write(bytes: Uint8Array): void {
    this.server.counters.network.bytesOut += bytes.length;
    this.socket.write(bytes);
  }
}
