import type { Document } from 'bson';
import { CommandError, ErrorCodes } from './command-error.ts';

/**
 * Test fault injection through mongod's own `configureFailPoint: "failCommand"` command, so the same test
 * drives the sandbox and a real mongod started with enableTestCommands. As an extension, a mode may give
 * both `skip` and `times` ("fail the Nth command": `{skip: N-1, times: 1}`).
 */
export interface FailCommandData {
  failCommands: string[];
  errorCode?: number;
  closeConnection?: boolean;
  blockConnection?: boolean;
  blockTimeMS?: number;
  appName?: string;
  /** As on mongod 4.4+: only commands on this `db.collection`. */
  namespace?: string;
  errorLabels?: string[];
  /** As on mongod: the command runs, and its reply carries this write concern error. */
  writeConcernError?: Document;
}

export interface FaultAction {
  delayMs: number;
  closeConnection: boolean;
  error?: CommandError;
  writeConcernError?: Document;
}

/** The simulated secondary's shape in `replSetGetConfig`, set by the `sandboxReplicationLag` fail point. */
export interface SimulatedSecondary {
  lagSeconds: number;
  hidden: boolean;
  delaySecs: number;
  /** 0 for a non-voting member (an analytics node). */
  votes: number;
}

interface ActiveFailPoint {
  data: FailCommandData;
  skip: number;
  times: number;
}

export class FailPoints {
  private failCommand: ActiveFailPoint | undefined;
  /**
   * Sandbox-only `sandboxReplicationLag` fail point: how far the simulated secondary trails, in seconds, and
   * whether the set's config calls it hidden, delayed or non-voting (`data: {seconds, hidden?, delaySecs?, votes?}`).
   */
  secondary: SimulatedSecondary = { lagSeconds: 0, hidden: false, delaySecs: 0, votes: 1 };
  /** Sandbox-only `sandboxMajorityUnreachable`: `w: "majority"` writes wait until their wtimeout, then fail (64). */
  majorityUnreachable = false;

  get replicationLagSeconds(): number {
    return this.secondary.lagSeconds;
  }

  configure(body: Document): Document {
    const data = (body.data as Document | undefined) ?? {};
    if (body.configureFailPoint === 'sandboxReplicationLag') {
      const seconds = Number(data.seconds ?? 0);
      const delaySecs = Number(data.delaySecs ?? 0);
      if (
        body.mode !== 'off' &&
        (body.mode !== 'alwaysOn' || !Number.isFinite(seconds) || seconds < 0 || !(delaySecs >= 0))
      )
        throw new CommandError(
          ErrorCodes.BadValue,
          'sandboxReplicationLag takes mode alwaysOn and data.seconds >= 0 (hidden, delaySecs, votes optional)',
        );
      this.secondary =
        body.mode === 'off'
          ? { lagSeconds: 0, hidden: false, delaySecs: 0, votes: 1 }
          : { lagSeconds: seconds, hidden: data.hidden === true, delaySecs, votes: data.votes === 0 ? 0 : 1 };
      return { count: 0, ok: 1 };
    }
    if (body.configureFailPoint === 'sandboxMajorityUnreachable') {
      if (body.mode !== 'off' && body.mode !== 'alwaysOn')
        throw new CommandError(ErrorCodes.BadValue, 'sandboxMajorityUnreachable takes mode alwaysOn or off');
      this.majorityUnreachable = body.mode === 'alwaysOn';
      return { count: 0, ok: 1 };
    }
    if (body.configureFailPoint !== 'failCommand') {
      throw new CommandError(ErrorCodes.BadValue, `unknown fail point ${String(body.configureFailPoint)}`);
    }
    const mode = body.mode;
    if (mode === 'off') {
      this.failCommand = undefined;
      return { count: 0, ok: 1 };
    }
    const failData = body.data as FailCommandData | undefined;
    if (!failData || !Array.isArray(failData.failCommands)) {
      throw new CommandError(ErrorCodes.BadValue, 'failCommand requires data.failCommands');
    }
    let skip = 0;
    let times = Number.POSITIVE_INFINITY;
    if (mode && typeof mode === 'object') {
      if (mode.skip !== undefined) skip = Number(mode.skip);
      if (mode.times !== undefined) times = Number(mode.times);
    } else if (mode !== 'alwaysOn') {
      throw new CommandError(ErrorCodes.BadValue, `unsupported fail point mode ${JSON.stringify(mode)}`);
    }
    this.failCommand = { data: failData, skip, times };
    return { count: 0, ok: 1 };
  }

  /** What to do for this command, counting it against the fail point's skip/times. */
  match(commandName: string, appName: string | undefined, namespace?: string): FaultAction | undefined {
    const point = this.failCommand;
    if (!point?.data.failCommands.includes(commandName)) return undefined;
    if (point.data.appName !== undefined && point.data.appName !== appName) return undefined;
    if (point.data.namespace !== undefined && point.data.namespace !== namespace) return undefined;
    if (point.skip > 0) {
      point.skip--;
      return undefined;
    }
    if (point.times <= 0) return undefined;
    point.times--;
    if (point.times <= 0) this.failCommand = undefined;
    const { data } = point;
    return {
      delayMs: data.blockConnection ? Number(data.blockTimeMS ?? 0) : 0,
      closeConnection: Boolean(data.closeConnection),
      ...(data.writeConcernError ? { writeConcernError: data.writeConcernError } : {}),
      error:
        data.errorCode !== undefined
          ? new CommandError(data.errorCode, `Failing command ${commandName} due to failCommand failpoint`, {
              ...(data.errorLabels ? { errorLabels: data.errorLabels } : {}),
            })
          : undefined,
    };
  }
}
