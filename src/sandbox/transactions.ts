import type { Binary, Document } from 'bson';
import { CommandError, ErrorCodes } from './command-error.ts';
import type { ClusterTime, DocumentHistory } from './history.ts';

type TransactionState = 'inProgress' | 'committed' | 'aborted';

/**
 * One multi-document transaction of a session, isolated as on mongod: it reads the collections as they were
 * at its snapshot (its start) plus its own writes, and nobody else sees its writes before the commit. Its
 * writes are applied to the store at once and remembered (`held`) with the version last committed, which every
 * other reader is shown instead (`Transactions.uncommittedPatch`); the commit releases them, an abort puts the
 * committed versions back.
 */
export class Transaction {
  state: TransactionState = 'inProgress';
  readonly startedAt = Date.now();
  private readonly undo: (() => void)[] = [];
  private readonly committed: (() => void)[] = [];
  /** Per namespace, the documents this transaction wrote (`_id` key) and their last committed version. */
  readonly held = new Map<string, Map<string, Document | null>>();
  /** Each written namespace's history, where the commit enters the committed versions. */
  private readonly histories = new Map<string, DocumentHistory>();
  private readonly waiters: (() => void)[] = [];

  constructor(
    readonly txnNumber: number,
    /** Cluster time of the snapshot it reads (the newest write at its start). */
    readonly snapshot: ClusterTime,
  ) {}

  /** Remembers how to take back one write, should the transaction abort. */
  record(undo: () => void): void {
    this.undo.push(undo);
  }

  /** Runs `then` when the transaction commits (its oplog entries), never when it aborts. */
  onCommit(then: () => void): void {
    this.committed.push(then);
  }

  /** Notes that this transaction wrote a document whose committed version was `before` (the first write counts). */
  hold(ns: string, idKey: string, before: Document | null, history: DocumentHistory): void {
    const docs = this.held.get(ns) ?? new Map<string, Document | null>();
    this.held.set(ns, docs);
    if (!docs.has(idKey)) docs.set(idKey, before);
    this.histories.set(ns, history);
  }

  holds(ns: string, idKey: string): boolean {
    return this.held.get(ns)?.has(idKey) ?? false;
  }

  /** Resolves when the transaction has committed or aborted. */
  ended(): Promise<void> {
    if (this.state !== 'inProgress') return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) {
      try {
        this.undo[i]();
      } catch {}
    }
    this.undo.length = 0;
    this.committed.length = 0;
    this.finish('aborted');
  }

  /**
   * Applies the commit: its oplog entries, then its documents enter their collections' history at `at()` (the
   * last entry's time), all at once, so no snapshot read sees part of the transaction.
   */
  commit(at: () => ClusterTime, windowMs: number): void {
    this.undo.length = 0;
    for (const then of this.committed.splice(0)) then();
    if (this.held.size) {
      const time = at();
      for (const [ns, docs] of this.held)
        for (const [idKey, before] of docs) this.histories.get(ns)?.record(idKey, before, time, windowMs);
    }
    this.finish('committed');
  }

  private finish(state: TransactionState): void {
    this.state = state;
    this.held.clear();
    this.histories.clear();
    for (const resolve of this.waiters.splice(0)) resolve();
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

  constructor(
    /** mongod's `transactionLifetimeLimitSeconds` as set now (read at every command). */
    private readonly lifetimeLimitSeconds: () => number = () => 60,
    /** Where a new transaction's snapshot is: the newest write's cluster time. */
    private readonly snapshotTime: () => ClusterTime = () => 0n,
  ) {}

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

  /** Whether any transaction is open (readers see the store as it is when none is). */
  anyOpen(): boolean {
    return !this.open().next().done;
  }

  private *open(): Generator<Transaction> {
    for (const transaction of this.sessions.values())
      if (transaction.state === 'inProgress') yield transaction;
  }

  /** The open transaction other than `self` that holds an uncommitted write to the document, if any. */
  holder(ns: string, idKey: string, self?: Transaction): Transaction | undefined {
    for (const transaction of this.open())
      if (transaction !== self && transaction.holds(ns, idKey)) return transaction;
    return undefined;
  }

  /** For a reader in `self` (or outside any): the committed versions of the documents other transactions wrote. */
  uncommittedPatch(ns: string, self?: Transaction): Map<string, Document | null> {
    const patch = new Map<string, Document | null>();
    for (const transaction of this.open()) {
      if (transaction === self) continue;
      for (const [idKey, before] of transaction.held.get(ns) ?? []) patch.set(idKey, before);
    }
    return patch;
  }

  /**
   * Called before every write to a document by a transaction. First writer wins, as on mongod: writing a
   * document another open transaction wrote, or one committed after this transaction's snapshot, fails with
   * WriteConflict (TransientTransactionError) and aborts the transaction, so the driver retries it whole.
   */
  noteWrite(
    transaction: Transaction,
    ns: string,
    idKey: string,
    before: Document | null,
    history: DocumentHistory,
  ): void {
    const lastCommitted = history.lastChangeOf(idKey);
    if (
      this.holder(ns, idKey, transaction) ||
      (lastCommitted !== undefined && lastCommitted > transaction.snapshot)
    ) {
      transaction.rollback();
      throw writeConflict();
    }
    transaction.hold(ns, idKey, before, history);
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
      const started = new Transaction(txnNumber, this.snapshotTime());
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
