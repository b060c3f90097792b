import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runDemo } from './commands/demo.ts';
import { runDoctorCommand } from './commands/doctor.ts';
import { runSandbox } from './commands/sandbox.ts';
import { runScanCommand } from './commands/scan.ts';
import { ExitCode, exitCodeFor, formatError } from './errors.ts';

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
    );
}

/** Runs a command's action and turns the exit code it returns into the process's. */
function exitWith(run: (options: any) => Promise<number | undefined>) {
  return async (options: unknown) => {
    const code = await run(options);
    if (code !== undefined) process.exitCode = code;
  };
}

const program = new Command('orphan-cleanup')
  .description('Find and safely remove MongoDB documents whose parent in another database no longer exists.')
  .exitOverride()
  .configureOutput({ outputError: () => undefined });

program
  .command('sandbox')
  .description('run an embedded MongoDB-wire-compatible sandbox server in the foreground')
  .addOption(new Option('--port <n>', 'port to listen on (0 = any free port)').argParser(port).default(27099))
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--seed <name>', 'load demo data: olorin, olorin:platform or olorin:bayit')
  .option('--data-dir <dir>', 'load and save data here (mongodump layout)')
  .action((options) => runSandbox(options));

program
  .command('demo')
  .description('start two seeded sandbox clusters (Olorin and Bayit+) and connect to both')
  .option('--data-dir <dir>', 'where the demo clusters keep their data', '.demo-data')
  .option('--fresh', 'start from freshly seeded data', false)
  .action((options) => runDemo(options));

withEngineOptions(
  program.command('scan').description('count orphans per relation (read-only on the data; records the run)'),
)
  .option('--json', 'print the report as JSON on stdout')
  .option('--metrics-file <path>', 'write Prometheus text format (atomically) for node_exporter')
  .action(exitWith(runScanCommand));

withEngineOptions(
  program
    .command('doctor')
    .description('check indexes, TTL, key types, server version and topology per relation'),
)
  .option('--json', 'print the findings as JSON')
  .action(exitWith(runDoctorCommand));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) process.exit(0);
    process.stderr.write(`orphan-cleanup: ${error.message.replace(/^error: /, '')}\n`);
    process.exit(ExitCode.Usage);
  }
  process.stderr.write(`${formatError(error)}\n`);
  process.exit(exitCodeFor(error));
}
