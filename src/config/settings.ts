import { chmodSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Conf from 'conf';
import { ConnectionString } from 'mongodb-connection-string-url';
import { UsageError } from '../errors.ts';
import { DEFAULT_BACKUP_ROOT, MAX_BATCH_SIZE, parseBatchSize } from '../limits.ts';
import { redactUri } from '../mongo/redact.ts';

/** A named pair (or more) of sources; URIs as `env:VAR` references unless the operator asked to store one. */
export interface Profile {
  sources: Record<string, string>;
  readOnly?: boolean;
}

export interface Settings {
  operator?: string;
  backupRoot: string;
  batchSize: number;
  profiles: Record<string, Profile>;
}

const DEFAULTS: Settings = { backupRoot: DEFAULT_BACKUP_ROOT, batchSize: 1000, profiles: {} };

/**
 * The operator's settings file (conf: ~/.config/orphan-cleanup-nodejs/config.json on Linux), readable by the
 * owner only: it may hold a URI with a password (`--store-secret`).
 */
export function openSettings(cwd?: string): Conf<Settings> {
  return new Conf<Settings>({
    projectName: 'orphan-cleanup',
    defaults: DEFAULTS,
    configFileMode: 0o600,
    ...(cwd ? { cwd } : {}),
  });
}

/**
 * Makes the settings file 0600 and its directory 0700 when they are wider (a file written by an older
 * version, or by hand); says what it tightened, or that it could not.
 */
export function tightenSettingsPermissions(store: Conf<Settings>): string[] {
  const notes: string[] = [];
  for (const [path, mode] of [
    [dirname(store.path), 0o700],
    [store.path, 0o600],
  ] as const) {
    let current: number;
    try {
      current = statSync(path).mode & 0o777;
    } catch {
      continue;
    }
    if ((current & ~mode) === 0) continue;
    try {
      chmodSync(path, mode);
      notes.push(
        `tightened ${path} from ${current.toString(8)} to ${mode.toString(8)} (it may hold credentials)`,
      );
    } catch (error) {
      notes.push(
        `warning: ${path} is readable by others (mode ${current.toString(8)}) and could not be tightened: ${(error as Error).message}`,
      );
    }
  }
  return notes;
}

export function readSettings(store: Conf<Settings>): Settings {
  return { ...DEFAULTS, ...store.store };
}

/**
 * Resolves a profile's sources into `--source name=URI` overrides. `env:VAR` reads the variable now,
 * so no secret needs to live in the settings file.
 */
export function profileSources(
  settings: Settings,
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): { sources: string[]; readOnly: boolean } {
  const profile = settings.profiles[name];
  if (!profile)
    throw new UsageError(
      `--profile ${name}: no such profile (known: ${Object.keys(settings.profiles).join(', ') || 'none'})`,
    );
  const sources = Object.entries(profile.sources).map(([source, ref]) => {
    if (!ref.startsWith('env:')) return `${source}=${ref}`;
    const value = env[ref.slice(4)];
    if (!value)
      throw new UsageError(`--profile ${name}: source ${source} reads ${ref.slice(4)}, which is not set`);
    return `${source}=${value}`;
  });
  return { sources, readOnly: Boolean(profile.readOnly) };
}

/** Refuses to store a URI with a password in clear unless the operator insists. */
export function checkStorableReference(ref: string, allowSecret: boolean): void {
  if (ref.startsWith('env:')) return;
  let password = '';
  try {
    password = new ConnectionString(ref).password;
  } catch {
    throw new UsageError(`"${ref.split('@').pop()}": neither env:VAR nor a valid MongoDB URI`);
  }
  if (password && !allowSecret) {
    throw new UsageError(
      'that URI holds a password: store env:VAR instead, or pass --store-secret to keep it in the settings file in clear',
    );
  }
}

/** The settings the console lets the operator change in place. */
export type EditableSetting = 'operator' | 'backupRoot' | 'batchSize';

/** Checks a value typed for a setting; the value to store, or a UsageError naming what is wrong. */
export function parseSetting(field: EditableSetting, typed: string): string | number {
  const value = typed.trim();
  switch (field) {
    case 'operator':
      if (!value || value.length > 100) throw new UsageError('operator: a name of 1 to 100 characters');
      return value;
    case 'backupRoot':
      if (!value) throw new UsageError('backup root: a directory path');
      return value;
    case 'batchSize': {
      const n = parseBatchSize(value);
      if (n === undefined) throw new UsageError(`batch size: a whole number from 1 to ${MAX_BATCH_SIZE}`);
      return n;
    }
  }
}

/** A profile's sources as they may be shown: `env:VAR` as is, a stored URI without its credentials. */
export function describeProfile(profile: Profile): string[] {
  return Object.entries(profile.sources).map(
    ([source, ref]) => `${source}=${ref.startsWith('env:') ? ref : redactUri(ref)}`,
  );
}
