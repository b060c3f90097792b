import { render } from 'ink';
import { openSettings, profileSources, readSettings } from '../config/settings.ts';
import { UsageError } from '../errors.ts';
import { App } from '../ui/app.tsx';
import { createConsoleServices } from '../ui/services.ts';
import { type EngineFlags, withEngine } from './engine-session.ts';

export interface ConsoleFlags extends EngineFlags {
  profile?: string;
  backupDir?: string;
  operator?: string;
}

/** `orphan-cleanup` / `orphan-cleanup ui`: the Ink console. Needs a terminal. */
export async function runConsole(flags: ConsoleFlags): Promise<number> {
  if (!process.stdout.isTTY || !process.stdin.isTTY) {
    throw new UsageError(
      'the console needs a terminal; in scripts and cron use the headless commands (scan, clean, restore, verify, exceptions, doctor)',
    );
  }
  const store = openSettings();
  const settings = readSettings(store);
  const profile = flags.profile ? profileSources(settings, flags.profile) : undefined;
  const engineFlags: EngineFlags = {
    ...flags,
    source: [...(profile?.sources ?? []), ...(flags.source ?? [])],
    readOnly: Boolean(flags.readOnly || profile?.readOnly),
  };
  return withEngine(engineFlags, async ({ config, pool, access }) => {
    const services = createConsoleServices(
      config,
      pool,
      access,
      {
        operator: flags.operator ?? settings.operator,
        backupRoot: flags.backupDir ?? settings.backupRoot,
        batchSize: settings.batchSize,
      },
      {
        store,
        activeProfile: flags.profile,
        fromFlags: [
          ...(flags.operator !== undefined ? (['operator'] as const) : []),
          ...(flags.backupDir !== undefined ? (['backupRoot'] as const) : []),
        ],
      },
    );
    const instance = render(<App services={services} />, { exitOnCtrlC: false });
    await instance.waitUntilExit();
    return 0;
  });
}
