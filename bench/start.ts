// npm run bench:start — how fast the CLI starts: the median wall time of `--version`, `--help` and
// `scan --help`, and of the console's first frame (its header, in a pseudo-terminal) on the demo data.
// Targets: ≤ 0.3 s for --help/--version, ≤ 1 s to the console's first frame.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startSandboxProcess } from '../src/sandbox/process.ts';
import { report, seconds } from './support.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const LAUNCHER = fileURLToPath(new URL('../bin/orphan-cleanup', import.meta.url));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Wall time of one run of the binary to its exit. */
function timeToExit(args: string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LAUNCHER, ...args], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(performance.now() - started)
        : reject(new Error(`${args.join(' ')} exited ${code}`)),
    );
  });
}

/** Wall time from starting the console in a pseudo-terminal (util-linux `script`) to its header on screen. */
function timeToFirstFrame(uri: string): Promise<number> {
  const started = performance.now();
  const { CI: _ci, ...env } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', `'${process.execPath}' '${LAUNCHER}' --read-only`, '/dev/null'], {
      env: {
        ...env,
        OLORIN_MONGODB_URI: uri,
        BAYIT_MONGODB_URI: uri,
        COLUMNS: '110',
        LINES: '40',
        TERM: 'xterm',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    let screen = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no first frame in 20 s:\n${screen}`));
    }, 20_000);
    child.stdout.on('data', (chunk) => {
      screen += chunk;
      if (screen.includes('orphan-cleanup')) {
        clearTimeout(timer);
        resolve(performance.now() - started);
        child.kill('SIGTERM');
      }
    });
  });
}

const sandbox = await startSandboxProcess({ seed: 'olorin' });
try {
  const rows: [string, string][] = [];
  for (const args of [['--version'], ['--help'], ['scan', '--help']]) {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(await timeToExit(args));
    rows.push([`orphan-cleanup ${args.join(' ')}`, `${seconds(median(times))} median of ${RUNS}`]);
  }
  const frames: number[] = [];
  for (let i = 0; i < RUNS; i++) frames.push(await timeToFirstFrame(sandbox.uri));
  rows.push(['console first frame (demo data)', `${seconds(median(frames))} median of ${RUNS}`]);
  report(rows);
} finally {
  await sandbox.stop();
}
