import type { Collection, Db, Document } from 'mongodb';
import type { Relation } from '../config/load.ts';
import { redact } from '../mongo/redact.ts';

/** MongoDB's error code for a command the user's roles do not allow. */
export const UNAUTHORIZED = 13;
const NAMESPACE_NOT_FOUND = 26;

/** What must hold of a parent collection before its children are judged, checked once per scan. */
export interface ParentPreflight {
  /** Reasons the relation is unsafe (destructive commands refuse it without --allow-unsafe). */
  unsafe: string[];
  /** Why the relation is not scanned at all (no index on the parent key, unless allowed). */
  refusal?: string;
  /** The parent collection's default collation, if it has one. */
  collation?: Document;
}

function isUnauthorized(error: unknown): boolean {
  return (error as { code?: number }).code === UNAUTHORIZED;
}

/** The first field of an index's key. */
export function leadingField(index: Document): string {
  return Object.keys(index.key ?? {})[0] ?? '';
}

/** An index a `{field: {$in: …}}` probe can use: `field` first, not partial, not hidden. `_id` always has one. */
export function parentKeyIndex(indexes: Document[], field: string): Document | undefined {
  return indexes.find(
    (index) => leadingField(index) === field && !index.partialFilterExpression && index.hidden !== true,
  );
}

/** A collection's indexes; none for a collection that does not exist. */
export async function indexesOf(coll: Collection): Promise<Document[]> {
  try {
    return await coll.listIndexes().toArray();
  } catch (error) {
    if ((error as { code?: number }).code === NAMESPACE_NOT_FOUND) return [];
    throw error;
  }
}

/** The shell command that creates the index a relation's parent probes need. */
export function createIndexCommand(database: string, collection: string, field: string): string {
  return `db.getSiblingDB(${JSON.stringify(database)}).getCollection(${JSON.stringify(collection)}).createIndex({ ${JSON.stringify(field)}: 1 })`;
}

/**
 * Checks a relation's parent collection: a default collation (the application's meaning of "same key",
 * which exact matching cannot follow) makes an `exact` relation unsafe; a parent key without an index is
 * refused unless collection scans are allowed; a user not allowed to look is told which privilege is missing.
 */
export async function checkParentCollection(
  relation: Relation,
  parentDb: Db,
  allowCollectionScan: boolean,
): Promise<ParentPreflight> {
  const { collection, field } = relation.parent;
  const ns = `${parentDb.databaseName}.${collection}`;
  const result: ParentPreflight = { unsafe: [] };
  try {
    const [info] = await parentDb.listCollections({ name: collection }, { nameOnly: false }).toArray();
    const collation = (info as Document | undefined)?.options?.collation as Document | undefined;
    if (collation && collation.locale !== 'simple') {
      result.collation = collation;
      if (relation.keyMatch === 'exact')
        result.unsafe.push(
          `parent collection ${ns} has the default collation ${JSON.stringify(collation)}: the server treats keys the collation calls equal as the same parent, which keyMatch exact cannot follow`,
        );
    }
  } catch (error) {
    if (!isUnauthorized(error)) throw error;
    result.unsafe.push(
      `cannot read the options of ${ns} (listCollections refused: the user needs the listCollections privilege on ${parentDb.databaseName}) to rule out a collation`,
    );
  }
  if (field === '_id') return result;
  let indexes: Document[];
  try {
    indexes = await indexesOf(parentDb.collection(collection));
  } catch (error) {
    if (!isUnauthorized(error)) throw new Error(redact((error as Error).message));
    result.unsafe.push(
      `cannot check for an index on ${ns}.${field} (listIndexes refused: the user needs the listIndexes privilege on ${parentDb.databaseName})`,
    );
    return result;
  }
  if (!parentKeyIndex(indexes, field) && !allowCollectionScan && indexes.length > 0)
    result.refusal = `no index on parent key ${ns}.${field}: every probe would scan the whole parent collection; create it with ${createIndexCommand(parentDb.databaseName, collection, field)} or pass --allow-collection-scan`;
  return result;
}
