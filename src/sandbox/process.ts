import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const LAUNCHER = fileURLToPath(new URL('../../bin/orphan-cleanup', import.meta.url));
const READY = /listening on (mongodb:\/\/\S+)/;

export interface SandboxProcess {
  uri: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

export interface SandboxProcessOptions {
  port?: number;
  seed?: string;
  dataDir?: string;
  /** Run as a one-member replica set of this name (see `SandboxOptions.replicaSet`). */
  replicaSet?: string;
  /** With `replicaSet`: a second port answering as the set's secondary (0 = any free port). */
  secondaryPort?: number;
  /** With `replicaSet`: the majority commit point trails the last write by this long (ms). */
  majorityLagMs?: number;
  /** With `secondaryPort`: the secondary's reads trail by this long (ms). */
  secondaryLagMs?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts `orphan-cleanup sandbox` in its own process (never on the caller's event loop) and resolves once
 * it prints its URI. `stop()` sends SIGTERM, which saves `--data-dir` before the process exits.
 */
export function startSandboxProcess(options: SandboxProcessOptions = {}): Promise<SandboxProcess> {
  const args = [LAUNCHER, 'sandbox', '--port', String(options.port ?? 0)];
  if (options.seed) args.push('--seed', options.seed);
  if (options.dataDir) args.push('--data-dir', options.dataDir);
  if (options.replicaSet) args.push('--replica-set', options.replicaSet);
  if (options.secondaryPort !== undefined) args.push('--secondary-port', String(options.secondaryPort));
  if (options.majorityLagMs !== undefined) args.push('--majority-lag-ms', String(options.majorityLagMs));
  if (options.secondaryLagMs !== undefined) args.push('--secondary-lag-ms', String(options.secondaryLagMs));
  // A young generation of up to 128 MB semi-spaces (V8's default is 16 MB): a server's garbage lives one
  // request, and with the default it survived into the old generation, whose collections of a multi-GB store
  // were most of the sandbox's time under a million-document scan (measured on a 1M-child, 50%-orphan steady
  // scan: scavenges 2.4 s → 0.35 s and no major collection, sandbox CPU 11–12.7 s → 6.4–6.8 s). V8 grows the
  // young generation only as the allocation rate needs it, so an idle sandbox stays small.
  const child = spawn(process.execPath, ['--max-semi-space-size=128', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let output = '';
    let errors = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = READY.exec(output);
      if (!match) return;
      child.stdout?.off('data', onData);
      child.stdout?.resume();
      resolve({
        uri: match[1],
        pid: child.pid!,
        child,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`sandbox exited before listening (${signal ?? code}): ${errors.trim()}`)),
    );
    child.once('error', reject);
  });
}
