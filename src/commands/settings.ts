import {
  checkStorableReference,
  openSettings,
  readSettings,
  tightenSettingsPermissions,
} from '../config/settings.ts';
import { UsageError } from '../errors.ts';
import { redact } from '../mongo/redact.ts';

export interface SettingsFlags {
  operator?: string;
  backupDir?: string;
  batchSize?: number;
  profile?: string;
  profileSource?: string[];
  profileReadOnly?: boolean;
  storeSecret?: boolean;
}

/** `orphan-cleanup settings`: shows the console's settings, and changes those given. */
export async function runSettingsCommand(flags: SettingsFlags): Promise<number> {
  const store = openSettings();
  for (const note of tightenSettingsPermissions(store)) process.stderr.write(`${note}\n`);
  if (flags.operator !== undefined) store.set('operator', flags.operator);
  if (flags.backupDir !== undefined) store.set('backupRoot', flags.backupDir);
  if (flags.batchSize !== undefined) store.set('batchSize', flags.batchSize);
  if (flags.profileSource?.length || flags.profileReadOnly) {
    if (!flags.profile) throw new UsageError('--profile-source and --profile-read-only need --profile NAME');
    const sources: Record<string, string> = { ...(store.get('profiles')[flags.profile]?.sources ?? {}) };
    for (const entry of flags.profileSource ?? []) {
      const at = entry.indexOf('=');
      if (at <= 0)
        throw new UsageError(`--profile-source ${entry.split('=')[0]}: expected name=env:VAR or name=URI`);
      const ref = entry.slice(at + 1);
      checkStorableReference(ref, Boolean(flags.storeSecret));
      sources[entry.slice(0, at)] = ref;
    }
    store.set(`profiles.${flags.profile}`, { sources, readOnly: Boolean(flags.profileReadOnly) });
    for (const note of tightenSettingsPermissions(store)) process.stderr.write(`${note}\n`);
    if (flags.storeSecret)
      process.stderr.write(
        `stored profile ${flags.profile} with its URI in clear in ${store.path} (readable by you only, mode 600)\n`,
      );
  }
  const settings = readSettings(store);
  process.stdout.write(`${redact(JSON.stringify({ file: store.path, ...settings }, null, 2))}\n`);
  return 0;
}
