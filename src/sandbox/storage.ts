import { randomUUID } from 'node:crypto';
import { type Document, UUID } from 'bson';
import { Query } from 'mingo';
import { compareBson, indexKey, valuesAtPath } from './bson-values.ts';
import { CommandError, ErrorCodes } from './command-error.ts';
import { DocumentHistory } from './history.ts';
import { checkIdField, duplicateKey } from './key-errors.ts';

export interface IndexSpec {
  v: number;
  key: Record<string, number | string>;
  name: string;
  unique?: boolean;
  sparse?: boolean;
  expireAfterSeconds?: number;
  partialFilterExpression?: Document;
  [option: string]: unknown;
}

/** Several documents may share a key; one `_id` key is kept bare to spare a Set per entry. */
type Postings = string | Set<string>;

const KEY_SEPARATOR = '\u0001';

/** A secondary index: key string -> `_id` keys. Used for equality and `$in` lookups and uniqueness. */
export class SecondaryIndex {
  readonly spec: IndexSpec;
  readonly fields: string[];
  private readonly partial?: Query;
  private readonly entries = new Map<string, Postings>();

  constructor(spec: IndexSpec) {
    this.spec = spec;
    this.fields = Object.keys(spec.key);
    if (spec.partialFilterExpression) this.partial = new Query(spec.partialFilterExpression);
  }

  /** The keys a document is indexed under, or none when sparse/partial leaves it out. */
  keysFor(doc: Document): string[] {
    if (this.partial && !this.partial.test(doc)) return [];
    if (this.fields.length === 1) {
      const values = valuesAtPath(doc, this.fields[0]);
      if (values.length === 0) return this.spec.sparse ? [] : ['z'];
      return [...new Set(values.map(indexKey))];
    }
    const parts = this.fields.map((field) => valuesAtPath(doc, field));
    if (this.spec.sparse && parts.every((values) => values.length === 0)) return [];
    return [parts.map((values) => (values.length === 0 ? 'z' : indexKey(values[0]))).join(KEY_SEPARATOR)];
  }

  /** Throws the duplicate key error mongod gives when another document already holds one of `keys`. */
  assertUnique(doc: Document, idKey: string, keys: string[], ns: string): void {
    if (!this.spec.unique) return;
    for (const key of keys) {
      const holder = this.entries.get(key);
      if (holder === undefined) continue;
      if (typeof holder === 'string' ? holder !== idKey : holder.size > 1 || !holder.has(idKey)) {
        throw duplicateKey(ns, this.spec, doc);
      }
    }
  }

  add(idKey: string, keys: string[]): void {
    for (const key of keys) {
      const holder = this.entries.get(key);
      if (holder === undefined) this.entries.set(key, idKey);
      else if (typeof holder === 'string') {
        if (holder !== idKey) this.entries.set(key, new Set([holder, idKey]));
      } else holder.add(idKey);
    }
  }

  remove(idKey: string, keys: string[]): void {
    for (const key of keys) {
      const holder = this.entries.get(key);
      if (holder === undefined) continue;
      if (typeof holder === 'string') {
        if (holder === idKey) this.entries.delete(key);
      } else {
        holder.delete(idKey);
        if (holder.size === 1) this.entries.set(key, holder.values().next().value as string);
      }
    }
  }

  lookup(key: string): string[] {
    const holder = this.entries.get(key);
    if (holder === undefined) return [];
    return typeof holder === 'string' ? [holder] : [...holder];
  }

  get entryCount(): number {
    return this.entries.size;
  }
}

export const ID_INDEX: IndexSpec = { v: 2, key: { _id: 1 }, name: '_id_' };

export class Collection {
  readonly name: string;
  /** `db.collection`, as mongod's error messages name it. */
  readonly ns: string;
  readonly uuid: UUID;
  readonly options: Document;
  /** `_id` key -> document, in insertion (natural) order. Stored documents are never mutated in place. */
  readonly docs = new Map<string, Document>();
  readonly indexes: SecondaryIndex[] = [];
  /** Committed changes within the snapshot window (replica-set mode), for snapshot reads and write conflicts. */
  readonly history = new DocumentHistory();
  /**
   * `_id` keys in `_id` order (the `_id` index's order), built on first use by an ordered read and kept while
   * inserts arrive in increasing `_id` order; removed keys are skipped when read, any other insert drops it.
   */
  idOrder: { keys: string[]; last: unknown; removed: boolean } | undefined = {
    keys: [],
    last: undefined,
    removed: false,
  };

  constructor(name: string, options: Document = {}, uuid = new UUID(randomUUID()), db = '') {
    this.name = name;
    this.ns = `${db}.${name}`;
    this.options = options;
    this.uuid = uuid;
  }

  get indexSpecs(): IndexSpec[] {
    return [ID_INDEX, ...this.indexes.map((index) => index.spec)];
  }

  insert(doc: Document): void {
    if (doc._id === undefined) throw new CommandError(ErrorCodes.BadValue, 'document has no _id');
    checkIdField(doc._id);
    const idKey = indexKey(doc._id);
    if (this.docs.has(idKey)) throw duplicateKey(this.ns, ID_INDEX, doc);
    const keys = this.indexes.map((index) => index.keysFor(doc));
    this.indexes.forEach((index, i) => {
      index.assertUnique(doc, idKey, keys[i], this.ns);
    });
    this.docs.set(idKey, doc);
    this.indexes.forEach((index, i) => {
      index.add(idKey, keys[i]);
    });
    const order = this.idOrder;
    if (order && !order.removed && (order.keys.length === 0 || compareBson(doc._id, order.last) > 0)) {
      order.keys.push(idKey);
      order.last = doc._id;
    } else this.idOrder = undefined;
  }

