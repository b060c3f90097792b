import { diagnose, diagnosisText } from '../engine/doctor.ts';
import { reportWidth } from '../engine/text-layout.ts';
import { redactUri } from '../mongo/redact.ts';
import { type EngineFlags, withEngine } from './engine-session.ts';

export interface DoctorFlags extends EngineFlags {
  json?: boolean;
}

/** `orphan-cleanup doctor`: indexes, TTL, key types, server version and topology per relation. Exit 0. */
export async function runDoctorCommand(flags: DoctorFlags): Promise<number> {
  // Set by the launcher when a URI with a password was typed on the command line (scrubbed from the title).
  if (process.env.ORPHAN_CLEANUP_PASSWORD_ON_COMMAND_LINE)
    process.stderr.write(
      'warning: a URI with a password was given on the command line: it is in your shell history and was visible to other users until the tool started; put URIs in environment variables (uriEnv in the config) instead\n',
    );
  return withEngine(flags, async ({ config, pool }) => {
    const diagnosis = await diagnose(pool, config.relations);

    if (flags.json) process.stdout.write(`${JSON.stringify(diagnosis, null, 2)}\n`);
    else {
      const describe = (name: string) =>
        `${redactUri(config.sources[name].uri)} db ${config.sources[name].database}`;
      process.stdout.write(diagnosisText(diagnosis, describe, reportWidth()));
    }
    return 0;
  });
}
