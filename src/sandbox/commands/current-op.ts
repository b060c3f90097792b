import { hostname } from 'node:os';
import type { Document } from 'bson';
import type { CommandContext } from './context.ts';

/** The `$currentOp` stage's documents: the sandbox's commands running now (this one included). */
export function currentOperations(ctx: CommandContext): Document[] {
  const now = Date.now();
  return [...ctx.server.operations.values()].map((op) => ({
    type: 'op',
    host: hostname(),
    opid: op.opid,
    active: true,
    connectionId: op.connectionId,
    client: '127.0.0.1',
    ...(op.appName ? { appName: op.appName } : {}),
    op: 'command',
    ns: `${op.db}.${typeof Object.values(op.command)[0] === 'string' ? Object.values(op.command)[0] : '$cmd'}`,
    command: op.command,
    secs_running: Math.floor((now - op.startedAt) / 1000),
    microsecs_running: (now - op.startedAt) * 1000,
  }));
}
