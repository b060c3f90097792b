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
  orphans: number;
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
  if (config.separationDisabled)
    reasons.push('OLORIN_USE_SEPARATE_DATABASE=false: database separation is off');
  if (input.incompleteReason) reasons.push(input.incompleteReason);
  if (input.parentCount === undefined) reasons.push(`parent collection ${parentName} is unreachable`);
  else if (input.parentCount === 0) reasons.push(`parent collection ${parentName} is empty`);
  if (input.scanned > 0) {
    const ratio = input.orphans / input.scanned;
    if (ratio > config.maxOrphanRatio) {
      reasons.push(`orphan ratio ${ratio.toFixed(2)} is above maxOrphanRatio ${config.maxOrphanRatio}`);
    }
  }
  if (config.requireSeparateDatabases && sameDatabase(childSource, parentSource)) {
    reasons.push(
      `child and parent are the same database (${childSource.database}) but separate databases are required`,
    );
  }
  return reasons;
}
