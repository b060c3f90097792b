import { hostname, userInfo } from 'node:os';
import { type Db, ObjectId } from 'mongodb';
import { assertWritable, OWNED_COLLECTIONS, type WriteAccess } from './access.ts';

/** `exception`: an allow-list entry added, renewed or removed (its `note` says which). */
export type RunKind = 'scan' | 'clean' | 'restore' | 'exception';
const RUN_KINDS: RunKind[] = ['scan', 'clean', 'restore', 'exception'];
/**
 * The kind of the documents holding an unfinished scan's checkpoint candidates, a part per checkpoint (what
 * entered the kept candidates since the previous one): beside the run records, never listed as runs.
 */
const CANDIDATE_PART = 'scan-candidates';
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

  /**
   * Writes an unfinished scan's checkpoint into its run record (created as `running` on the first one). The
   * candidates kept since the previous checkpoint go in a part of their own (`append`), written first, so the
   * record never names a part that is not there; `dropBefore` removes the parts a compacted one replaced.
   */
  async saveCheckpoint(
    run: Pick<RunRecord, 'runId' | 'relation' | 'startedAt' | 'operator' | 'host' | 'scanTime'>,
    checkpoint: Record<string, unknown>,
    scanned: number,
    append?: { seq: number; candidates: unknown[] },
    dropBefore?: number,
  ): Promise<void> {
    assertWritable(this.access, 'record a scan checkpoint');
    if (append)
      await this.collection.insertOne({
        runId: run.runId,
        relation: run.relation,
        kind: CANDIDATE_PART,
        seq: append.seq,
        candidates: append.candidates,
      } as unknown as RunRecord);
    await this.collection.updateOne(
      { runId: run.runId, relation: run.relation, kind: 'scan' },
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
    if (dropBefore !== undefined)
      await this.collection.deleteMany({
        runId: run.runId,
        relation: run.relation,
        kind: CANDIDATE_PART,
        seq: { $lt: dropBefore },
      } as never);
  }

  /**
   * The candidate arrays of an unfinished scan's checkpoint parts `from`..`through`, in order, at most `limit`
   * parts (read back as input: the caller checks every entry).
   */
  async candidateParts(
    runId: string,
    relation: string,
    range: { from: number; through: number },
    limit: number,
  ): Promise<unknown[][]> {
    const parts = await this.collection
      .find(
        { runId, relation, kind: CANDIDATE_PART, seq: { $gte: range.from, $lte: range.through } } as never,
        { promoteLongs: false, projection: { candidates: 1, seq: 1 } },
      )
      .sort({ seq: 1 })
      .limit(limit + 1)
      .toArray();
    if (parts.length > limit) throw new Error(`more than ${limit} checkpoint parts`);
    return parts.map((part) => {
      const candidates = (part as unknown as { candidates?: unknown }).candidates;
      if (!Array.isArray(candidates)) throw new Error('a checkpoint part without candidates');
      return candidates;
    });
  }

  /** Removes a scan's checkpoint parts (it finished, or is forgotten). */
  async forgetCandidateParts(runId: string, relation: string): Promise<void> {
    assertWritable(this.access, 'update the run history');
    await this.collection.deleteMany({ runId, relation, kind: CANDIDATE_PART } as never);
  }

  /** Removes an unfinished scan's record (a dry run that finished: it records nothing). */
  async forget(runId: string, relation: string): Promise<void> {
    assertWritable(this.access, 'update the run history');
    await this.collection.deleteOne({ runId, relation, kind: 'scan' });
    await this.forgetCandidateParts(runId, relation);
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
    const filter: Record<string, unknown> = { kind: { $in: RUN_KINDS } };
    if (options.relation) filter.relation = options.relation;
    if (options.kind) filter.kind = options.kind;
    return this.collection
      .find(filter)
      .sort({ startedAt: -1 })
      .limit(options.limit ?? 50)
      .toArray();
  }
}
