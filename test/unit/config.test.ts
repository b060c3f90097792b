import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { UsageError } from '../../src/errors.ts';

const env = {
  OLORIN_MONGODB_URI: 'mongodb://olorin.example:27017',
  BAYIT_MONGODB_URI: 'mongodb://bayit.example:27017',
};

async function writeConfig(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oc-cfg-'));
  const path = join(dir, 'c.json');
  await writeFile(path, content);
  return path;
}

async function usageMessage(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  return (error as Error).message;
}

describe('loadConfig', () => {
  it('uses the Olorin preset with URIs from the environment', async () => {
    const config = await loadConfig({ env });
    expect(config.relations.map((r) => r.name)).toEqual([
      'content_embeddings',
      'recap_sessions',
      'dubbing_sessions',
    ]);
    expect(config.relations[0]).toMatchObject({ keyMatch: 'objectid-or-hex', graceDays: 7, batchSize: 1000 });
    expect(config.relations[0].parent).toMatchObject({
      collection: 'content',
      field: '_id',
      softDeleteField: 'deleted_at',
    });
    // No read preference configured: the URI's applies, else secondaryPreferred (SourcePool.db).
    expect(config.sources.olorin).toEqual({
      name: 'olorin',
      uri: expect.any(String),
      database: 'olorin_platform',
      // Named in printed restore commands: the variable a second shell needs, never the URI.
      uriFrom: { env: 'OLORIN_MONGODB_URI' },
    });
    expect(config.requireSeparateDatabases).toBe(true);
    expect(config.maxOrphanRatio).toBe(0.5);
    expect(config.alertThreshold).toBe(10_000);
    expect(config.separation).toBe('unset');
  });

  it('says which variable to set when a URI is missing', async () => {
    expect(await usageMessage(loadConfig({ env: {} }))).toBe(
      'source olorin: no URI (set OLORIN_MONGODB_URI or pass --source olorin=URI)',
    );
  });

  it('filters relations, overrides sources and grace days, and reads the separation switch', async () => {
    const config = await loadConfig({
      env: { ...env, OLORIN_USE_SEPARATE_DATABASE: 'false' },
      relationNames: ['recap_sessions'],
      sourceOverrides: ['bayit=mongodb://other:27017'],
      graceDays: 3,
    });
    expect(config.relations.map((r) => [r.name, r.graceDays])).toEqual([['recap_sessions', 3]]);
    expect(config.sources.bayit.uri).toBe('mongodb://other:27017');
    expect(config.separation).toBe('off');
  });

  it('reads the separation switch as true/false, 1/0 or yes/no in any case, and refuses anything else', async () => {
    const read = (value: string) =>
      loadConfig({ env: { ...env, OLORIN_USE_SEPARATE_DATABASE: value } }).then((c) => c.separation);
    for (const on of ['true', 'TRUE', '1', 'Yes']) expect(await read(on)).toBe('on');
    for (const off of ['false', 'False', '0', 'NO']) expect(await read(off)).toBe('off');
    for (const bad of ['ture', 'on', '2'])
      await expect(read(bad)).rejects.toThrow(
        new UsageError(
          `OLORIN_USE_SEPARATE_DATABASE="${bad}": expected true or false (1/0 and yes/no work too)`,
        ),
      );
  });

  it('names the unknown relation or source', async () => {
    expect(await usageMessage(loadConfig({ env, relationNames: ['nope'] }))).toMatch(
      /^--relation nope: unknown relation \(known: content_embeddings/,
    );
    expect(await usageMessage(loadConfig({ env, sourceOverrides: ['elsewhere=mongodb://x'] }))).toMatch(
      /^--source elsewhere: unknown source/,
    );
    expect(await usageMessage(loadConfig({ env, sourceOverrides: ['olorin'] }))).toBe(
      '--source olorin: expected name=URI',
    );
  });

  it('rejects a bad URI without echoing its password', async () => {
    const message = await usageMessage(
      loadConfig({ env, sourceOverrides: ['olorin=mongodb://admin:hunter22@'] }),
    );
    expect(message).toMatch(/^--source olorin: invalid MongoDB URI/);
    expect(message).not.toContain('hunter22');
  });

  it('names the bad key of a config file', async () => {
    const bad = await writeConfig(
      JSON.stringify({
        sources: { a: { uri: 'mongodb://h', database: 'x' } },
        relations: [
          {
            name: 'r',
            child: { source: 'a', collection: 'c', field: 'f' },
            parent: { source: 'a', collection: 'p' },
            batchSize: 5000,
          },
        ],
      }),
    );
    expect(await usageMessage(loadConfig({ configPath: bad }))).toMatch(
      new RegExp(`^config ${bad}: relations\\.0\\.batchSize: `),
    );
    const unknownKey = await writeConfig(
      JSON.stringify({
        sources: { a: { uri: 'mongodb://h', database: 'x' } },
        relations: [
          {
            name: 'r',
            child: { source: 'a', collection: 'c', field: 'f' },
            parent: { source: 'a', collection: 'p' },
          },
        ],
        colour: 'red',
      }),
    );
    expect(await usageMessage(loadConfig({ configPath: unknownKey }))).toBe(
      `config ${unknownKey}: (top level): Unrecognized key: "colour"`,
    );
    const notJson = await writeConfig('{ sources: ');
    expect(await usageMessage(loadConfig({ configPath: notJson }))).toMatch(/not valid JSON/);
    expect(await usageMessage(loadConfig({ configPath: '/nonexistent/c.json' }))).toBe(
      '--config /nonexistent/c.json: cannot read it (no such file or directory)',
    );
    const badSource = await writeConfig(
      JSON.stringify({
        sources: { a: { uri: 'mongodb://h', database: 'x' } },
        relations: [
          {
            name: 'r',
            child: { source: 'a', collection: 'c', field: 'f' },
            parent: { source: 'b', collection: 'p' },
          },
        ],
      }),
    );
    expect(await usageMessage(loadConfig({ configPath: badSource }))).toMatch(
      /relation 'r': parent\.source 'b' is not among sources \(a\)/,
    );
  });
});
