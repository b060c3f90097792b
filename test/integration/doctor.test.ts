import { describe, expect, it } from 'vitest';
import { diagnose } from '../../src/engine/doctor.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { withOlorinDemo } from '../support/olorin-fixture.ts';

const ctx = withOlorinDemo();

async function findings() {
  const pool = new SourcePool(ctx.demo.config.sources);
  try {
    const diagnosis = await diagnose(pool, ctx.demo.config.relations);
    return {
      diagnosis,
      byRelation: Object.fromEntries(diagnosis.relations.map((r) => [r.relation, r.findings])),
    };
  } finally {
    await pool.close();
  }
}

describe('doctor', () => {
  it('reports server version and topology of each source', async () => {
    const { diagnosis } = await findings();
    expect(diagnosis.sources.map((s) => s.source)).toEqual(['olorin', 'bayit']);
    for (const { capabilities } of diagnosis.sources) {
      expect(capabilities.version).toMatch(/^\d+\.\d+/);
      expect(['standalone', 'replicaSet', 'sharded']).toContain(capabilities.topology);
    }
  });

  it("finds the missing child index, the design note's malformed TTL, and the key types", async () => {
    const { byRelation } = await findings();
    const warnings = (name: string) =>
      byRelation[name].filter((f) => f.level === 'warn').map((f) => f.message);
    expect(warnings('dubbing_sessions')).toEqual([
      expect.stringMatching(/^no index on dubbing_sessions\.partner_id/),
    ]);
    expect(warnings('content_embeddings')).toEqual([
      expect.stringMatching(/compound index on a field named "expireAfterSeconds", not a TTL/),
    ]);
    expect(warnings('recap_sessions')).toEqual([]);
    const types = byRelation.content_embeddings.find((f) =>
      f.message.startsWith('parent key types'),
    )!.message;
    expect(types).toMatch(
      /parent key types \(sample\): objectId 100%; child reference types: string \d+%, objectId \d+%/,
    );
    // The soft-delete field's value types, and what they mean.
    const softDelete = byRelation.content_embeddings.find((f) => f.message.startsWith('content.deleted_at'))!;
    expect(softDelete).toEqual({
      level: 'info',
      message: expect.stringMatching(
        /^content\.deleted_at value types \(sample\): (null|date) \d+%, (null|date) \d+%; a date or true marks a deleted parent, false, 0, "", null or absence a live one, anything else makes the relation unsafe$/,
      ),
    });
  });

  it('says which collections need pre-images for live counts, with the command', async () => {
    const { byRelation } = await findings();
    const live = (name: string) => byRelation[name].find((f) => /^(live counts|pre-images)/.test(f.message))!;
    // The demo data is loaded without pre-images; a parent keyed by another field than _id needs them too.
    expect(live('content_embeddings')).toEqual({
      level: 'info',
      message: expect.stringMatching(
        /^live counts need pre-images on content_embeddings: db\.getSiblingDB\('\S+'\)\.runCommand\(\{collMod: 'content_embeddings', changeStreamPreAndPostImages: \{enabled: true\}\}\)/,
      ),
    });
    expect(live('dubbing_sessions').message).toMatch(
      /^live counts need pre-images on dubbing_sessions and integration_partners: /,
    );
  });

  it('accepts a real TTL index longer than the grace period', async () => {
    const content = ctx.server.client.db(ctx.demo.bayitDb).collection('content');
    await content.dropIndex('deleted_at_1_expireAfterSeconds_2592000');
    await content.createIndex({ deleted_at: 1 }, { expireAfterSeconds: 30 * 86_400 });
    const { byRelation } = await findings();
    expect(byRelation.content_embeddings.filter((f) => f.level === 'warn')).toEqual([]);
    expect(byRelation.content_embeddings.map((f) => f.message)).toContain(
      'TTL index deleted_at_1 removes soft-deleted parents after 30.0 days (grace 7 days)',
    );
  });
});

// Issue 24 item 3: pre-images that expire before a live-count start can finish are warned about.
describe('doctor on a replica set', () => {
  const rs = withOlorinDemo({}, { replicaSet: 'rs0' });

  it('warns when pre-images expire sooner than a live-count start may take, with the command that raises it', async () => {
    const admin = rs.server.client.db('admin');
    const read = async () => {
      const pool = new SourcePool(rs.demo.config.sources);
      try {
        const diagnosis = await diagnose(pool, rs.demo.config.relations);
        return diagnosis.relations
          .find((r) => r.relation === 'content_embeddings')!
          .findings.filter((f) => /^pre-images on /.test(f.message));
      } finally {
        await pool.close();
      }
    };
    try {
      await admin.command({
        setClusterParameter: { changeStreamOptions: { preAndPostImages: { expireAfterSeconds: 60 } } },
      });
      expect(await read()).toEqual([
        {
          level: 'warn',
          message: expect.stringMatching(
            /^pre-images on olorin expire after 60 s, less than the 300 s a live-count start may take: .*setClusterParameter: \{changeStreamOptions: \{preAndPostImages: \{expireAfterSeconds: 3600\}\}\}/,
          ),
        },
      ]);
      await admin.command({
        setClusterParameter: { changeStreamOptions: { preAndPostImages: { expireAfterSeconds: 'off' } } },
      });
      expect(await read()).toEqual([
        {
          level: 'ok',
          message: expect.stringMatching(/^pre-images on olorin are kept as long as the oplog/),
        },
      ]);
    } finally {
      await admin.command({
        setClusterParameter: { changeStreamOptions: { preAndPostImages: { expireAfterSeconds: 'off' } } },
      });
    }
  });
});
