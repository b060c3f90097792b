import type { Binary, Document } from 'bson';
import { CommandError, ErrorCodes } from './command-error.ts';

type TransactionState = 'inProgress' | 'committed' | 'aborted';

/**
 * One multi-document transaction of a session. Its writes are applied at once and undone in reverse on
 * abort: atomic for the session that runs it, but not isolated (other connections see its writes before
 * the commit) — the README lists this among the sandbox's differences. Its snapshot is the write sequence
 * number at its start: writing a document someone else wrote after that is a write conflict, as on mongod.
 */
export class Transaction {
  state: TransactionState = 'inProgress';
  private readonly undo: (() => void)[] = [];
  private readonly committed: (() => void)[] = [];

  readonly startedAt = Date.now();

  constructor(
    readonly txnNumber: number,
    readonly snapshot: number,
  ) {}

  /** Remembers how to take back one write, should the transaction abort. */
  record(undo: () => void): void {
    this.undo.push(undo);
  }

  /** Runs `then` when the transaction commits (its oplog entries), never when it aborts. */
  onCommit(then: () => void): void {
    this.committed.push(then);
  }

  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) {
      // Without isolation another connection may have written the same _id meanwhile (a write conflict on
      // mongod); the rest is still taken back.
      try {
        this.undo[i]();
      } catch {}
    }
    this.undo.length = 0;
    this.committed.length = 0;
    this.state = 'aborted';
  }

  commit(): void {
    this.undo.length = 0;
    for (const then of this.committed.splice(0)) then();
    this.state = 'committed';
  }
}

function noSuchTransaction(txnNumber: number): CommandError {
  return new CommandError(
    ErrorCodes.NoSuchTransaction,
    `Transaction with txnNumber ${txnNumber} has been aborted.`,
    {
      errorLabels: ['TransientTransactionError'],
    },
  );
}

function writeConflict(): CommandError {
  return new CommandError(
    ErrorCodes.WriteConflict,
    'Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.',
    { errorLabels: ['TransientTransactionError'] },
  );
}

/** The sessions' transactions of a replica-set sandbox, checked the way mongod checks them. */
export class Transactions {
  private readonly sessions = new Map<string, Transaction>();

  /** `lifetimeLimitSeconds`: mongod's `transactionLifetimeLimitSeconds` as set now (read at every command). */
  constructor(private readonly lifetimeLimitSeconds: () => number = () => 60) {}

  /**
   * Aborts every transaction open longer than `transactionLifetimeLimitSeconds`, as mongod's periodic job
   * does: its writes are taken back and its next command gets NoSuchTransaction (TransientTransactionError).
   * Called before every command, so no expired transaction is seen alive by any client.
   */
  reapExpired(): void {
    const cutoff = Date.now() - this.lifetimeLimitSeconds() * 1000;
    for (const transaction of this.sessions.values())
      if (transaction.state === 'inProgress' && transaction.startedAt < cutoff) transaction.rollback();
  }
  private sequence = 0;
  /** While a transaction is open: who last wrote each document (namespace and `_id` key), and when. */
  private readonly lastWrites = new Map<string, { sequence: number; by: Transaction | undefined }>();

  private anyOpen(): boolean {
    for (const transaction of this.sessions.values()) if (transaction.state === 'inProgress') return true;
    return false;
  }

  /**
   * Called before every write to a document. A transaction writing a document that another writer changed
   * after the transaction's snapshot fails with WriteConflict (TransientTransactionError) and is aborted, so
   * the driver retries it from the start. Writes are only remembered while some transaction is open.
   */
  noteWrite(transaction: Transaction | undefined, document: string): void {
    if (!this.anyOpen()) {
      this.lastWrites.clear();
      return;
    }
    const last = this.lastWrites.get(document);
    if (transaction && last && last.by !== transaction && last.sequence > transaction.snapshot) {
      transaction.rollback();
      throw writeConflict();
    }
    this.lastWrites.set(document, { sequence: ++this.sequence, by: transaction });
  }

  /**
   * The transaction a command belongs to: undefined for a command outside any (no `autocommit` field; a
   * retryable write's bare `txnNumber` included), else the session's transaction, started when the command
   * says `startTransaction`.
   */
  forCommand(name: string, body: Document): Transaction | undefined {
    if (body.autocommit === undefined) {
      if (name === 'commitTransaction' || name === 'abortTransaction')
        throw new CommandError(ErrorCodes.InvalidOptions, `${name} must be run within a transaction`);
      return undefined;
    }
    if (body.autocommit !== false)
      throw new CommandError(ErrorCodes.InvalidOptions, 'autocommit field may only be false');
    const lsid = (body.lsid as { id?: Binary } | undefined)?.id;
    if (!lsid || body.txnNumber === undefined)
      throw new CommandError(
        ErrorCodes.InvalidOptions,
        'a transaction needs a session (lsid) and a txnNumber',
      );
    const session = Buffer.from(lsid.buffer).toString('hex');
    const txnNumber = Number(body.txnNumber);
    const current = this.sessions.get(session);
    if (body.startTransaction === true) {
      if (current && current.txnNumber >= txnNumber)
        throw new CommandError(
          ErrorCodes.TransactionTooOld,
          `txnNumber ${txnNumber} is not newer than ${current.txnNumber}`,
        );
      // A new transaction on the session ends the one before it, as on mongod.
      if (current?.state === 'inProgress') current.rollback();
      const started = new Transaction(txnNumber, this.sequence);
      this.sessions.set(session, started);
      return started;
    }
    if (!current || current.txnNumber !== txnNumber) throw noSuchTransaction(txnNumber);
    if (current.state === 'aborted') throw noSuchTransaction(txnNumber);
    if (current.state === 'committed' && name !== 'commitTransaction')
      throw new CommandError(ErrorCodes.TransactionCommitted, `Transaction ${txnNumber} has been committed.`);
    return current;
  }

  /** Ends the sessions' transactions (endSessions), taking back what was not committed. */
  end(sessions: unknown[]): void {
    for (const entry of sessions) {
      const id = (entry as { id?: Binary } | undefined)?.id;
      if (!id) continue;
      const key = Buffer.from(id.buffer).toString('hex');
      const transaction = this.sessions.get(key);
      if (transaction?.state === 'inProgress') transaction.rollback();
      this.sessions.delete(key);
    }
  }
}
