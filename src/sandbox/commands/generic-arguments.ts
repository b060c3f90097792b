import type { Document } from 'bson';

/**
 * The arguments mongod accepts on every command (its `generic_argument.idl`): session, transaction, cluster time,
 * read preference (drivers add `$readPreference` on direct connections), read and write concern, `comment`,
 * `maxTimeMS`, the stable API. None is a command's own option: never stored, never refused as unknown.
 */
export const GENERIC_ARGUMENTS = new Set([
  '$db',
  'lsid',
  'txnNumber',
  'autocommit',
  'startTransaction',
  'stmtId',
  '$clusterTime',
  '$readPreference',
  'readConcern',
  'writeConcern',
  'comment',
  'maxTimeMS',
  'apiVersion',
  'apiStrict',
  'apiDeprecationErrors',
  '$audit',
  '$client',
  'clientOperationKey',
  'mayBypassWriteBlocking',
]);

/** A command's body without its generic arguments: what is left is the command's own. */
export function ownArguments(body: Document): Document {
  return Object.fromEntries(Object.entries(body).filter(([name]) => !GENERIC_ARGUMENTS.has(name)));
}
