// Over 300 lines: every command's flags and their parsers, the CLI's one table.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ExitCode, exitCodeFor, formatError } from './errors.ts';
import { MAX_BATCH_SIZE, parseBatchSize } from './limits.ts';

// Each command's modules (the driver, Ink and React, fastify, the sandbox) load only when that command runs,
// so `--help`, `--version` and a cron's `scan` do not pay for the console or the HTTP server.
const commands = {
  clean: () => import('./commands/clean.ts'),
  console: () => import('./commands/console.tsx'),
  demo: () => import('./commands/demo.ts'),
  doctor: () => import('./commands/doctor.ts'),
  exceptions: () => import('./commands/exceptions.ts'),
  restore: () => import('./commands/restore.ts'),
  sandbox: () => import('./commands/sandbox.ts'),
  scan: () => import('./commands/scan.ts'),
  serve: () => import('./commands/serve.ts'),
  settings: () => import('./commands/settings.ts'),
  watch: () => import('./commands/watch.ts'),
};

/** The package's version, from its package.json (one level above src/ and dist/). */
function packageVersion(): string {
  return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number (0-65535)');
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError('must be a number >= 0');
  return n;
}

function batchSize(value: string): number {
  const n = parseBatchSize(value);
  if (n === undefined) throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_BATCH_SIZE}`);
  return n;
}

/** The longest delay a Node.js timer holds (about 24.8 days); longer ones silently become 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

function milliseconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > MAX_TIMER_MS)
    throw new InvalidArgumentError(`must be a whole number of milliseconds from 0 to ${MAX_TIMER_MS}`);
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n * 1000 > MAX_TIMER_MS)
    throw new InvalidArgumentError(
      `must be a number of seconds from 0 to ${Math.floor(MAX_TIMER_MS / 1000)}`,
    );
  return n;
}

/** Deletes per second: the wait it implies between batches must fit a timer too. */
function rate(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0.001)
    throw new InvalidArgumentError('must be a number of documents per second, at least 0.001');
  return n;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number >= 0');
  return n;
}

/** Partitions a scan reads at once: each is one cursor and a share of the probes. */
const MAX_PARALLEL = 16;

function parallelism(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PARALLEL)
    throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_PARALLEL}`);
  return n;
}

/** How a scan reads the child collection: the same flags for `scan` and for the scan `clean` runs. */
function withScanOptions(command: Command): Command {
  return command
    .option('--resume', "continue each relation's unfinished scan from its last checkpoint")
    .addOption(
      new Option('--checkpoint-seconds <s>', 'how often a scan records where it is, for --resume').argParser(
        seconds,
      ),
    )
    .addOption(
      new Option('--parallel <n>', `read the child collection as n _id ranges at once (1-${MAX_PARALLEL})`)
        .argParser(parallelism)
        .default(1),
    );
}

