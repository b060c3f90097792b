import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Relation } from '../config/load.ts';
import { canonicalKey } from '../mongo/keys.ts';
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
    candidateLimit: count,
    storage: z.object({ bytes: count, measured: count, unmeasured: count }).strict(),
    roundTrips: z.object({ childBatches: count, parentProbes: count, sizeQueries: count }).strict(),
    durationMs: z.number().nonnegative(),
    mixedCaseHexChildren: count.optional(),
  })
  .strict();

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
