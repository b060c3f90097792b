import { describe, expect, it } from 'vitest';
import { type CleanupPlan, planText, type RelationPlan } from '../../src/cleanup/plan.ts';

const endpoint = (collection: string) => ({ source: 's', database: 'db', collection, field: 'ref' });

function relation(name: string, overrides: Partial<RelationPlan>): RelationPlan {
  return {
    name,
    child: endpoint(name),
    parent: endpoint('parents'),
    deletable: 0,
    toDelete: 0,
    deferred: 0,
    batches: 0,
    estimatedBackupBytes: 0,
    excepted: 0,
    inGrace: 0,
    invalidReference: 0,
    safe: true,
    unsafeReasons: [],
    candidates: [],
    sampled: false,
    ...overrides,
  };
}

describe('the dry run', () => {
  it('details the relations with something to delete, and puts the others on one line with why', () => {
    const plan: CleanupPlan = {
      backupRoot: '/b',
      deleteBatchSize: 1000,
      refusals: [],
      relations: [
        relation('embeddings', { deletable: 180, toDelete: 180, batches: 1 }),
        relation('recaps', { inGrace: 40, excepted: 2 }),
        relation('dubbing', { invalidReference: 5 }),
        relation('partners', { safe: false, unsafeReasons: ['parent collection is empty'] }),
      ],
    };
    const text = planText(plan);
    expect(text).toContain('would delete 180 of 180 deletable in 1 batch of 1,000');
    expect(text).toContain(
      'nothing to delete in recaps (40 in grace, 2 excepted, 0 invalid), dubbing (0 in grace, 0 excepted, 5 invalid)',
    );
    expect(text).not.toMatch(/^recaps /m);
    // An unsafe relation keeps its block, so its reasons are read even when it has nothing to delete.
    expect(text).toContain('guards: UNSAFE - parent collection is empty');
  });
});
