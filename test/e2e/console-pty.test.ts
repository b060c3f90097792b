import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { withOlorinDemo } from '../support/olorin-fixture.ts';

const LAUNCHER = fileURLToPath(new URL('../../bin/orphan-cleanup', import.meta.url));
// Sandbox only: the outage test freezes the server (SIGSTOP).
const ctx = withOlorinDemo({}, { sandboxOnly: true });

/** Runs the real binary in a pseudo-terminal (util-linux `script`), so Ink sees a TTY. */
function inPty(args: string[]) {
  const command = [process.execPath, LAUNCHER, ...args]
    .map((part) => `'${part.replace(/'/g, "'\\''")}'`)
    .join(' ');
  // Ink renders only a final frame when CI is set (as in CI runs): a person's terminal has no CI variable.
  const { CI: _ci, ...env } = process.env;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: {
      ...env,
      OLORIN_MONGODB_URI: ctx.server.uri,
      BAYIT_MONGODB_URI: ctx.server.uri,
      COLUMNS: '110',
      LINES: '40',
      TERM: 'xterm-256color',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  child.stdout.on('data', (chunk) => {
    screen += chunk.toString();
  });
  child.stderr.on('data', (chunk) => {
    screen += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  /** Waits for `pattern` in what the terminal printed (after `from`, a `mark()`, when given). */
  const waitFor = async (pattern: RegExp, timeoutMs = 20_000, from = 0) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(screen.slice(from).replace(/\u001b\[[0-9;?]*[A-Za-z]/g, ''))) {
      if (Date.now() > deadline) throw new Error(`never saw ${pattern}; screen:\n${screen.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const key = async (text: string) => {
    child.stdin.write(text);
    await new Promise((resolve) => setTimeout(resolve, 150));
  };
  /** Ends the terminal session if the test failed before quitting it. */
  const kill = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  /** Where the output is now: `waitFor(…, …, mark)` then looks only at what comes after. */
  const mark = () => screen.length;
  return { waitFor, key, exited, kill, mark };
}

describe('the console in a real terminal', () => {
  it('scans the demo data, opens a relation, and quits with q and exit code 0', async () => {
    const pty = inPty(['--config', ctx.demo.configPath, '--read-only']);
    try {
      await pty.waitFor(/deletable 180/);
      await pty.key('\r');
      await pty.waitFor(/Orphans 300/);
      await pty.key('\u001b');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await pty.key('q');
      expect(await pty.exited).toBe(0);
    } finally {
      pty.kill();
    }
  });

  it('during an outage keeps the last figures with their time, counts the wait, and recovers with r', async () => {
    const pty = inPty(['--config', ctx.demo.configPath, '--read-only']);
    try {
      await pty.waitFor(/deletable 180/);
      ctx.server.pause();
      const outage = pty.mark();
      try {
        await pty.key('r');
        await pty.waitFor(/connecting… [2-9] s \(gives up after 30 s\)/, 20_000, outage);
        await pty.waitFor(
          /last scan \d\d:\d\d UTC: 300 orphans, 300 inactive, \d+ to delete/,
          20_000,
          outage,
        );
      } finally {
        ctx.server.resume();
      }
      const recovered = pty.mark();
      await pty.waitFor(/deletable 180/, 30_000, recovered);
      await pty.key('q');
      expect(await pty.exited).toBe(0);
    } finally {
      ctx.server.resume();
      pty.kill();
    }
  });

  it('without a terminal prints a one-line hint and exits 2', async () => {
    const result = await runCli(['--config', ctx.demo.configPath], {
      OLORIN_MONGODB_URI: ctx.server.uri,
      BAYIT_MONGODB_URI: ctx.server.uri,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'orphan-cleanup: the console needs a terminal; in scripts and cron use the headless commands (scan, clean, restore, verify, exceptions, doctor)\n',
    );
  });
});
