import type { Collection, Db, Document } from 'mongodb';
import type { Relation } from '../config/load.ts';
import { MIXED_CASE_HEX_REGEX, referenceAt } from '../mongo/keys.ts';
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

function sameCollation(a: Document | undefined, b: Document | undefined): boolean {
  const simple = (c: Document | undefined) => !c || c.locale === 'simple';
  if (simple(a) || simple(b)) return simple(a) && simple(b);
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * An index a `{field: {$in: …}}` probe can use: `field` first as an ascending or descending key (not hashed,
 * text or geo), not partial, not hidden, and with the collation the probe runs under (the collection's
 * default, else simple): an index of another collation cannot answer the probe. `_id` always has one.
 */
export function parentKeyIndex(
  indexes: Document[],
  field: string,
  collectionCollation?: Document,
): Document | undefined {
  return indexes.find((index) => {
    const direction = (index.key as Document | undefined)?.[field];
    return (
      leadingField(index) === field &&
      (direction === 1 || direction === -1) &&
      !index.partialFilterExpression &&
      index.hidden !== true &&
      sameCollation(index.collation as Document | undefined, collectionCollation)
    );
  });
}

/**
 * A value of `field` (a parent key or a child reference) that is a 24-hex string in mixed case
 * (objectid-or-hex), found by the server from the field's index where it has one (only its string part is
 * read): string equality is binary, so no `$in` can match it from another form. Undefined when there is none.
 */
export async function mixedCaseHexKey(
  parents: Collection,
  field: string,
  maxTimeMS: number,
): Promise<unknown> {
  const [found] = await parents
    .find({ [field]: { $regex: MIXED_CASE_HEX_REGEX } } as Document, {
      projection: { _id: 0, [field]: 1 },
      limit: 1,
      maxTimeMS,
      // $regex ignores collations on mongod; said explicitly so no default collation is in the way.
      collation: { locale: 'simple' },
    })
    .toArray();
  return found ? referenceAt(found, field) : undefined;
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
  maxTimeMS: number,
): Promise<ParentPreflight> {
  const { collection, field } = relation.parent;
  const ns = `${parentDb.databaseName}.${collection}`;
  const result: ParentPreflight = { unsafe: [] };
  if (relation.keyMatch === 'objectid-or-hex') {
    const mixed = await mixedCaseHexKey(parentDb.collection(collection), field, maxTimeMS);
    if (mixed !== undefined)
      result.unsafe.push(
        `parent ${ns} has a key in mixed-case hex (${JSON.stringify(mixed)}): string equality is binary, so no probe can find it from an ObjectId or another case; store parent keys as ObjectIds or in one case`,
      );
  }
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
  if (!parentKeyIndex(indexes, field, result.collation) && !allowCollectionScan && indexes.length > 0)
    result.refusal = `no index on parent key ${ns}.${field}: every probe would scan the whole parent collection; create it with ${createIndexCommand(parentDb.databaseName, collection, field)} or pass --allow-collection-scan`;
  return result;
}
