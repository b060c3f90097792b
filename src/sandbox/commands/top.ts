import type { Document } from 'bson';
import { CommandError, ErrorCodes } from '../command-error.ts';
import type { CommandHandler } from './context.ts';

/** One counter of `top`: the time commands spent (microseconds) and how many there were. */
interface Usage {
  time: number;
  count: number;
}

const CATEGORIES = [
  'total',
  'readLock',
  'writeLock',
  'queries',
  'getmore',
  'insert',
  'update',
  'remove',
  'commands',
] as const;
type NamespaceUsage = Record<(typeof CATEGORIES)[number], Usage>;

/** The kind of operation `top` counts a command under, as mongod does. */
function operationOf(name: string): 'queries' | 'getmore' | 'insert' | 'update' | 'remove' | 'commands' {
  switch (name) {
    case 'find':
    case 'aggregate':
    case 'count':
    case 'distinct':
      return 'queries';
    case 'getMore':
      return 'getmore';
    case 'insert':
      return 'insert';
    case 'update':
    case 'findAndModify':
      return 'update';
    case 'delete':
      return 'remove';
    default:
      return 'commands';
  }
}

/** The commands that name a collection (their first field): what `top` lists, by namespace. */
const COLLECTION_COMMANDS = new Set([
  'find',
  'getMore',
  'aggregate',
  'count',
  'distinct',
  'insert',
  'update',
  'delete',
  'findAndModify',
  'create',
  'drop',
  'createIndexes',
  'dropIndexes',
  'listIndexes',
  'collMod',
  'collStats',
]);

/** Commands other than insert, update and delete that take a collection's write lock on mongod. */
const WRITE_COMMANDS = new Set(['create', 'drop', 'createIndexes', 'dropIndexes', 'collMod']);

/**
 * Time and counts per namespace, as mongod's `top` reports them (what mongotop reads, a difference between
 * two calls): every command on a collection counts in `total`, under its operation, and under the read or
 * write lock it would take.
 */
export class TopCounters {
  private readonly namespaces = new Map<string, NamespaceUsage>();

  record(namespace: string, command: string, micros: number): void {
    if (!COLLECTION_COMMANDS.has(command)) return;
    let usage = this.namespaces.get(namespace);
    if (!usage) {
      usage = Object.fromEntries(CATEGORIES.map((c) => [c, { time: 0, count: 0 }])) as NamespaceUsage;
      this.namespaces.set(namespace, usage);
    }
    const operation = operationOf(command);
    const write =
      operation === 'insert' ||
      operation === 'update' ||
      operation === 'remove' ||
      WRITE_COMMANDS.has(command);
    for (const category of ['total', write ? 'writeLock' : 'readLock', operation] as const) {
      usage[category].time += micros;
      usage[category].count++;
    }
  }

  totals(): Document {
    const totals: Document = { note: 'all times in microseconds' };
    for (const [namespace, usage] of this.namespaces) totals[namespace] = usage;
    return totals;
  }
}

/** `top`: admin only, as on mongod. */
export const top: CommandHandler = (ctx) => {
  if (ctx.db !== 'admin')
    throw new CommandError(ErrorCodes.Unauthorized, 'top may only be run against the admin database.');
  return { totals: ctx.server.top.totals(), ok: 1 };
};
