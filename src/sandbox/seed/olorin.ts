import { type Document, ObjectId } from 'bson';
import { DAY_MS } from '../../limits.ts';

/**
 * The demo's two databases, as the design note describes them: Bayit+ content (`bayit_plus`) and the
 * Olorin platform records pointing at it (`olorin_platform`). Deterministic for a given seed and `now`.
 *
 * What a scan of the three relations must find (no exceptions, no first-seen history):
 *
 * | relation           | scanned | ok   | orphans | parentInactive | invalidReference |
 * |--------------------|---------|------|---------|----------------|------------------|
 * | content_embeddings | 6,620   | 6,000| 300     | 300            | 20               |
 * | recap_sessions     | 435     | 400  | 32      | 0              | 3                |
 * | dubbing_sessions   | 358     | 300  | 20      | 36             | 2                |
 *
 * Of the 300 inactive embeddings, 180 point at content soft-deleted 8 to 25 days ago (past a 7-day grace)
 * and 120 at content soft-deleted 1 to 5 days ago (in grace).
 */
export const OLORIN_DATABASE = 'olorin_platform';
export const BAYIT_DATABASE = 'bayit_plus';

export const OLORIN_DEMO_COUNTS = {
  content_embeddings: {
    scanned: 6620,
    ok: 6000,
    orphans: 300,
    parentInactive: 300,
    invalidReference: 20,
    inactivePastGrace: 180,
  },
  recap_sessions: { scanned: 435, ok: 400, orphans: 32, parentInactive: 0, invalidReference: 3 },
  dubbing_sessions: { scanned: 358, ok: 300, orphans: 20, parentInactive: 36, invalidReference: 2 },
} as const;

const LIVE_CONTENT = 2000;
const SOFT_DELETED_OLD = 60;
const SOFT_DELETED_RECENT = 40;
const HARD_DELETED_CONTENT = 100;
const EMBEDDING_TYPES = ['title', 'description', 'subtitles'] as const;
const CHANNELS = 40;
const DELETED_CHANNELS = 8;
const ACTIVE_PARTNERS = 20;
const SUSPENDED_PARTNERS = 5;
const DELETED_PARTNERS = 4;

const ID_EPOCH = Date.UTC(2026, 0, 1);

/** mulberry32: small, fast and reproducible (the demo data and the live-count property test draw from it). */
export function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface OlorinDemoData {
  [database: string]: Record<string, Document[]>;
}

/**
 * `history: true` adds what two weeks of nightly scans would have left in the tool's own collections
 * (runs for the trend, first-seen state for the grace period), so the demo has deletable orphans and a
 * trend to draw. Tests leave it out and start from a first scan.
 */
