import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import {
  type SandboxProcess,
  type SandboxProcessOptions,
  startSandboxProcess,
} from '../../src/sandbox/process.ts';

/**
 * A server for one test suite: a fresh sandbox process on a free port, or, when
 * ORPHAN_CLEANUP_TEST_URI is set, that server (a real mongod; fault tests need it started with
 * `--setParameter enableTestCommands=1`). Database names carry a random prefix so suites never collide.
 */
export interface TestServer {
  uri: string;
  client: MongoClient;
  /** A database name unique to this suite. */
  dbName(name: string): string;
  /** Whether the suite runs against our own sandbox. */
  isSandbox: boolean;
  /** Freezes the sandbox process (SIGSTOP) as a hung server would be; `resume` (SIGCONT) thaws it. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/** The lag a replica-set test sandbox has unless a suite or ORPHAN_CLEANUP_SANDBOX_LAG_MS says otherwise. */
const DEFAULT_TEST_LAG_MS = 30;

export async function startTestServer(
  options: SandboxProcessOptions & {
    /** Always our sandbox, even when ORPHAN_CLEANUP_TEST_URI is set: for what only the sandbox can simulate. */
    sandboxOnly?: boolean;
  } = {},
): Promise<TestServer> {
  const external = options.sandboxOnly ? undefined : process.env.ORPHAN_CLEANUP_TEST_URI;
  // Replica-set sandboxes lag as real ones do (a majority commit point behind the last write, a secondary
  // behind the primary), so code that assumes otherwise fails here too. ORPHAN_CLEANUP_SANDBOX_LAG_MS=0
  // switches it off.
  const lagMs = Number(process.env.ORPHAN_CLEANUP_SANDBOX_LAG_MS ?? DEFAULT_TEST_LAG_MS);
  const sandbox: SandboxProcess | undefined = external
    ? undefined
    : await startSandboxProcess({
        ...options,
        majorityLagMs: options.replicaSet ? (options.majorityLagMs ?? lagMs) : undefined,
        secondaryLagMs: options.secondaryPort !== undefined ? (options.secondaryLagMs ?? lagMs) : undefined,
      });
  const uri = external ?? sandbox!.uri;
  // Setup writes wait for the majority, as a careful test against a real replica set does: otherwise a
  // snapshot, a majority read or a secondary may not see them yet.
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000, writeConcern: { w: 'majority' } });
  await client.connect();
  const prefix = `oc${randomBytes(3).toString('hex')}`;
  const used = new Set<string>();
  return {
    uri,
    client,
    isSandbox: !external,
    dbName(name) {
      const full = `${prefix}_${name}`;
      used.add(full);
      return full;
    },
    pause() {
      if (!sandbox) throw new Error('pause needs the sandbox (a suite started with sandboxOnly)');
      process.kill(sandbox.pid, 'SIGSTOP');
    },
    resume() {
      if (sandbox) process.kill(sandbox.pid, 'SIGCONT');
    },
    async stop() {
      if (external)
        for (const name of used)
          await client
            .db(name)
            .dropDatabase()
            .catch(() => undefined);
      await client.close();
      await sandbox?.stop();
    },
  };
}

/**
 * Holds the next `times` getMores (a scan's next child batch) for `ms` through mongod's failCommand fail point, so
 * a scan reports progress before it can finish however fast the machine is. Returns what switches it off.
 */
export async function holdNextBatches(
  client: MongoClient,
  options: { times: number; ms: number },
): Promise<() => Promise<void>> {
  await client.db('admin').command({
    configureFailPoint: 'failCommand',
    mode: { times: options.times },
    data: { failCommands: ['getMore'], blockConnection: true, blockTimeMS: options.ms },
  });
  return async () => {
    await client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'off' });
  };
}
