import { type Document, Long, type Timestamp } from 'bson';
import { CommandError, ErrorCodes } from '../command-error.ts';
import type { CommandHandler, ServerState } from './context.ts';

/**
 * The replica set as mongod describes it — `replSetGetStatus` (rs.status()), `replSetGetConfig` (rs.conf())
 * and the `local.system.replset` document — for this server as primary and a simulated secondary, whose lag
 * and configuration the `sandboxReplicationLag` fail point sets (hidden, delayed, non-voting).
 */

/** Every entry of the sandbox's oplog is written in term 1: it never holds an election. */
const TERM = 1;

function replicaSetOf(server: ServerState) {
  const set = server.replicaSet;
  if (!set || !server.oplog)
    throw new CommandError(ErrorCodes.NoReplicationEnabled, 'not running with --replSet');
  return { set, oplog: server.oplog };
}

/** The set's configuration document, as `replSetGetConfig` returns it and `local.system.replset` holds it. */
export function replicaSetConfig(server: ServerState): Document {
  const { set } = replicaSetOf(server);
  const { hidden, delaySecs, votes } = server.faults.secondary;
  const member = (id: number, host: string, priority: number, extra: Document = {}) => ({
    _id: id,
    host,
    arbiterOnly: false,
    buildIndexes: true,
    hidden: false,
    priority,
    tags: {},
    secondaryDelaySecs: Long.fromNumber(0),
    votes: 1,
    ...extra,
  });
  return {
    _id: set.name,
    version: 1,
    term: TERM,
    members: [
      member(0, set.host, 1),
      member(1, set.secondary ?? 'simulated-secondary', hidden || delaySecs > 0 || votes === 0 ? 0 : 1, {
        hidden,
        secondaryDelaySecs: Long.fromNumber(delaySecs),
        votes,
      }),
    ],
    protocolVersion: Long.fromNumber(1),
    writeConcernMajorityJournalDefault: true,
    settings: {
      chainingAllowed: true,
      heartbeatIntervalMillis: 2000,
      heartbeatTimeoutSecs: 10,
      electionTimeoutMillis: 10000,
      catchUpTimeoutMillis: -1,
      catchUpTakeoverDelayMillis: 30000,
      getLastErrorModes: {},
      getLastErrorDefaults: { w: 1, wtimeout: 0 },
    },
  };
}

const replSetGetConfig: CommandHandler = (ctx) => ({ config: replicaSetConfig(ctx.server), ok: 1 });

/**
 * The members' state as mongod reports it. The primary's optime is the oplog's newest entry; the simulated
 * secondary's the newest one applied at least its lag ago (`sandboxReplicationLag` seconds, else
 * `--secondary-lag-ms`), and the commit point (`lastCommittedOpTime`) is the majority point
 * (`--majority-lag-ms`). `optimeDate` is the primary's clock now (an idle mongod writes a no-op every 10 s, so
 * its optimeDate stays within 10 s of now; the sandbox writes none), the secondary's that less its lag (the fail
 * point's, else `--secondary-lag-ms`): what lag checks compare.
 */
const replSetGetStatus: CommandHandler = (ctx) => {
  const { set, oplog } = replicaSetOf(ctx.server);
  const now = new Date();
  const { lagSeconds, votes } = ctx.server.faults.secondary;
  const lagMs = lagSeconds > 0 ? lagSeconds * 1000 : ctx.server.parameters.sandboxSecondaryLagMillis;
  const applied = oplog.latest();
  const committed = oplog.majorityPoint();
  const secondaryApplied = oplog.pointBehind(lagMs);
  const opTime = (ts: Timestamp) => ({ ts, t: Long.fromNumber(TERM) });
  const votingMembers = 1 + (votes > 0 ? 1 : 0);
  const majority = Math.floor(votingMembers / 2) + 1;
  const uptime = Math.floor((now.getTime() - ctx.server.startedAt.getTime()) / 1000);
  const member = (id: number, name: string, state: 1 | 2, ts: Timestamp, optimeDate: Date) => {
    const self = (id === 0) !== Boolean(ctx.secondary);
    return {
      _id: id,
      name,
      health: 1,
      state,
      stateStr: state === 1 ? 'PRIMARY' : 'SECONDARY',
      uptime,
      optime: opTime(ts),
      optimeDurable: opTime(ts),
      optimeDate,
      optimeDurableDate: optimeDate,
      lastAppliedWallTime: oplog.wallOf(ts),
      lastDurableWallTime: oplog.wallOf(ts),
      syncSourceHost: state === 1 ? '' : set.host,
      syncSourceId: state === 1 ? -1 : 0,
      infoMessage: '',
      ...(state === 1 ? { electionTime: oplog.began, electionDate: ctx.server.startedAt } : {}),
      configVersion: 1,
      configTerm: TERM,
      ...(self
        ? { self: true, lastHeartbeatMessage: '' }
        : {
            lastHeartbeat: now,
            lastHeartbeatRecv: now,
            pingMs: Long.fromNumber(0),
            lastHeartbeatMessage: '',
          }),
    };
  };
  return {
    set: set.name,
    date: now,
    myState: ctx.secondary ? 2 : 1,
    term: Long.fromNumber(TERM),
    syncSourceHost: ctx.secondary ? set.host : '',
    syncSourceId: ctx.secondary ? 0 : -1,
    heartbeatIntervalMillis: Long.fromNumber(2000),
    majorityVoteCount: majority,
    writeMajorityCount: majority,
    votingMembersCount: votingMembers,
    writableVotingMembersCount: votingMembers,
    optimes: {
      lastCommittedOpTime: opTime(committed),
      lastCommittedWallTime: oplog.wallOf(committed),
      readConcernMajorityOpTime: opTime(committed),
      appliedOpTime: opTime(applied),
      durableOpTime: opTime(applied),
      lastAppliedWallTime: oplog.wallOf(applied),
      lastDurableWallTime: oplog.wallOf(applied),
    },
    members: [
      member(0, set.host, 1, applied, now),
      member(1, set.secondary ?? 'simulated-secondary', 2, secondaryApplied, new Date(now.getTime() - lagMs)),
    ],
    ok: 1,
  };
};

export const replicaSetCommands: Record<string, CommandHandler> = { replSetGetStatus, replSetGetConfig };
