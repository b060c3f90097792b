import type { Document, MongoClient } from 'mongodb';

export type Topology = 'standalone' | 'replicaSet' | 'sharded';

export interface ServerCapabilities {
  version: string;
  topology: Topology;
  /** Multi-document transactions: replica sets and sharded clusters only. */
  transactions: boolean;
  /** Our own embedded sandbox rather than a mongod. */
  sandbox: boolean;
  roundTripMs: number;
}

/** What the server is and can do, from `hello` and `buildInfo` (two round trips). */
export async function probeCapabilities(client: MongoClient): Promise<ServerCapabilities> {
  const admin = client.db('admin');
  const started = performance.now();
  const hello: Document = await admin.command({ hello: 1 });
  const roundTripMs = performance.now() - started;
  const build: Document = await admin.command({ buildInfo: 1 });
  const topology: Topology =
    hello.msg === 'isdbgrid' ? 'sharded' : hello.setName ? 'replicaSet' : 'standalone';
  return {
    version: String(build.version),
    topology,
    transactions: topology !== 'standalone' && hello.logicalSessionTimeoutMinutes != null,
    sandbox: build.gitVersion === 'orphan-cleanup-sandbox',
    roundTripMs,
  };
}

/** How far the furthest secondary trails the primary, in seconds (`replSetGetStatus`: needs clusterMonitor). */
export async function secondaryLagSeconds(client: MongoClient): Promise<number> {
  const status = await client.db('admin').command({ replSetGetStatus: 1 });
  const members = status.members as { stateStr: string; optimeDate: Date }[];
  const primary = members.find((m) => m.stateStr === 'PRIMARY');
  if (!primary) return 0;
  return Math.max(
    0,
    ...members
      .filter((m) => m.stateStr === 'SECONDARY')
      .map((m) => (primary.optimeDate.getTime() - m.optimeDate.getTime()) / 1000),
  );
}
