import { backupRootFromEnv } from '../limits.ts';
import { render } from 'ink';
import { UsageError } from '../errors.ts';
import { Header } from '../ui/components/Header.tsx';
import type { EngineFlags } from './engine-session.ts';

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
  // The first frame (the header, "connecting…") as soon as Ink is loaded; the engine, the driver and the
  // console's screens load behind it, then take over the same frame.
  const instance = render(<Header readOnly={Boolean(flags.readOnly)} />, { exitOnCtrlC: false });
  const [{ openSettings, profileSources, readSettings }, { withEngine }, { App }, { createConsoleServices }] =
    await Promise.all([
      import('../config/settings.ts'),
      import('./engine-session.ts'),
      import('../ui/app.tsx'),
      import('../ui/services.ts'),
    ]).catch((error) => {
      instance.unmount();
      throw error;
    });
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
        backupRoot: flags.backupDir ?? backupRootFromEnv() ?? settings.backupRoot,
        batchSize: settings.batchSize,
      },
      {
        store,
        activeProfile: flags.profile,
        fromFlags: [
          ...(flags.operator !== undefined ? (['operator'] as const) : []),
          ...(flags.backupDir !== undefined || backupRootFromEnv() ? (['backupRoot'] as const) : []),
        ],
      },
    );
    const exitNotes: string[] = [];
    instance.rerender(<App services={services} exitNotes={exitNotes} />);
    await instance.waitUntilExit();
    // What the operator may need after closing the console: how to undo this session's cleanups.
    for (const command of exitNotes) process.stdout.write(`restore with: ${command}\n`);
    return 0;
  }).finally(() => instance.unmount());
}