/** How fast a cleanup may delete: the same flags for `clean` and for the cleanups `serve` runs. */
function withThrottleOptions(command: Command): Command {
  return command
    .addOption(new Option('--sleep-ms <n>', 'pause between batches').argParser(milliseconds))
    .addOption(new Option('--max-rate <docs>', 'at most this many deletes per second').argParser(rate))
    .addOption(
      new Option('--max-lag-seconds <n>', 'pause while secondaries lag more (replica sets)').argParser(
        seconds,
      ),
    );
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The flags every command that reads the configured sources takes. */
function withEngineOptions(command: Command): Command {
  return command
    .option('--config <file>', 'relations and sources (JSON); default: the built-in Olorin preset')
    .option('--source <name=uri>', 'override a source URI (repeatable)', collect)
    .option('--relation <name>', 'only this relation (repeatable)', collect)
    .addOption(
      new Option('--grace-days <n>', 'grace period in days for every relation').argParser(nonNegativeNumber),
    )
    .option(
      '--read-only',
      'never write to the databases (no history, no first-seen state, no deletes)',
      false,
    )
    .addOption(
      new Option(
        '--log-level <level>',
        'structured log level (logs are off unless this or --log-file is given)',
      ).choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
    )
    .option('--log-file <path>', 'append JSON log lines here (default: stderr, human text on a terminal)')
    .option(
      '--allow-collection-scan',
      'scan and clean relations whose parent key has no index (every probe then scans the parent collection)',
    );
}

/** Runs a command's action and turns the exit code it returns into the process's. */
function exitWith(load: () => Promise<(options: any) => Promise<number | undefined>>) {
  return async (options: unknown) => {
    const code = await (await load())(options);
    if (code !== undefined) process.exitCode = code;
  };
}

/** The same, for commands taking positional arguments before their options. */
function exitWithArgs<A extends unknown[]>(load: () => Promise<(...args: [...A, any]) => Promise<number>>) {
  return async (...args: unknown[]) => {
    const options = args[args.length - 2];
    process.exitCode = await (await load())(...(args.slice(0, -2) as A), options);
  };
}

const program = new Command('orphan-cleanup')
  .description('Find and safely remove MongoDB documents whose parent in another database no longer exists.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .exitOverride()
  .configureOutput({ outputError: () => undefined });

program
  .command('sandbox')
  .description('run an embedded MongoDB-wire-compatible sandbox server in the foreground')
  .addOption(new Option('--port <n>', 'port to listen on (0 = any free port)').argParser(port).default(27099))
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--seed <name>', 'load demo data: olorin, olorin:platform or olorin:bayit')
  .option('--data-dir <dir>', 'load and save data here (mongodump layout)')
  .option(
    '--replica-set <name>',
    'act as the primary of a replica set (transactions, replSetGetStatus, an oplog in local.oplog.rs)',
  )
  .addOption(
    new Option(
      '--secondary-port <n>',
      "with --replica-set: also answer as the set's secondary on this port",
    ).argParser(port),
  )
  .addOption(
    new Option(
      '--majority-lag-ms <n>',
      'with --replica-set: the majority commit point trails the last write by this long (w: majority waits, majority and snapshot reads and change streams see only what it has reached)',
    ).argParser(nonNegativeNumber),
  )
  .addOption(
    new Option(
      '--secondary-lag-ms <n>',
      'with --secondary-port: reads on the secondary see the data this long behind the primary',
    ).argParser(nonNegativeNumber),
  )
  .action(async (options) => (await commands.sandbox()).runSandbox(options));

program
  .command('demo')
  .description('start two seeded sandbox clusters (Olorin and Bayit+) and connect to both')
  .option('--data-dir <dir>', 'where the demo clusters keep their data', '.demo-data')
  .option('--fresh', 'start from freshly seeded data', false)
  .option(
    '--no-ui',
    'no console: keep the two clusters running (Ctrl+C stops them) and print how to reach them',
  )
  .action(exitWith(async () => (await commands.demo()).runDemo));

withScanOptions(
  withEngineOptions(
    program
      .command('scan')
      .description('count orphans per relation (read-only on the data; records the run)'),
  ),
)
  .option('--json', 'print the report as JSON on stdout (with --list: one JSON object per child)')
  .option('--metrics-file <path>', 'write Prometheus text format (atomically) for node_exporter')
  .option('--list <relation>', 'list the children the last complete scan found unresolved (no rescan)')
  .option('--category <name>', 'with --list: orphans or parentInactive')
  .option('--ref <value>', 'with --list: only the children of this reference')
  .action(exitWith(async () => (await commands.scan()).runScanCommand));

withEngineOptions(
  program
    .command('watch')
    .description(
      'live orphan counts from change streams (replica set or sharded cluster; pre-images on the child collection), one line per change, until Ctrl+C',
    ),
)
  .option('--json', 'one JSON object per line')
  .action(exitWith(async () => (await commands.watch()).runWatchCommand));

withEngineOptions(
  program
    .command('doctor')
    .description('check indexes, TTL, key types, server version and topology per relation'),
)
  .option('--json', 'print the findings as JSON')
  .action(exitWith(async () => (await commands.doctor()).runDoctorCommand));

withScanOptions(
  withThrottleOptions(
    withEngineOptions(
      program
        .command('clean')
        .description('plan (default: dry run) or --execute a backed-up, re-checked, batched delete'),
    ),
  ),
)
  .option('--dry-run', 'only print the plan (the default)')
  .option('--execute', 'back up, re-check and delete')
  .option('--yes', 'do not ask to type the relation name (cron)')
  .addOption(
    new Option('--batch-size <n>', 'documents per batch (1-1000)').argParser(batchSize).default(1000),
  )
  .addOption(
    new Option('--max-deletes <n>', 'delete at most this many this run (oldest orphans first)').argParser(
      wholeNumber,
    ),
  )
  .option('--allow-unsafe', 'clean relations whose scan failed a safety guard')
  .option('--backup-dir <dir>', 'backup root (default ./orphan-cleanup-backups)')
  .option('--metrics-file <path>', 'write Prometheus text format (atomically)')
  .option('--operator <name>', 'name recorded in the audit trail (default: the OS user)')
  .option('--json', 'print the plan and the outcome as one JSON document (progress stays on stderr)')
  .action(exitWith(async () => (await commands.clean()).runCleanCommand));

withEngineOptions(
  program
    .command('restore')
    .argument('[runDir]', 'a backup run directory')
    .description('put backed-up documents back (insert-only), after checking the backup'),
)
  .option('--ref <value>', 'only the children of this parent reference')
  .option('--find <ref>', 'list every backup holding children of this reference (no run directory)')
  .option('--backup-dir <dir>', 'with --find: the backup root (default ./orphan-cleanup-backups)')
  .option(
    '--include-unverified-tail',
    'also restore the documents an interrupted run wrote after its last checksummed batch (each one named)',
  )
  .option('--dry-run', 'say what would be inserted')
  .option('--json', 'print the result as JSON')
  .option('--operator <name>', 'name recorded in the audit trail')
  .action(exitWithArgs(async () => (await commands.restore()).runRestoreCommand));

withEngineOptions(
  program
    .command('verify')
    .argument('<runDir>', 'a backup run directory')
    .description('count backed-up documents present and absent in the database'),
)
  .option('--ref <value>', 'only the children of this parent reference')
  .option('--include-unverified-tail', 'also count the unchecksummed tail of an interrupted run')
  .option('--json', 'print the result as JSON')
  .action(exitWithArgs(async () => (await commands.restore()).runVerifyCommand));

withEngineOptions(
  program
    .command('exceptions')
    .argument('<action>', 'list | add | remove | export | import')
    .argument('[file]', 'the JSON file to import')
    .description('the allow-list: orphans that are intentional and never deleted'),
)
  .option('--doc <id>', 'a child document _id')
  .option('--ref <value>', 'a reference value (every child pointing at it)')
  .option('--reason <text>', 'why (required to add)')
  .option('--expires <when>', 'stop applying after 30d, 12h, 90m or an ISO date')
  .option('--json', 'print as JSON')
  .option('--operator <name>', 'name recorded as createdBy')
  .action(exitWithArgs(async () => (await commands.exceptions()).runExceptionsCommand));

withThrottleOptions(
  withEngineOptions(
    program
      .command('serve')
      .description('HTTP trigger for schedulers: scan, cleanup, runs, /metrics, /healthz'),
  ),
)
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .addOption(new Option('--port <n>', 'port to listen on').argParser(port).default(8080))
  .option('--no-auth', 'no bearer token (loopback only)')
  .option('--open-health', 'leave /healthz and /metrics without auth')
  .option('--watch', 'keep /metrics current between scans with live counts (change streams; see `watch`)')
  .option('--backup-dir <dir>', 'backup root (default ./orphan-cleanup-backups)')
  .addOption(
    new Option('--batch-size <n>', 'documents per batch (1-1000)').argParser(batchSize).default(1000),
  )
  .action(exitWith(async () => (await commands.serve()).runServeCommand));

withEngineOptions(
  program.command('ui', { isDefault: true }).description('the operator console (the default command)'),
)
  .option('--profile <name>', 'a connection profile from the settings')
  .option('--backup-dir <dir>', 'backup root (default: the settings, else ./orphan-cleanup-backups)')
  .option('--operator <name>', 'name recorded in the audit trail')
  .action(exitWith(async () => (await commands.console()).runConsole));

program
  .command('settings')
  .description("show or change the console's settings (conf file)")
  .option('--operator <name>', "the operator's name for the audit trail")
  .option('--backup-dir <dir>', 'backup root')
  .addOption(new Option('--batch-size <n>', 'default batch size').argParser(batchSize))
  .option('--profile <name>', 'the profile to change')
  .option(
    '--profile-source <name=ref>',
    'a source of the profile: env:VAR (preferred) or a URI (repeatable)',
    collect,
  )
  .option('--profile-read-only', 'the profile opens the console read-only')
  .option('--store-secret', 'allow storing a URI with a password in clear')
  .action(exitWith(async () => (await commands.settings()).runSettingsCommand));

/**
 * A password typed in a URI on the command line (`--source name=mongodb://user:pass@…`) stays readable in
 * /proc/PID/cmdline and `ps` for the life of a long-running command: the process title (which, on Linux,
 * overwrites the memory /proc reads) is set to the command line with credentials redacted, before anything
 * else runs. The README recommends environment variables instead; `doctor` warns when one was given.
 */
async function scrubCommandLine(argv: string[]): Promise<void> {
  if (!argv.some((arg) => /mongodb(?:\+srv)?:\/\/[^@\s]*:[^@\s]*@/.test(arg))) return;
  // Loaded only then: starting the tool stays fast.
  const { redact } = await import('./mongo/redact.ts');
  process.env.ORPHAN_CLEANUP_PASSWORD_ON_COMMAND_LINE = '1';
  process.title = argv.map((arg) => redact(arg)).join(' ');
}

await scrubCommandLine(process.argv);
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) process.exit(0);
    process.stderr.write(`orphan-cleanup: ${error.message.replace(/^error: /, '')}\n`);
    process.exit(ExitCode.Usage);
  }
  // The log is configured by the command that failed; loaded here, it costs nothing when all goes well.
  (await import('./logging.ts')).log.error({ error: formatError(error) }, 'command failed');
  process.stderr.write(`${formatError(error)}\n`);
  process.exit(exitCodeFor(error));
}
