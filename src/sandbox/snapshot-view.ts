import type { Document } from 'bson';
import { indexKey, valuesAtPath } from './bson-values.ts';
import type { Collection } from './storage.ts';

/**
 * What one reader sees of a collection where it differs from the store, answered at the moment of each read
 * (reads yield to other clients, so the answer must hold for writes made meanwhile too):
 * - `versionOf(key)`: the reader's version of a document that differs (null: absent for the reader), or
 *   undefined when the store's version is the reader's;
 * - `differing()`: every such document now, with its version.
 */
export interface ReadPoint {
  versionOf(key: string): Document | null | undefined;
  differing(): Map<string, Document | null>;
}

/** The store's documents as a reader sees them: a read-only Map, so every read path takes it unchanged. */
class ReaderDocs extends Map<string, Document> {
  constructor(
    private readonly base: Map<string, Document>,
    private readonly point: ReadPoint,
  ) {
    super();
  }

  override get(key: string): Document | undefined {
    const version = this.point.versionOf(key);
    if (version !== undefined) return version ?? undefined;
    return this.base.get(key);
  }

  override has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  override get size(): number {
    let size = this.base.size;
    for (const [key, doc] of this.point.differing()) size += (doc ? 1 : 0) - (this.base.has(key) ? 1 : 0);
    return size;
  }

  override *entries(): MapIterator<[string, Document]> {
    for (const [key, stored] of this.base) {
      const version = this.point.versionOf(key);
      if (version === undefined) yield [key, stored];
      else if (version) yield [key, version];
    }
    // Documents the reader sees that the store no longer holds (deleted after the reader's time).
    for (const [key, doc] of this.point.differing()) if (doc && !this.base.has(key)) yield [key, doc];
  }

  override *values(): MapIterator<Document> {
    for (const [, doc] of this.entries()) yield doc;
  }

  override *keys(): MapIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  override [Symbol.iterator](): MapIterator<[string, Document]> {
    return this.entries();
  }

  override forEach(callback: (value: Document, key: string, map: Map<string, Document>) => void): void {
    for (const [key, doc] of this.entries()) callback(doc, key, this);
  }
}

/**
 * The collection as one reader sees it (a snapshot's time, another transaction's uncommitted writes hidden):
 * the collection's own indexes and options over `ReaderDocs`. Index lookups return the store's matches that
 * the reader sees as stored plus the reader's versions that match, so an index answer needs no second
 * filter. Writes never go through a view.
 */
export function readerView(coll: Collection, point: ReadPoint): Collection {
  const docs = new ReaderDocs(coll.docs, point);
  const view = Object.create(coll) as Collection;
  const extra = [...point.differing()].some(([key, doc]) => doc && !coll.docs.has(key));
  Object.defineProperties(view, {
    docs: { value: docs },
    // The store's `_id` order, less what the reader does not see; sorted anew when the reader sees more.
    idOrder: {
      value: coll.idOrder && !extra ? { ...coll.idOrder, keys: coll.idOrder.keys, removed: true } : undefined,
      writable: true,
    },
    equalityLookup: {
      value: (field: string) => {
        const lookup = coll.equalityLookup(field);
        if (!lookup) return undefined;
        return (value: unknown) => {
          const wanted = indexKey(value);
          const differing = point.differing();
          const found = lookup(value).filter((doc) => !differing.has(indexKey(doc._id)));
          for (const doc of differing.values())
            if (doc && valuesAtPath(doc, field).some((v) => indexKey(v) === wanted)) found.push(doc);
          return found;
        };
      },
    },
  });
  return view;
}
