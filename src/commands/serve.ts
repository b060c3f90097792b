import { isIP } from 'node:net';
import { UsageError } from '../errors.ts';
import { defaultBackupRoot } from '../limits.ts';
import { ensureWritableDir } from '../paths.ts';
import { buildServer } from '../serve/server.ts';
import { type EngineFlags, withEngine } from './engine-session.ts';

export interface ServeFlags extends EngineFlags {
  host: string;
  port: number;
  auth: boolean;
  openHealth?: boolean;
  backupDir?: string;
  batchSize: number;
  sleepMs?: number;
  maxRate?: number;
  maxLagSeconds?: number;
  watch?: boolean;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** `orphan-cleanup serve`: the HTTP trigger for schedulers, until SIGTERM/SIGINT (graceful). */
export async function runServeCommand(flags: ServeFlags): Promise<number> {
  const token = process.env.ORPHAN_CLEANUP_API_TOKEN;
  if (!flags.auth && !isLoopback(flags.host))
    throw new UsageError(`--no-auth is only allowed on a loopback address, not ${flags.host}`);
  if (flags.auth && !token)
    throw new UsageError('ORPHAN_CLEANUP_API_TOKEN is not set (or listen on loopback with --no-auth)');
  return withEngine(flags, async ({ config, pool, access }) => {
    if (!access.readOnly) await ensureWritableDir(flags.backupDir ?? defaultBackupRoot(), '--backup-dir');
    const server = buildServer({
      config,
      pool,
      access,
      token: flags.auth ? token : undefined,
      openHealth: Boolean(flags.openHealth),
      backupRoot: flags.backupDir,
      batchSize: flags.batchSize,
      throttle: { sleepMs: flags.sleepMs, maxRate: flags.maxRate, maxLagSeconds: flags.maxLagSeconds },
      logLevel: flags.logLevel ?? 'info',
      watch: flags.watch,
    });
    await server.app.listen({ host: flags.host, port: flags.port });
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    server.app.log.info('shutting down: no new requests; running batches finish and their backups close');
    await server.shutdown();
    return 0;
  });
}
