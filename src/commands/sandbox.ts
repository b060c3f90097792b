import { UsageError } from '../errors.ts';
import { isSeedName, SEED_NAMES, seedStore } from '../sandbox/seed/index.ts';
import { SandboxServer } from '../sandbox/server.ts';

export interface SandboxCommandOptions {
  port: number;
  host: string;
  seed?: string;
  dataDir?: string;
  replicaSet?: string;
  secondaryPort?: number;
  majorityLagMs?: number;
  secondaryLagMs?: number;
}

/** `orphan-cleanup sandbox`: runs one sandbox server in the foreground until SIGINT/SIGTERM. */
export async function runSandbox(options: SandboxCommandOptions): Promise<void> {
  if (options.seed !== undefined && !isSeedName(options.seed)) {
    throw new UsageError(`--seed: unknown seed '${options.seed}' (expected one of ${SEED_NAMES.join(', ')})`);
  }
  if (options.replicaSet !== undefined && !/^[\w-]+$/.test(options.replicaSet))
    throw new UsageError(
      `--replica-set: '${options.replicaSet}' is not a replica set name (letters, digits, - and _)`,
    );
  if (options.secondaryPort !== undefined && options.replicaSet === undefined)
    throw new UsageError('--secondary-port needs --replica-set (a standalone has no secondary)');
  if (options.majorityLagMs !== undefined && options.replicaSet === undefined)
    throw new UsageError('--majority-lag-ms needs --replica-set (a standalone has no majority to lag)');
  if (options.secondaryLagMs !== undefined && options.secondaryPort === undefined)
    throw new UsageError('--secondary-lag-ms needs --secondary-port');
  const server = new SandboxServer({
    dataDir: options.dataDir,
    replicaSet: options.replicaSet,
    secondaryPort: options.secondaryPort,
    majorityLagMs: options.majorityLagMs,
    secondaryLagMs: options.secondaryLagMs,
  });
  await server.load();
  const seeded = options.seed ? seedStore(server.store, options.seed as never) : [];
  const { uri } = await server.listen(options.port, options.host);
  process.stdout.write(`orphan-cleanup sandbox listening on ${uri}\n`);
  if (server.replicaSet?.secondary)
    process.stdout.write(
      `secondary listening on mongodb://${server.replicaSet.secondary}/?directConnection=true\n`,
    );
  if (seeded.length) process.stdout.write(`seeded: ${seeded.join(', ')}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
}