  /** Swaps a stored document for its updated copy; the `_id` must stay the same. */
  replace(previous: Document, next: Document): void {
    const idKey = indexKey(previous._id);
    if (indexKey(next._id) !== idKey) {
      throw new CommandError(
        66,
        "Performing an update on the path '_id' would modify the immutable field '_id'",
      );
    }
    const oldKeys = this.indexes.map((index) => index.keysFor(previous));
    const newKeys = this.indexes.map((index) => index.keysFor(next));
    this.indexes.forEach((index, i) => {
      index.assertUnique(next, idKey, newKeys[i], this.ns);
    });
    this.indexes.forEach((index, i) => {
      index.remove(idKey, oldKeys[i]);
      index.add(idKey, newKeys[i]);
    });
    this.docs.set(idKey, next);
  }

  remove(doc: Document): boolean {
    const idKey = indexKey(doc._id);
    const stored = this.docs.get(idKey);
    if (!stored) return false;
    for (const index of this.indexes) index.remove(idKey, index.keysFor(stored));
    this.docs.delete(idKey);
    if (this.idOrder) this.idOrder.removed = true;
    return true;
  }

  findIndex(nameOrKey: string | Document): SecondaryIndex | undefined {
    if (typeof nameOrKey === 'string') return this.indexes.find((index) => index.spec.name === nameOrKey);
    const wanted = JSON.stringify(nameOrKey);
    return this.indexes.find((index) => JSON.stringify(index.spec.key) === wanted);
  }

  /** Builds an index over the existing documents; fails without side effects on a duplicate. */
  addIndex(spec: IndexSpec): void {
    const index = new SecondaryIndex(spec);
    for (const [idKey, doc] of this.docs) {
      const keys = index.keysFor(doc);
      index.assertUnique(doc, idKey, keys, this.ns);
      index.add(idKey, keys);
    }
    this.indexes.push(index);
  }

  dropIndex(name: string): void {
    const at = this.indexes.findIndex((index) => index.spec.name === name);
    if (at < 0) throw new CommandError(ErrorCodes.IndexNotFound, `index not found with name [${name}]`);
    this.indexes.splice(at, 1);
  }

  /** The single-field index on `field`, or `_id`'s own map, for equality lookups. */
  equalityLookup(field: string): ((value: unknown) => Document[]) | undefined {
    if (field === '_id') {
      return (value) => {
        const doc = this.docs.get(indexKey(value));
        return doc ? [doc] : [];
      };
    }
    const index = this.indexes.find(
      (candidate) =>
        candidate.fields.length === 1 &&
        candidate.fields[0] === field &&
        !candidate.spec.partialFilterExpression &&
        !candidate.spec.sparse,
    );
    if (!index) return undefined;
    return (value) => {
      const out: Document[] = [];
      for (const idKey of index.lookup(indexKey(value))) {
        const doc = this.docs.get(idKey);
        if (doc) out.push(doc);
      }
      return out;
    };
  }
}

export class Database {
  readonly name: string;
  readonly collections = new Map<string, Collection>();

  constructor(name: string) {
    this.name = name;
  }
}

const INVALID_DB_CHARS = /[/\\. "$\0]/;

/** A name a collection may be created under (not empty, no NUL, not `system.`). */
export function assertCollectionName(name: string): void {
  if (typeof name !== 'string' || !name || name.includes('\0') || name.startsWith('system.'))
    throw new CommandError(ErrorCodes.InvalidNamespace, `Invalid collection name: '${name}'`);
}

/** All databases of one sandbox server. */
export class Store {
  readonly databases = new Map<string, Database>();
  /** Bumped on every write, so persistence knows when to save. */
  version = 0;
  /** Collections written since the last save, as [db, collection] (collection '*' for a whole database). */
  readonly dirty = new Map<string, [string, string]>();

  database(name: string, create: boolean): Database | undefined {
    let db = this.databases.get(name);
    if (!db && create) {
      if (!name || INVALID_DB_CHARS.test(name)) {
        throw new CommandError(ErrorCodes.InvalidNamespace, `Invalid database name: '${name}'`);
      }
      db = new Database(name);
      this.databases.set(name, db);
    }
    return db;
  }

  /**
   * Called when a collection comes into being (explicitly or by a first write), before anything is written to
   * it: a replica set's oplog records the creation, as mongod's does.
   */
  onCreate?: (db: string, coll: Collection) => void;

  collection(dbName: string, name: string, create: boolean, options: Document = {}): Collection | undefined {
    const db = this.database(dbName, create);
    if (!db) return undefined;
    let coll = db.collections.get(name);
    if (!coll && create) {
      assertCollectionName(name);
      coll = new Collection(name, options, undefined, dbName);
      db.collections.set(name, coll);
      this.onCreate?.(dbName, coll);
    }
    return coll;
  }

  touch(db: string, collection = '*'): void {
    this.version++;
    this.dirty.set(`${db}\0${collection}`, [db, collection]);
  }
}
