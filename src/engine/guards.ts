import type { Relation, ResolvedConfig, ResolvedSource } from '../config/load.ts';
import { sameDatabase } from '../mongo/sources.ts';

export interface GuardInput {
  config: ResolvedConfig;
  relation: Relation;
  childSource: ResolvedSource;
  parentSource: ResolvedSource;
  /** Documents in the parent collection (estimated), or undefined when it could not be read. */
  parentCount: number | undefined;
  scanned: number;
  ok: number;
  orphans: number;
  parentInactive: number;
  /** Problems with the parent collection found before the scan (collation, missing privileges). */
  parentProblems?: string[];
  /** A parent soft-delete value that is neither a deletion mark nor a live one. */
  ambiguousSoftDelete?: { type: string; parentId: string };
  /** Children whose reference is a mixed-case 24-hex string (objectid-or-hex). */
  mixedCaseHexChildren?: number;
  /** Why the scan could not finish (parent probe failed, aborted), if it did not. */
  incompleteReason?: string;
}

/**
 * The reasons a relation's scan is suspicious; any reason makes it unsafe, and destructive commands
 * refuse unsafe relations unless the operator overrides explicitly.
 */
export function unsafeReasons(input: GuardInput): string[] {
  const { config, relation, childSource, parentSource } = input;
  const reasons: string[] = [];
  const parentName = `${parentSource.database}.${relation.parent.collection}`;
  if (config.separation === 'off')
    reasons.push('OLORIN_USE_SEPARATE_DATABASE=false: database separation is off');
  if (input.incompleteReason) reasons.push(input.incompleteReason);
  if (input.parentCount === undefined) reasons.push(`parent collection ${parentName} is unreachable`);
  else if (input.parentCount === 0) reasons.push(`parent collection ${parentName} is empty`);
  reasons.push(...(input.parentProblems ?? []));
  if (input.ambiguousSoftDelete) {
    const { type, parentId } = input.ambiguousSoftDelete;
    reasons.push(
      `${relation.parent.collection}.${relation.parent.softDeleteField} holds a ${type} (e.g. parent _id ${parentId}): only a date or true marks a deleted parent, and false, 0, "", null or absence a live one`,
    );
  }
  if (input.mixedCaseHexChildren)
    reasons.push(
      `${input.mixedCaseHexChildren} children of ${relation.child.collection} reference their parent by hex in mixed case: string equality is binary, so a parent stored in another mixed form cannot be found`,
    );
  if (input.scanned > 0) {
    // Every child a cleanup could delete counts: orphans and children of inactive parents alike.
    const ratio = (input.orphans + input.parentInactive) / input.scanned;
    if (ratio > config.maxOrphanRatio) {
      reasons.push(
        `orphan ratio ${ratio.toFixed(2)} (orphans and children of inactive parents) is above maxOrphanRatio ${config.maxOrphanRatio}`,
      );
    }
    if (input.ok === 0 && input.parentInactive > 0)
      reasons.push('no child has an active parent: every parent found is soft-deleted or inactive');
  }
  if (config.requireSeparateDatabases && sameDatabase(childSource, parentSource)) {
    reasons.push(
      `child and parent are the same database (${childSource.database}) but separate databases are required`,
    );
  }
  return reasons;
}
