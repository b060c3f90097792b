import { type DestinationStream, destination, type Logger, pino } from 'pino';
import { redact } from './mongo/redact.ts';
import { ensureWritableFile } from './paths.ts';

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** One human line from a pino JSON line, for a terminal. */
function humanLine(json: string): string {
  try {
    const { level, time, msg, pid: _pid, hostname: _host, ...rest } = JSON.parse(json);
    const fields = Object.entries(rest)
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' ');
    return `${new Date(time).toISOString().slice(11, 19)} ${LEVEL_NAMES[level] ?? level} ${msg ?? ''}${fields ? ` ${fields}` : ''}\n`;
  } catch {
    return json;
  }
}

function build(level: string, stream: DestinationStream, human: boolean): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['uri', '*.uri', 'password', '*.password', 'authorization', '*.authorization'],
        censor: '****',
      },
      // Last line of defence: whatever a message or error carries, credentials never reach the log.
      hooks: { streamWrite: (line: string) => (human ? humanLine(redact(line)) : redact(line)) },
    },
    stream,
  );
}

/** The structured log of the headless commands: silent unless --log-level or --log-file asks for it. */
export let log: Logger = build('silent', destination(2), false);

/** Sets up the log; a `--log-file` is checked first (`ensureWritableFile`), so a bad path is one line, not a hang. */
export async function configureLogging(options: { level?: string; file?: string }): Promise<void> {
  if (!options.level && !options.file) return;
  const level = options.level ?? 'info';
  if (options.file) {
    const file = await ensureWritableFile(options.file, '--log-file');
    log = build(level, destination({ dest: file, append: true, sync: true }), false);
  } else log = build(level, destination({ fd: 2, sync: true }), Boolean(process.stderr.isTTY));
}
