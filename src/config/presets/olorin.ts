import type { ConfigFile } from '../schema.ts';

/**
 * The design note's three relations. Olorin platform data (`olorin_platform`) points at Bayit+ content
 * (`bayit_plus`), usually on another cluster; URIs come from the environment, never from this file.
 */
export const OLORIN_PRESET: ConfigFile = {
  sources: {
    olorin: { uriEnv: 'OLORIN_MONGODB_URI', database: 'olorin_platform' },
    bayit: { uriEnv: 'BAYIT_MONGODB_URI', database: 'bayit_plus' },
  },
  relations: [
    {
      name: 'content_embeddings',
      child: { source: 'olorin', collection: 'content_embeddings', field: 'content_id' },
      parent: { source: 'bayit', collection: 'content', field: '_id', softDeleteField: 'deleted_at' },
      keyMatch: 'objectid-or-hex',
    },
    {
      name: 'recap_sessions',
      child: { source: 'olorin', collection: 'recap_sessions', field: 'channel_id' },
      parent: { source: 'bayit', collection: 'live_channels', field: '_id' },
      keyMatch: 'objectid-or-hex',
    },
    {
      name: 'dubbing_sessions',
      child: { source: 'olorin', collection: 'dubbing_sessions', field: 'partner_id' },
      parent: {
        source: 'bayit',
        collection: 'integration_partners',
        field: 'partner_id',
        activeFilter: { status: { $ne: 'suspended' } },
      },
      keyMatch: 'exact',
    },
  ],
  requireSeparateDatabases: true,
};
