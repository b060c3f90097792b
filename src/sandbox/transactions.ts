import type { Binary, Document } from 'bson';
import { CommandError, ErrorCodes } from './command-error.ts';

type TransactionState = 'inProgress' | 'committed' | 'aborted';

/**
 * One multi-document transaction of a session. Its writes are applied at once and undone in reverse on
 * abort: atomic for the session that runs it, but not isolated (other connections see its writes before
 * the commit) — the README lists this among the sandbox's differences.
 */
export class Transaction {
  state: TransactionState = 'inProgress';
  private readonly undo: (() => void)[] = [];

  constructor(readonly txnNumber: number) {}

  /** Remembers how to take back one write, should the transaction abort. */
  record(undo: () => void): void {
    this.undo.push(undo);
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
    this.state = 'aborted';
  }

  commit(): void {
    this.undo.length = 0;
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

/** The sessions' transactions of a replica-set sandbox, checked the way mongod checks them. */
export class Transactions {
  private readonly sessions = new Map<string, Transaction>();

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
      const started = new Transaction(txnNumber);
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
