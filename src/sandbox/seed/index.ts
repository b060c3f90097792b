import { ObjectId } from 'bson';
import type { Store } from '../storage.ts';
import { BAYIT_DATABASE, buildOlorinDemo, OLORIN_DATABASE, OLORIN_DEMO_INDEXES } from './olorin.ts';

/** Seed names the sandbox accepts: both demo databases, or one of them for a two-cluster demo. */
export const SEED_NAMES = ['olorin', 'olorin:platform', 'olorin:bayit'] as const;
export type SeedName = (typeof SEED_NAMES)[number];

const DATABASES_OF: Record<SeedName, string[]> = {
  olorin: [OLORIN_DATABASE, BAYIT_DATABASE],
  'olorin:platform': [OLORIN_DATABASE],
  'olorin:bayit': [BAYIT_DATABASE],
};

export function isSeedName(name: string): name is SeedName {
  return (SEED_NAMES as readonly string[]).includes(name);
}

/**
 * Loads the demo data straight into the store (no wire round trips). Databases that already hold
 * collections (loaded from --data-dir) are left as they are, so a demo keeps its history between runs.
 */
export function seedStore(
  store: Store,
  name: SeedName,
  options: { seed?: number; now?: Date } = {},
): string[] {
  const data = buildOlorinDemo({ ...options, history: true });
  const seeded: string[] = [];
  for (const dbName of DATABASES_OF[name]) {
    if ((store.database(dbName, false)?.collections.size ?? 0) > 0) continue;
    for (const [collName, docs] of Object.entries(data[dbName])) {
      const coll = store.collection(dbName, collName, true)!;
      for (const spec of OLORIN_DEMO_INDEXES[dbName]?.[collName] ?? [])
        coll.addIndex({ v: 2, ...spec } as never);
      for (const doc of docs) coll.insert(doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc);
    }
    seeded.push(dbName);
    store.touch(dbName);
  }
  // Pre- and post-images on every demo collection (also data loaded from an older --data-dir): a replica-set
  // demo's change streams then carry a deleted child's reference, which live counts need.
  for (const dbName of DATABASES_OF[name])
    for (const coll of store.database(dbName, false)?.collections.values() ?? [])
      coll.options.changeStreamPreAndPostImages = { enabled: true };
  return seeded;
}
