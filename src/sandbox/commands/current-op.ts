import { hostname } from 'node:os';
import type { Document } from 'bson';
import { CommandError, ErrorCodes } from '../command-error.ts';
import type { CommandContext, CommandHandler } from './context.ts';

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

/** `killOp` (admin): the operation stops at its next check with Interrupted (11601); an unknown id is no error. */
export const killOp: CommandHandler = (ctx) => {
  if (ctx.db !== 'admin')
    throw new CommandError(ErrorCodes.Unauthorized, 'killOp may only be run against the admin database.');
  const op = Number(ctx.body.op);
  if (!Number.isInteger(op)) throw new CommandError(ErrorCodes.BadValue, "killOp needs a numeric 'op'");
  ctx.server.operations.get(op)?.budget?.kill();
  return { info: 'attempting to kill op', ok: 1 };
};
