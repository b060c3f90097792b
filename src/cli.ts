import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runDemo } from './commands/demo.ts';
import { runSandbox } from './commands/sandbox.ts';
import { ExitCode, exitCodeFor, formatError } from './errors.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number (0-65535)');
  return n;
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
