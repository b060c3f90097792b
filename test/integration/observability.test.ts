import { BSON } from 'bson';
import { describe, expect, it } from 'vitest';
import { runScan } from '../../src/engine/run-scan.ts';
import { SourcePool } from '../../src/mongo/sources.ts';
import { OWNED_COLLECTIONS } from '../../src/store/access.ts';
import { withOlorinDemo } from '../support/olorin-fixture.ts';

const DAY = 86_400_000;
const ctx = withOlorinDemo();

async function scanAt(now: Date) {
  const pool = new SourcePool(ctx.demo.config.sources);
  try {
    return await runScan({
      config: {
        ...ctx.demo.config,
        relations: ctx.demo.config.relations.filter((r) => r.name === 'recap_sessions'),
      },
      pool,
      access: { readOnly: false },
      now,
    });
  } finally {
    await pool.close();
  }
}

describe('observability', () => {
  it('measures growth per day across recorded runs, with cleanups taken out', async () => {
    const now = new Date();
    const runs = ctx.server.client.db(ctx.demo.olorinDb).collection(OWNED_COLLECTIONS.runs);
    const run = (daysAgo: number, kind: string, counts: Record<string, number>) => ({
      runId: `r${daysAgo}${kind}`,
      kind,
      relation: 'recap_sessions',
      startedAt: new Date(now.getTime() - daysAgo * DAY),
      finishedAt: new Date(now.getTime() - daysAgo * DAY),
      durationMs: 1,
      operator: 't',
      host: 'h',
      outcome: 'succeeded',
      complete: true,
      counts,
    });
    await runs.insertMany([
      run(3, 'scan', { orphans: 10, parentInactive: 0 }),
      run(2, 'scan', { orphans: 20, parentInactive: 0 }),
      run(1.5, 'clean', { deleted: 8 }),
      run(1, 'scan', { orphans: 22, parentInactive: 0 }),
    ]);
    const [recaps] = (await scanAt(now)).relations;
    expect(recaps.orphans).toBe(32);
    expect(recaps.changeSincePrevious).toBe(10);
    // Reference: the scan a day ago (22); no cleanup since: (32 - 22) per 1 day.
    expect(recaps.growthPerDay).toBe(10);
    await runs.deleteMany({ runId: 'r1scan' });
    const [again] = (await scanAt(new Date(now.getTime() + 1000))).relations;
    // The previous scan is the one just made (32); the reference for growth, the newest at least 12 h old, is
    // two days back (20), and the cleanup since then deleted 8: (32 - 20 + 8) per 2 days.
    expect(again.changeSincePrevious).toBe(0);
    expect(again.growthPerDay).toBe(10);
  });

  it('sums the BSON size of the orphaned documents it found, without reading them again', async () => {
    const [recaps] = (await scanAt(new Date())).relations;
    const channels = new Set(
      (await ctx.server.client.db(ctx.demo.bayitDb).collection('live_channels').find().toArray()).map((c) =>
        String(c._id),
      ),
    );
    const orphans = (
      await ctx.server.client.db(ctx.demo.olorinDb).collection('recap_sessions').find().toArray()
    ).filter(
      (doc) =>
        doc.channel_id &&
        /^[0-9a-f]{24}$/i.test(String(doc.channel_id)) &&
        !channels.has(String(doc.channel_id)),
    );
    expect(orphans).toHaveLength(32);
    expect(recaps.orphanBytes).toBe(orphans.reduce((sum, doc) => sum + BSON.calculateObjectSize(doc), 0));
  });
});
