import { hostname, userInfo } from 'node:os';
import { type Db, ObjectId } from 'mongodb';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from './access.ts';

/** `exception`: an allow-list entry added, renewed or removed (its `note` says which). */
export type RunKind = 'scan' | 'clean' | 'restore' | 'exception';
export type RunOutcome = 'succeeded' | 'failed' | 'aborted' | 'running';

export interface RunRecord {
  _id?: ObjectId;
  runId: string;
  kind: RunKind;
  relation: string;
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  operator: string;
  host: string;
  outcome: RunOutcome;
  /** Whether a scan saw every child document (an aborted or failed scan did not). */
  complete: boolean;
  counts: Record<string, number>;
  backupPath?: string;
  error?: string;
  /** Where an unfinished scan got to (`ScanCheckpoint`), so `--resume` can continue it. */
  checkpoint?: Record<string, unknown>;
  /** The time an unfinished scan judges grace by; a resumed scan keeps it. */
  scanTime?: Date;
  /** What an exception run changed, in words (`added reference ObjectId(…) "legal hold" no expiry`). */
  note?: string;
}

/** The operator named in the audit trail: the configured name, else the OS user. */
export function currentOperator(configured?: string): string {
  if (configured) return configured;
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

export function currentHost(): string {
  return hostname();
}

export function newRunId(now = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${new ObjectId().toHexString().slice(-6)}`;
}

/** Every scan, clean and restore of a relation, in the child's database. */
export class RunsStore {
  constructor(
    private readonly db: Db,
    private readonly access: WriteAccess,
  ) {}

  private get collection() {
    return this.db.collection<RunRecord>(OWNED_COLLECTIONS.runs);
  }

  async record(run: RunRecord): Promise<void> {
    assertWritable(this.access, 'record the run');
    await this.collection.replaceOne(
      { runId: run.runId, relation: run.relation, kind: run.kind },
      { ...run },
      { upsert: true },
    );
  }

  /** Writes an unfinished scan's checkpoint into its run record (created as `running` on the first one). */
  async saveCheckpoint(
    run: Pick<RunRecord, 'runId' | 'relation' | 'startedAt' | 'operator' | 'host' | 'scanTime'>,
    checkpoint: Record<string, unknown>,
    scanned: number,
  ): Promise<void> {
    assertWritable(this.access, 'record a scan checkpoint');
    await this.collection.updateOne(
      { runId: run.runId, relation: run.relation },
      {
        $set: { checkpoint, 'counts.scanned': scanned, finishedAt: new Date() },
        $setOnInsert: {
          kind: 'scan',
          startedAt: run.startedAt,
          scanTime: run.scanTime,
          operator: run.operator,
          host: run.host,
          outcome: 'running',
          complete: false,
          durationMs: 0,
        },
      },
      { upsert: true },
    );
  }

  /** Removes an unfinished scan's record (a dry run that finished: it records nothing). */
  async forget(runId: string, relation: string): Promise<void> {
    assertWritable(this.access, 'update the run history');
    await this.collection.deleteOne({ runId, relation, kind: 'scan' });
  }

  /**
   * The scan of a relation that `--resume` continues: the latest one with a checkpoint, when no complete
   * scan finished after it started (its first-seen state and tallies would be stale).
   */
  async resumable(relation: string): Promise<RunRecord | undefined> {
    const [latest] = await this.collection
      .find(
        { relation, kind: 'scan', complete: false, checkpoint: { $exists: true } },
        // Int64 ids stay exact; the engine makes the safe ones numbers, as its scan decodes them.
        { promoteLongs: false },
      )
      .sort({ startedAt: -1 })
      .limit(1)
      .toArray();
    if (!latest) return undefined;
    const previous = await this.previousScan(relation);
    return previous && previous.startedAt > latest.startedAt ? undefined : latest;
  }

  /** The latest complete, successful scan of a relation. */
  async previousScan(relation: string): Promise<RunRecord | undefined> {
    const found = await this.collection
      .find({ relation, kind: 'scan', complete: true, outcome: 'succeeded' })
      .sort({ startedAt: -1 })
      .limit(1)
      .toArray();
    return found[0];
  }

  /** Recent runs, newest first; `relation` and `kind` narrow the list. */
  async recent(options: { relation?: string; kind?: RunKind; limit?: number } = {}): Promise<RunRecord[]> {
    const filter: Record<string, unknown> = {};
    if (options.relation) filter.relation = options.relation;
    if (options.kind) filter.kind = options.kind;
    return this.collection
      .find(filter)
      .sort({ startedAt: -1 })
      .limit(options.limit ?? 50)
      .toArray();
  }
}