export function buildOlorinDemo(
  options: { seed?: number; now?: Date; history?: boolean } = {},
): OlorinDemoData {
  const random = randomSource(options.seed ?? 42);
  const now = options.now?.getTime() ?? Date.now();
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const daysAgo = (min: number, max: number) => new Date(now - (min + random() * (max - min)) * DAY_MS);
  // Ids depend on the seed alone (not on `now`), so two processes seeding the two clusters agree on them.
  const objectId = (at = ID_EPOCH - random() * 400 * DAY_MS) => {
    const bytes = new Uint8Array(12);
    new DataView(bytes.buffer).setUint32(0, Math.floor(at / 1000));
    for (let i = 4; i < 12; i++) bytes[i] = Math.floor(random() * 256);
    return new ObjectId(bytes);
  };
  const languages = ['he', 'en', 'ru', 'ar', 'fr'];
  const kinds = ['movie', 'series', 'episode', 'podcast'];

  const content: Document[] = [];
  const makeContent = (deletedAt: Date | null) => {
    const created = daysAgo(30, 400);
    const doc = {
      _id: objectId(),
      title: `Title ${content.length + 1}`,
      type: pick(kinds),
      language: pick(languages),
      created_at: created,
      deleted_at: deletedAt,
    };
    content.push(doc);
    return doc._id;
  };
  const liveContent = Array.from({ length: LIVE_CONTENT }, () => makeContent(null));
  const oldDeleted = Array.from({ length: SOFT_DELETED_OLD }, () => makeContent(daysAgo(8, 25)));
  const recentDeleted = Array.from({ length: SOFT_DELETED_RECENT }, () => makeContent(daysAgo(1, 5)));
  const hardDeleted = Array.from({ length: HARD_DELETED_CONTENT }, () => objectId());

  const embeddings: Document[] = [];
  const embed = (contentId: unknown, type: string) => {
    const doc: Document = { _id: objectId() };
    if (contentId !== undefined) doc.content_id = contentId;
    doc.embedding_type = type;
    doc.model = 'text-embedding-3-small';
    doc.embedding = Array.from({ length: 16 }, () => Math.round((random() * 2 - 1) * 1e6) / 1e6);
    doc.created_at = daysAgo(1, 60);
    embeddings.push(doc);
  };
  // Mostly 24-hex strings, sometimes ObjectIds, as the design note shows.
  const reference = (id: ObjectId) => (random() < 0.9 ? id.toHexString() : id);
  for (const id of [...liveContent, ...oldDeleted, ...recentDeleted, ...hardDeleted]) {
    for (const type of EMBEDDING_TYPES) embed(reference(id), type);
  }
  for (const garbage of [null, undefined, 'not-a-content-id', 12345, '']) {
    for (let i = 0; i < 4; i++) embed(garbage, pick(EMBEDDING_TYPES));
  }

  const channels: Document[] = Array.from({ length: CHANNELS }, (_, i) => ({
    _id: objectId(),
    name: `Channel ${i + 1}`,
    slug: `channel-${i + 1}`,
    language: pick(languages),
    created_at: daysAgo(100, 600),
  }));
  const deletedChannels = Array.from({ length: DELETED_CHANNELS }, () => objectId());
  const recaps: Document[] = [];
  const recap = (channelId: unknown) => {
    const started = daysAgo(0, 30);
    const doc: Document = { _id: objectId() };
    if (channelId !== undefined) doc.channel_id = channelId;
    Object.assign(doc, {
      started_at: started,
      ended_at: new Date(started.getTime() + 3_600_000),
      summary_language: pick(languages),
      status: 'completed',
      segments: 1 + Math.floor(random() * 12),
    });
    recaps.push(doc);
  };
  for (let i = 0; i < 400; i++) recap(channels[i % CHANNELS]._id);
  for (const id of deletedChannels) for (let i = 0; i < 4; i++) recap(id);
  for (const garbage of [null, undefined, 'kan-11']) recap(garbage);

  const partners: Document[] = [];
  const partner = (status: 'active' | 'suspended', i: number) => {
    const doc: Document = {
      _id: objectId(),
      partner_id: `partner-${String(i).padStart(3, '0')}`,
      name: `Partner ${i}`,
      status,
      contact_email: `ops@partner${i}.example`,
      created_at: daysAgo(100, 900),
    };
    if (status === 'suspended') doc.suspended_at = daysAgo(2, 40);
    partners.push(doc);
    return doc.partner_id as string;
  };
  const activePartners = Array.from({ length: ACTIVE_PARTNERS }, (_, i) => partner('active', i + 1));
  const suspendedPartners = Array.from({ length: SUSPENDED_PARTNERS }, (_, i) =>
    partner('suspended', ACTIVE_PARTNERS + i + 1),
  );
  const deletedPartners = Array.from({ length: DELETED_PARTNERS }, (_, i) => `partner-${900 + i}`);
  const dubbing: Document[] = [];
  const dub = (partnerId: unknown) => {
    const doc: Document = { _id: objectId() };
    if (partnerId !== undefined) doc.partner_id = partnerId;
    Object.assign(doc, {
      content_id: pick(liveContent).toHexString(),
      source_language: 'he',
      target_language: pick(['en', 'ru', 'fr']),
      status: pick(['completed', 'completed', 'failed']),
      created_at: daysAgo(0, 90),
    });
    dubbing.push(doc);
  };
  for (let i = 0; i < 300; i++) dub(activePartners[i % ACTIVE_PARTNERS]);
  for (let i = 0; i < 36; i++) dub(suspendedPartners[i % SUSPENDED_PARTNERS]);
  for (let i = 0; i < 20; i++) dub(deletedPartners[i % DELETED_PARTNERS]);
  for (const garbage of [null, '']) dub(garbage);

  const shuffled = (docs: Document[]) => {
    for (let i = docs.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [docs[i], docs[j]] = [docs[j], docs[i]];
    }
    return docs;
  };
  shuffled(embeddings);
  shuffled(recaps);
  shuffled(dubbing);
  const olorin: Record<string, Document[]> = {
    content_embeddings: embeddings,
    recap_sessions: recaps,
    dubbing_sessions: dubbing,
  };
  if (options.history) {
    const firstSeen = (relation: string, keys: string[], daysBack: (i: number) => number) =>
      keys.map((key, i) => ({
        _id: `${relation}:${key}`,
        relation,
        key,
        firstSeenAt: new Date(now - daysBack(i) * DAY_MS),
      }));
    olorin.orphan_cleanup_first_seen = [
      // Most orphans were first seen ten days ago (past a 7-day grace); a fifth of them only two days ago.
      ...firstSeen(
        'content_embeddings',
        hardDeleted.map((id) => id.toHexString()),
        (i) => (i % 5 === 0 ? 2 : 10),
      ),
      ...firstSeen(
        'recap_sessions',
        deletedChannels.map((id) => id.toHexString()),
        (i) => (i % 4 === 0 ? 3 : 12),
      ),
      ...firstSeen(
        'dubbing_sessions',
        [...deletedPartners, ...suspendedPartners].map((id) => `s${id}`),
        () => 9,
      ),
    ];
    const finals: Record<string, [number, number]> = {
      content_embeddings: [300, 300],
      recap_sessions: [32, 0],
      dubbing_sessions: [20, 36],
    };
    olorin.orphan_cleanup_runs = Object.entries(finals).flatMap(([relation, [orphans, inactive]]) =>
      Array.from({ length: 14 }, (_, day) => {
        const at = new Date(now - (14 - day) * DAY_MS);
        const grown = (n: number) => Math.round(n * (0.35 + (0.6 * day) / 13));
        return {
          // From the seeded generator too: the same ids every run, as the README says.
          _id: objectId(),
          runId: `demo-${relation}-${day}`,
          kind: 'scan',
          relation,
          startedAt: at,
          finishedAt: new Date(at.getTime() + 2000),
          durationMs: 2000,
          operator: 'nightly-cron',
          host: 'demo',
          outcome: 'succeeded',
          complete: true,
          counts: { orphans: grown(orphans), parentInactive: grown(inactive) },
        };
      }),
    );
  }
  return {
    [BAYIT_DATABASE]: { content, live_channels: channels, integration_partners: partners },
    [OLORIN_DATABASE]: olorin,
  };
}

/** The demo's indexes; it leaves `dubbing_sessions.partner_id` unindexed for `doctor` to find. */
export const OLORIN_DEMO_INDEXES: Record<string, Record<string, Document[]>> = {
  [BAYIT_DATABASE]: {
    // What the design note's Beanie example really creates: a compound index, not a TTL. `doctor` says so.
    content: [
      {
        key: { deleted_at: 1, expireAfterSeconds: 2592000 },
        name: 'deleted_at_1_expireAfterSeconds_2592000',
      },
    ],
    integration_partners: [{ key: { partner_id: 1 }, name: 'partner_id_1', unique: true }],
  },
  [OLORIN_DATABASE]: {
    content_embeddings: [{ key: { content_id: 1 }, name: 'content_id_1' }],
    recap_sessions: [{ key: { channel_id: 1 }, name: 'channel_id_1' }],
  },
};
