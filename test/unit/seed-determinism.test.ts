import { describe, expect, it } from 'vitest';
import { seedStore } from '../../src/sandbox/seed/index.ts';
import { Store } from '../../src/sandbox/storage.ts';

// Issue 23 item 8: the demo seed is deterministic, as the README says: the same ObjectIds every run.
describe('the demo seed', () => {
  it('gives every document of both databases the same _id in every run', () => {
    const ids = () => {
      const store = new Store();
      seedStore(store, 'olorin');
      const all: string[] = [];
      for (const [dbName, db] of store.databases)
        for (const [collName, coll] of db.collections)
          for (const doc of coll.docs.values()) all.push(`${dbName}.${collName} ${String(doc._id)}`);
      return all.sort();
    };
    const first = ids();
    expect(first.length).toBeGreaterThan(8000);
    expect(ids()).toEqual(first);
  });
});
