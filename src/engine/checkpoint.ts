import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Relation } from '../config/load.ts';
import { canonicalKey } from '../mongo/keys.ts';
import { OldestFirst } from './oldest-first.ts';
import { CATEGORIES, type ScanCheckpoint } from './scan.ts';

/**
 * What a checkpoint was taken for: the relation's definition, its key rule and grace. A checkpoint whose
 * fingerprint differs (the config changed, or it was written by hand) is never resumed.
 */
export function relationFingerprint(relation: Relation): string {
  const { name, child, parent, keyMatch, graceDays } = relation;
  return createHash('sha256')
    .update(JSON.stringify({ name, child, parent, keyMatch, graceDays }))
    .digest('hex');
}

const count = z.number().int().nonnegative();
const partition = z
  .object({
    min: z.unknown().optional(),
    max: z.unknown().optional(),
    after: z.unknown().optional(),
    done: z.boolean(),
  })
  .strict();
const sample = z
  .object({ id: z.unknown(), reference: z.unknown().optional(), since: z.date().optional() })
  .strict();
const candidate = z
  .object({
    id: z.unknown(),
    reference: z.unknown(),
    key: z.string().min(1),
    category: z.enum(['orphans', 'parentInactive']),
    since: z.date(),
  })
  .strict();

const checkpointSchema = z
  .object({
    fingerprint: z.string().length(64),
    partitions: z.array(partition).min(1).max(64),
    counts: z
      .object(
        Object.fromEntries(CATEGORIES.map((c) => [c, count])) as Record<
          (typeof CATEGORIES)[number],
          typeof count
        >,
      )
      .strict(),
    scanned: count,
    inGrace: count,
    deletable: count,
    samples: z.object(Object.fromEntries(CATEGORIES.map((c) => [c, z.array(sample).max(1000)]))).strict(),
    candidates: z.array(candidate).max(10_000),
    candidateParts: z
      .object({ from: count, through: z.number().int().min(-1) })
      .strict()
      .optional(),
    candidateLimit: count,
    storage: z
      .object({ bytes: count, measured: count, unmeasured: count, batches: count.optional() })
      .strict(),
    roundTrips: z.object({ childBatches: count, parentProbes: count, sizeQueries: count }).strict(),
    durationMs: z.number().nonnegative(),
    mixedCaseHexChildren: count.optional(),
  })
  .strict();

/** A resume reads at most this many candidate parts (compaction keeps far fewer). */
export const MAX_CANDIDATE_PARTS = 10_000;
/** ... and at most this many candidates in them. */
const MAX_PART_CANDIDATES = 1_000_000;

/**
 * A saved checkpoint head with its candidates read back from its parts: each part's entries checked against the
 * candidate schema, and the oldest `candidateLimit` of them all (with any the head itself holds) kept — the
 * candidates the scan kept when it saved, since every part holds what entered them since the one before.
 * Throws (the checkpoint is then refused) when a part is malformed or there are too many.
 */
export async function withCandidateParts(
  raw: unknown,
  readParts: (range: { from: number; through: number }) => Promise<unknown[][]>,
): Promise<unknown> {
  const head = raw as { candidateParts?: unknown; candidates?: unknown; candidateLimit?: unknown };
  if (!head || typeof head !== 'object' || head.candidateParts === undefined) return raw;
  const range = z
    .object({ from: count, through: z.number().int().min(-1) })
    .strict()
    .safeParse(head.candidateParts);
  const limit = count.safeParse(head.candidateLimit);
  if (!range.success || !limit.success || !Array.isArray(head.candidates)) return raw;
  const kept = new OldestFirst<z.infer<typeof candidate>>(limit.data, (c) => c.since.getTime());
  let read = 0;
  for (const entries of [head.candidates, ...(await readParts(range.data))]) {
    read += entries.length;
    if (read > MAX_PART_CANDIDATES)
      throw new Error(`more than ${MAX_PART_CANDIDATES} candidates in its parts`);
    const parsed = z.array(candidate).safeParse(entries);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`a candidate part is malformed (${issue.path.join('.')}: ${issue.message})`);
    }
    for (const entry of parsed.data) kept.offer(entry);
  }
  return { ...head, candidates: kept.sorted() };
}

/**
 * A checkpoint read back from `orphan_cleanup_runs` (writable by any user with the scan role), checked like any
 * input: its shape, its fingerprint, its tallies adding up (every child in one category; candidates among the
 * deletable) and every candidate's key being its reference's. Returns the reason it is refused, or the
 * checkpoint.
 */
export function validCheckpoint(
  raw: unknown,
  relation: Relation,
): { checkpoint: ScanCheckpoint } | { refused: string } {
  const parsed = checkpointSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { refused: `malformed (${issue.path.join('.') || 'checkpoint'}: ${issue.message})` };
  }
  const checkpoint = parsed.data as unknown as ScanCheckpoint & { fingerprint: string };
  if (checkpoint.fingerprint !== relationFingerprint(relation))
    return {
      refused: 'taken for another definition of the relation (its fields, key rule or grace changed)',
    };
  const counted = CATEGORIES.reduce((sum, category) => sum + checkpoint.counts[category], 0);
  if (counted !== checkpoint.scanned)
    return { refused: `its categories add up to ${counted}, not the ${checkpoint.scanned} children it read` };
  if (
    checkpoint.inGrace + checkpoint.deletable !==
    checkpoint.counts.orphans + checkpoint.counts.parentInactive
  )
    return {
      refused: 'its in-grace and deletable tallies do not add up to its orphans and inactive children',
    };
  if (checkpoint.candidates.length > checkpoint.deletable)
    return { refused: 'it holds more candidates than deletable children' };
  if (checkpoint.candidates.some((c) => canonicalKey(c.reference, relation.keyMatch) !== c.key))
    return { refused: "a candidate's key is not its reference's" };
  return { checkpoint };
}
