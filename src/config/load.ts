import type { ZodError } from 'zod';
import { readRegularFile } from '../paths.ts';
import { UsageError } from '../errors.ts';
import { validateUri } from '../mongo/connection.ts';
import { resolve as resolvePath } from 'node:path';
import { OLORIN_PRESET } from './presets/olorin.ts';
import {
  type ConfigFile,
  configSchema,
  type ParsedConfig,
  type RelationConfig,
  type SourceConfig,
} from './schema.ts';

export interface ResolvedSource {
  name: string;
  uri: string;
  database: string;
  readPreference?: SourceConfig['readPreference'];
  readPreferenceTags?: SourceConfig['readPreferenceTags'];
  maxStalenessSeconds?: SourceConfig['maxStalenessSeconds'];
  /** Where its URI came from, for commands printed to run elsewhere: an environment variable, or `--source`. */
  uriFrom?: { env: string } | { flag: true };
}

export type Relation = RelationConfig;

export interface ResolvedConfig extends Omit<ParsedConfig, 'sources' | 'relations'> {
  /** Where the config came from: a file path or the built-in preset. */
  origin: string;
  /** The config file's absolute path, when one was given (not the preset). */
  configPath?: string;
  sources: Record<string, ResolvedSource>;
  relations: Relation[];
  /**
   * The design note's safety switch, `OLORIN_USE_SEPARATE_DATABASE`: deletes happen only when it is on (an
   * explicit true); off makes every relation unsafe; unset refuses deletes too.
   */
  separation: 'on' | 'off' | 'unset';
  /** `--allow-collection-scan`: probe parent keys that have no index (each probe then scans the collection). */
  allowCollectionScan: boolean;
}

export interface LoadConfigOptions {
  configPath?: string;
  /** `--source name=URI`, repeatable. */
  sourceOverrides?: string[];
  /** `--relation NAME`, repeatable; all relations when empty. */
  relationNames?: string[];
  graceDays?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * Whose URIs the command needs: every source its relations use (default), or only the child sources —
   * restore and verify write to and read from the child databases alone, so an incident session needs
   * just those credentials. `children-and-given-parents` also opens the parent sources whose URI is given
   * (restore by reference checks the parent afterwards when it can), without requiring them.
   */
  sourcesNeeded?: 'all' | 'children' | 'children-and-given-parents';
  allowCollectionScan?: boolean;
}

function firstIssue(error: ZodError, origin: string): UsageError {
  const issue = error.issues[0];
  const path = issue.path.join('.') || '(top level)';
  return new UsageError(`${origin}: ${path}: ${issue.message}`);
}

async function readConfigFile(path: string): Promise<unknown> {
  const text = (await readRegularFile(path, '--config')).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--config ${path}: not valid JSON (${(error as Error).message})`);
  }
}

function parseSourceOverride(text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1)
    throw new UsageError(`--source ${text.split('=')[0]}: expected name=URI`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/** `OLORIN_USE_SEPARATE_DATABASE`: true/false, 1/0, yes/no in any case; anything else is a usage error. */
function separationSwitch(env: NodeJS.ProcessEnv): ResolvedConfig['separation'] {
  const raw = env.OLORIN_USE_SEPARATE_DATABASE;
  if (raw === undefined || raw.trim() === '') return 'unset';
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(value)) return 'on';
  if (['false', '0', 'no'].includes(value)) return 'off';
  throw new UsageError(
    `OLORIN_USE_SEPARATE_DATABASE=${JSON.stringify(raw)}: expected true or false (1/0 and yes/no work too)`,
  );
}

/** Reads, validates and resolves the configuration; every problem is one UsageError naming the culprit. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  const env = options.env ?? process.env;
  const origin = options.configPath ? `config ${options.configPath}` : 'olorin preset';
  const raw: unknown = options.configPath
    ? await readConfigFile(options.configPath)
    : (OLORIN_PRESET satisfies ConfigFile);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw firstIssue(parsed.error, origin);
  const config = parsed.data;

  const names = new Set<string>();
  for (const relation of config.relations) {
    if (names.has(relation.name))
      throw new UsageError(`${origin}: relation '${relation.name}' is defined twice`);
    names.add(relation.name);
    for (const side of ['child', 'parent'] as const) {
      if (!config.sources[relation[side].source]) {
        throw new UsageError(
          `${origin}: relation '${relation.name}': ${side}.source '${relation[side].source}' is not among sources (${Object.keys(config.sources).join(', ')})`,
        );
      }
    }
  }

  let relations = config.relations;
  if (options.relationNames?.length) {
    for (const wanted of options.relationNames) {
      if (!names.has(wanted))
        throw new UsageError(`--relation ${wanted}: unknown relation (known: ${[...names].join(', ')})`);
    }
    relations = relations.filter((relation) => options.relationNames!.includes(relation.name));
  }
  if (options.graceDays !== undefined) {
    if (!Number.isFinite(options.graceDays) || options.graceDays < 0)
      throw new UsageError('--grace-days: must be a number of days >= 0');
    relations = relations.map((relation) => ({ ...relation, graceDays: options.graceDays! }));
  }

  const overrides = new Map((options.sourceOverrides ?? []).map(parseSourceOverride));
  for (const sourceName of overrides.keys()) {
    if (!config.sources[sourceName])
      throw new UsageError(
        `--source ${sourceName}: unknown source (known: ${Object.keys(config.sources).join(', ')})`,
      );
  }
  const required = new Set(
    relations.flatMap((relation) =>
      options.sourcesNeeded === 'all' || options.sourcesNeeded === undefined
        ? [relation.child.source, relation.parent.source]
        : [relation.child.source],
    ),
  );
  const used = new Set([
    ...required,
    ...(options.sourcesNeeded === 'children-and-given-parents'
      ? relations.map((relation) => relation.parent.source)
      : []),
  ]);
  const sources: Record<string, ResolvedSource> = {};
  for (const [sourceName, source] of Object.entries(config.sources)) {
    if (!used.has(sourceName)) continue;
    const uri = overrides.get(sourceName) ?? source.uri ?? (source.uriEnv ? env[source.uriEnv] : undefined);
    if (!uri && !required.has(sourceName)) continue;
    if (!uri) {
      const hint = source.uriEnv
        ? `set ${source.uriEnv} or pass --source ${sourceName}=URI`
        : `pass --source ${sourceName}=URI`;
      throw new UsageError(`source ${sourceName}: no URI (${hint})`);
    }
    validateUri(uri, overrides.has(sourceName) ? `--source ${sourceName}` : `source ${sourceName}`);
    sources[sourceName] = {
      name: sourceName,
      uri,
      database: source.database,
      ...(source.readPreference ? { readPreference: source.readPreference } : {}),
      ...(source.readPreferenceTags ? { readPreferenceTags: source.readPreferenceTags } : {}),
      ...(source.maxStalenessSeconds ? { maxStalenessSeconds: source.maxStalenessSeconds } : {}),
      ...(overrides.has(sourceName)
        ? { uriFrom: { flag: true as const } }
        : !source.uri && source.uriEnv
          ? { uriFrom: { env: source.uriEnv } }
          : {}),
    };
  }

  const { sources: _sources, relations: _relations, ...rest } = config;
  return {
    ...rest,
    origin,
    ...(options.configPath ? { configPath: resolvePath(options.configPath) } : {}),
    sources,
    relations,
    separation: separationSwitch(env),
    allowCollectionScan: Boolean(options.allowCollectionScan),
  };
}
