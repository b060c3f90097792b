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

/**
 * Whether the server this client talks to takes writes: a primary or a mongos (`hello.isWritablePrimary`).
 * A direct connection to a secondary reads there even with readPreference primary (the driver sends
 * primaryPreferred), so "re-checked on the primary" would be untrue: a cleanup refuses such a source.
 */
export async function isWritablePrimary(client: MongoClient): Promise<boolean> {
  const hello: Document = await client.db('admin').command({ hello: 1 });
  return hello.isWritablePrimary === true || hello.ismaster === true;
}

/**
 * How far the furthest secondary that serves reads and acknowledges writes trails the primary, in seconds
 * (`replSetGetStatus` and `replSetGetConfig`: both need clusterMonitor). Hidden, delayed and non-voting
 * members (analytics nodes) are left out: they trail by design or count for no majority, and waiting for them
 * would stall every cleanup.
 */
export async function secondaryLagSeconds(client: MongoClient): Promise<number> {
  const admin = client.db('admin');
  const [status, config] = await Promise.all([
    admin.command({ replSetGetStatus: 1 }),
    admin.command({ replSetGetConfig: 1 }),
  ]);
  const ignored = new Set(
    ((config.config?.members ?? []) as Document[])
      .filter(
        (m) =>
          m.hidden === true ||
          Number(m.secondaryDelaySecs ?? m.slaveDelay ?? 0) > 0 ||
          (m.votes !== undefined && Number(m.votes) === 0),
      )
      .map((m) => String(m.host)),
  );
  const members = status.members as { name: string; stateStr: string; optimeDate: Date }[];
  const primary = members.find((m) => m.stateStr === 'PRIMARY');
  if (!primary) return 0;
  return Math.max(
    0,
    ...members
      .filter((m) => m.stateStr === 'SECONDARY' && !ignored.has(m.name))
      .map((m) => (primary.optimeDate.getTime() - m.optimeDate.getTime()) / 1000),
  );
}

/** The server's clock (`hello.localTime`, taken at the middle of the round trip) and its offset from ours. */
export async function serverClock(client: MongoClient): Promise<{ now: Date; offsetMs: number }> {
  const sent = Date.now();
  const hello: Document = await client.db('admin').command({ hello: 1 });
  const received = Date.now();
  const local = hello.localTime instanceof Date ? hello.localTime.getTime() : received;
  const offsetMs = local - (sent + received) / 2;
  return { now: new Date(received + offsetMs), offsetMs };
}
