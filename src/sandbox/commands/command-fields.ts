import type { Document } from 'bson';
import { CommandError } from '../command-error.ts';
import { GENERIC_ARGUMENTS } from './generic-arguments.ts';

const WRITE_BASE = [
  'ordered',
  'bypassDocumentValidation',
  'stmtIds',
  'collectionUUID',
  'encryptionInformation',
  'isTimeseriesNamespace',
];

/**
 * The fields mongod's IDL (find_command.idl, aggregate_command.idl, count_command.idl, distinct_command.idl,
 * write_ops.idl, getmore_command.idl) knows for the commands drivers and tools send most, besides the generic
 * arguments; any other is refused with the IDL's error (40415), as mongod refuses it, not ignored.
 */
const COMMAND_FIELDS: Record<string, readonly string[]> = {
  find: [
    'filter',
    'projection',
    'sort',
    'hint',
    'skip',
    'limit',
    'batchSize',
    'singleBatch',
    'max',
    'min',
    'returnKey',
    'showRecordId',
    'tailable',
    'oplogReplay',
    'noCursorTimeout',
    'awaitData',
    'allowPartialResults',
    'collation',
    'allowDiskUse',
    'let',
    'term',
    'readOnce',
    'allowSpeculativeMajorityRead',
    'includeQueryStatsMetrics',
    '$_requestResumeToken',
    '$_resumeAfter',
    '$_startAt',
  ],
  aggregate: [
    'pipeline',
    'explain',
    'allowDiskUse',
    'cursor',
    'bypassDocumentValidation',
    'collation',
    'hint',
    'let',
    'needsMerge',
    'fromMongos',
    'fromRouter',
    'collectionUUID',
    'exchange',
    'isMapReduceCommand',
    'includeQueryStatsMetrics',
    '$_requestReshardingResumeToken',
    '$_generateV2ResumeTokens',
  ],
  count: ['query', 'limit', 'skip', 'hint', 'collation', 'fields', 'mirrored', 'sampleId'],
  distinct: ['key', 'query', 'collation', 'hint', 'mirrored', 'sampleId'],
  insert: ['documents', ...WRITE_BASE],
  update: ['updates', 'let', 'runtimeConstants', ...WRITE_BASE],
  delete: ['deletes', 'let', 'runtimeConstants', ...WRITE_BASE],
  findAndModify: [
    'query',
    'fields',
    'sort',
    'remove',
    'update',
    'new',
    'upsert',
    'bypassDocumentValidation',
    'collation',
    'arrayFilters',
    'hint',
    'let',
    'runtimeConstants',
    'encryptionInformation',
    'isTimeseriesNamespace',
    'sampleId',
  ],
  getMore: ['collection', 'batchSize', 'term', 'lastKnownCommittedOpTime', 'includeQueryStatsMetrics'],
};
COMMAND_FIELDS.findandmodify = COMMAND_FIELDS.findAndModify;

/** Refuses a field that the command (one of those listed) does not take, naming it as mongod does. */
export function checkCommandFields(name: string, body: Document): void {
  const known = Object.hasOwn(COMMAND_FIELDS, name) ? COMMAND_FIELDS[name] : undefined;
  if (!known) return;
  let first = true;
  for (const field of Object.keys(body)) {
    if (first) {
      first = false;
      continue;
    }
    if (!GENERIC_ARGUMENTS.has(field) && !known.includes(field))
      throw new CommandError(40415, `BSON field '${name}.${field}' is an unknown field.`);
  }
}
