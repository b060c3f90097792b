import { z } from 'zod';
import { DEFAULT_MAX_TIME_MS } from '../mongo/timeouts.ts';

const name = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, _ . -');
/** Control characters in a name would reach the terminal in every table and message that shows it. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const collectionName = z
  .string()
  .min(1)
  .refine((value) => !value.includes('$') && !value.startsWith('system.'), 'not a usable collection name')
  .refine((value) => !CONTROL.test(value), 'has a control character');
const databaseName = z
  .string()
  .min(1)
  .regex(/^[^/\\. "$]+$/, 'not a valid database name');
const fieldPath = z
  .string()
  .min(1)
  .refine((value) => !value.startsWith('$') && !value.split('.').includes(''), 'not a valid field path')
  .refine((value) => !CONTROL.test(value), 'has a control character');

/** Keys JavaScript treats specially: a parser would drop them (or set a prototype) and change the filter's meaning. */
const SPECIAL_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function specialKeyIn(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = specialKeyIn(item);
      if (found) return found;
    }
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  for (const key of Object.keys(value)) {
    if (SPECIAL_KEYS.has(key)) return key;
    const found = specialKeyIn((value as Record<string, unknown>)[key]);
    if (found) return found;
  }
  return undefined;
}

/** A query the parent's server evaluates: refused whole, never silently changed, when a key cannot be kept. */
const activeFilter = z
  .unknown()
  .superRefine((value, ctx) => {
    const key = specialKeyIn(value);
    if (key)
      ctx.addIssue({
        code: 'custom',
        message: `the key ${key} is refused (it cannot be passed on as written)`,
      });
  })
  .pipe(z.record(z.string(), z.unknown()));

export const READ_PREFERENCES = [
  'primary',
  'primaryPreferred',
  'secondary',
  'secondaryPreferred',
  'nearest',
] as const;

export const sourceSchema = z
  .object({
    /** A URI in the file (discouraged for secrets), or the name of an environment variable holding it. */
    uri: z.string().min(1).optional(),
    uriEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
      .optional(),
    database: databaseName,
    /** Used when the URI names no readPreference (the URI's, with its tags and maxStalenessSeconds, wins). */
    readPreference: z.enum(READ_PREFERENCES).optional(),
    readPreferenceTags: z.array(z.record(z.string(), z.string())).optional(),
    maxStalenessSeconds: z.number().int().min(90).optional(),
  })
  .strict();

export const relationSchema = z
  .object({
    name,
    child: z.object({ source: name, collection: collectionName, field: fieldPath }).strict(),
    parent: z
      .object({
        source: name,
        collection: collectionName,
        field: fieldPath.default('_id'),
        softDeleteField: fieldPath.optional(),
        activeFilter: activeFilter.optional(),
      })
      .strict(),
    keyMatch: z.enum(['exact', 'objectid-or-hex']).default('exact'),
    graceDays: z.number().min(0).default(7),
    batchSize: z.number().int().min(1).max(1000).default(1000),
  })
  .strict();

export const configSchema = z
  .object({
    sources: z.record(name, sourceSchema),
    relations: z.array(relationSchema).min(1),
    requireSeparateDatabases: z.boolean().default(true),
    maxOrphanRatio: z.number().min(0).max(1).default(0.5),
    alertThreshold: z.number().int().min(0).default(10_000),
    growthAlertPerDay: z.number().min(0).default(1_000),
    /** Alert when a relation's parent-probe p95 latency is above this (the design note's 500 ms). */
    latencyAlertMs: z.number().min(0).default(500),
    sampleSize: z.number().int().min(0).max(1000).default(50),
    maxTimeMS: z.number().int().min(1).max(3_600_000).default(DEFAULT_MAX_TIME_MS),
  })
  .strict();

export type SourceConfig = z.infer<typeof sourceSchema>;
export type RelationConfig = z.infer<typeof relationSchema>;
export type ConfigFile = z.input<typeof configSchema>;
export type ParsedConfig = z.infer<typeof configSchema>;
