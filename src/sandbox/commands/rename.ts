import { randomUUID } from 'node:crypto';
import { UUID } from 'bson';
import { CommandError, ErrorCodes } from '../command-error.ts';
import { assertCollectionName, Collection, ID_INDEX } from '../storage.ts';
import type { CommandHandler, ServerState } from './context.ts';

function splitNamespace(value: unknown, field: string): [string, string] {
  const text = typeof value === 'string' ? value : '';
  const dot = text.indexOf('.');
  if (dot <= 0 || dot === text.length - 1)
    throw new CommandError(ErrorCodes.InvalidNamespace, `Invalid ${field} namespace: ${String(value)}`);
  return [text.slice(0, dot), text.slice(dot + 1)];
}

/**
 * `renameCollection` (run on admin, as mongod requires): the documents and indexes move to the new name, the
 * UUID stays within a database and is new across databases, `dropTarget` replaces an existing target, and the
 * oplog gets mongod's `c` entry, which change streams on the source report as `rename` (then `invalidate`).
 */
/**
 * Moves `source` (`fromDb.fromName`) to `toDb.toName`, replacing any collection there (the caller decides
 * whether it may), with mongod's oplog entry. Also how `$out` puts its results in place.
 */
export function moveCollection(
  server: ServerState,
  source: Collection,
  fromDb: string,
  fromName: string,
  toDb: string,
  toName: string,
): void {
  const { store } = server;
  const target = store.collection(toDb, toName, false);
  // Validates the target name (and creates its database) before anything moves; the rename creates no
  // collection of its own (no create entry).
  assertCollectionName(toName);
  store.database(toDb, true);
  const renamed = new Collection(
    toName,
    source.options,
    fromDb === toDb ? source.uuid : new UUID(randomUUID()),
    toDb,
  );
  for (const spec of source.indexSpecs) if (spec.name !== ID_INDEX.name) renamed.addIndex(spec);
  for (const doc of source.docs.values()) renamed.insert(doc);
  const toDatabase = store.database(toDb, true)!;
  toDatabase.collections.set(toName, renamed);
  store.database(fromDb, false)?.collections.delete(fromName);
  store.touch(fromDb, fromName);
  store.touch(toDb, toName);
  server.oplog?.append({
    op: 'c',
    ns: `${fromDb}.$cmd`,
    ui: source.uuid,
    o: {
      renameCollection: `${fromDb}.${fromName}`,
      to: `${toDb}.${toName}`,
      stayTemp: false,
      dropTarget: target ? target.uuid : false,
    },
  });
}

export const renameCollection: CommandHandler = (ctx) => {
  if (ctx.db !== 'admin')
    throw new CommandError(
      ErrorCodes.Unauthorized,
      'renameCollection may only be run against the admin database.',
    );
  if (ctx.transaction)
    throw new CommandError(
      ErrorCodes.OperationNotSupportedInTransaction,
      "Cannot run 'renameCollection' in a multi-document transaction.",
    );
  const [fromDb, fromName] = splitNamespace(ctx.body.renameCollection, 'source');
  const [toDb, toName] = splitNamespace(ctx.body.to, 'target');
  const { store } = ctx.server;
  const source = store.collection(fromDb, fromName, false);
  if (!source)
    throw new CommandError(
      ErrorCodes.NamespaceNotFound,
      `Source collection ${fromDb}.${fromName} does not exist`,
    );
  if (fromDb === toDb && fromName === toName)
    throw new CommandError(ErrorCodes.IllegalOperation, "Can't rename a collection to itself");
  if (store.collection(toDb, toName, false) && !ctx.body.dropTarget)
    throw new CommandError(ErrorCodes.NamespaceExists, 'target namespace exists');
  moveCollection(ctx.server, source, fromDb, fromName, toDb, toName);
  return { ok: 1 };
};
