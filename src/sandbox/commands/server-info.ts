import { CommandError, ErrorCodes } from '../command-error.ts';
import type { CommandHandler } from './context.ts';
import { top } from './top.ts';

/**
 * What mongosh, Compass and the database tools ask a server about itself: its commands, who is connected as
 * whom (nobody: the sandbox has no authentication), its log, users and roles (none), and `fsync`.
 */

const listCommands: CommandHandler = (ctx) => ({
  commands: Object.fromEntries(
    ctx.server
      .commandNames()
      .sort()
      .map((name) => [name, { help: '', requiresAuth: false, secondaryOk: true, adminOnly: false }]),
  ),
  ok: 1,
});

const connectionStatus: CommandHandler = (ctx) => ({
  authInfo: {
    authenticatedUsers: [],
    authenticatedUserRoles: [],
    ...(ctx.body.showPrivileges ? { authenticatedUserPrivileges: [] } : {}),
  },
  ok: 1,
});

/** `getLog`: the sandbox keeps no server log, so the logs it names are empty (said in its README). */
const getLog: CommandHandler = (ctx) => {
  const which = ctx.body.getLog;
  if (which === '*') return { names: ['global', 'startupWarnings'], ok: 1 };
  if (which !== 'global' && which !== 'startupWarnings')
    throw new CommandError(ErrorCodes.OperationFailed, `No log named '${String(which)}'`);
  return { totalLinesWritten: 0, log: [], ok: 1 };
};

/** `usersInfo` and `rolesInfo`: the sandbox has no users and only mongod's built-in roles, none listed. */
const usersInfo: CommandHandler = () => ({ users: [], ok: 1 });
const rolesInfo: CommandHandler = () => ({ roles: [], ok: 1 });

/** `fsync`: the sandbox's data directory (if any) is written now; `lock: true` is refused (it cannot block writes). */
const fsync: CommandHandler = async (ctx) => {
  if (ctx.db !== 'admin')
    throw new CommandError(ErrorCodes.Unauthorized, 'fsync may only be run against the admin database.');
  if (ctx.body.lock)
    throw new CommandError(
      ErrorCodes.NotImplemented,
      'fsync with lock: true is not supported by the sandbox',
    );
  await ctx.server.saveNow();
  return { numFiles: 1, ok: 1 };
};

export const serverInfoCommands: Record<string, CommandHandler> = {
  listCommands,
  connectionStatus,
  getLog,
  usersInfo,
  rolesInfo,
  fsync,
  top,
};
