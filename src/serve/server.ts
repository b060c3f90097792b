import { createServer } from 'node:http';
// Over 300 lines: the HTTP face's routes, auth and job bookkeeping, which read best together.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Registry } from 'prom-client';
import type { CleanupOptions, CleanupResult } from '../cleanup/execute.ts';
import { runCleanupPipeline } from '../cleanup/pipeline.ts';
import type { ResolvedConfig } from '../config/load.ts';
import { relationCounts, runScan, type ScanReport } from '../engine/run-scan.ts';
import { LiveCountKeeper, liveGrowthPerDay, watcherFor, withLiveCounts } from '../engine/watch.ts';
import { cleanupRegistry, liveRegistry, scanRegistry, sourceRegistry } from '../metrics/prometheus.ts';
import { isAnswering } from '../mongo/liveness.ts';
import { redact } from '../mongo/redact.ts';
import type { SourcePool } from '../mongo/sources.ts';
import type { WriteAccess } from '../store/access.ts';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface Job {
  id: string;
  kind: 'scan' | 'cleanup';
  status: JobStatus;
  execute: boolean;
  relations: string[];
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  counts?: Record<string, Record<string, number>>;
  backupPath?: string;
  runId?: string;
  error?: string;
}

export interface ServeOptions {
  config: ResolvedConfig;
  pool: SourcePool;
  access: WriteAccess;
  /** Bearer token; undefined only with noAuth on loopback (checked by the command). */
  token?: string;
  /** Leave /healthz and /metrics without auth (for probes and Prometheus). */
  openHealth: boolean;
  backupRoot?: string;
  batchSize: number;
  /** How fast the cleanups it runs may delete (`--sleep-ms`, `--max-rate`, `--max-lag-seconds`). */
  throttle?: Pick<CleanupOptions, 'sleepMs' | 'maxRate' | 'maxLagSeconds'>;
  logLevel?: string;
  /** Where the request log goes (stdout unless given). */
  logStream?: NodeJS.WritableStream;
  /** How many jobs `GET /api/v1/runs` remembers (finished ones are forgotten first). */
  maxJobsKept?: number;
  /** `--watch`: keep the metrics current between scans with live counts (change streams). */
  watch?: boolean;
}

const MAX_JOBS_KEPT = 200;
/**
 * Query parameters that look like a credential, by name (anything about tokens, secrets, passwords, keys,
 * auth, sessions, signatures) or by value (a bearer token, a URI with a password): refused, so a secret never
 * travels in a URL.
 */
const CREDENTIAL_NAME =
  /token|secret|passw|pwd|pass$|api[-_]?key|^key$|[-_]key$|auth|bearer|credential|session|^sig$|signature|jwt|cookie/i;
const CREDENTIAL_VALUE = /^bearer\s|^basic\s|:\/\/[^/?#@\s]*:[^/?#@\s]*@/i;

export function credentialInQuery(query: URLSearchParams): boolean {
  return [...query].some(([name, value]) => CREDENTIAL_NAME.test(name) || CREDENTIAL_VALUE.test(value));
}

/**
 * A request's headers and body must arrive within this long, authenticated or not (a client that trickles
 * them in holds a connection): Node's `requestTimeout`, checked every second. Settable with
 * ORPHAN_CLEANUP_SERVE_REQUEST_TIMEOUT_SECONDS.
 */
export function requestTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const seconds = Number(env.ORPHAN_CLEANUP_SERVE_REQUEST_TIMEOUT_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 30_000;
}
const HEALTH_TIMEOUT_MS = 2000;

const jobBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    relations: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 50 },
    execute: { type: 'boolean' },
    maxDeletes: { type: 'integer', minimum: 0 },
  },
} as const;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Compares tokens in constant time (over their digests, so lengths leak nothing either). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(expected));
}

export interface ServeHandle {
  app: FastifyInstance;
  jobs: Map<string, Job>;
  /** Stops accepting, lets running jobs stop after their current batch (their backups close), then resolves. */
  shutdown(): Promise<void>;
}

/** The HTTP face of the engine: the same scan, plan, locks and backups as `scan` and `clean`. */
export function buildServer(options: ServeOptions): ServeHandle {
  const { config, pool, access } = options;
  const timeoutMs = requestTimeoutMs();
  const app = Fastify({
    serverFactory: (handler) =>
      createServer(
        { requestTimeout: timeoutMs, headersTimeout: timeoutMs, connectionsCheckingInterval: 1000 },
        handler,
      ),
    bodyLimit: 16 * 1024,
    // Strict JSON: no coercion of "x" into ["x"] or "5" into 5, and an unknown field (a typo such as
    // "exceute") is a 400, never silently dropped into a dry run.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    logger: {
      level: options.logLevel ?? 'info',
      ...(options.logStream ? { stream: options.logStream } : {}),
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '****' },
      // URLs are logged without their query string: a secret put there by mistake never reaches a log.
      serializers: {
        req: (request: { method: string; url: string; ip?: string }) => ({
          method: request.method,
          url: request.url.split('?')[0],
          remoteAddress: request.ip,
        }),
      },
    },
  });
  const jobs = new Map<string, Job>();
  const running = new Map<string, Promise<void>>();
  const aborts = new Set<AbortController>();
  let lastScan: ScanReport | undefined;
  let lastCleanup: CleanupResult | undefined;
  /** Relations whose live growth crossed growthAlertPerDay since their last scan (alerted once each). */
  const growthAlerted = new Set<string>();
  const live = options.watch
    ? new LiveCountKeeper(watcherFor(config, pool, access), {
        onNotice: (message, relation) => app.log.warn({ relation }, message),
        onCounts: (counts) => {
          const growth = liveGrowthPerDay(lastScan, counts);
          if (growth === undefined || growth <= config.growthAlertPerDay) return;
          if (growthAlerted.has(counts.relation)) return;
          growthAlerted.add(counts.relation);
          app.log.warn(
            { relation: counts.relation, growthPerDay: growth, threshold: config.growthAlertPerDay },
            `orphan growth alert: ${counts.relation} grew ${growth}/day since its last scan, above growthAlertPerDay ${config.growthAlertPerDay}`,
          );
        },
      })
    : undefined;
  for (const relation of live ? config.relations : []) live?.watch(relation.name);
  /** A new scan: the drift check, and growth counted again from it. */
  const scanned = (report: ScanReport) => {
    lastScan = report;
    for (const r of report.relations) if (r.complete) growthAlerted.delete(r.name);
    for (const line of live?.checkDrift(report.relations) ?? []) app.log.warn(line);
  };

  /** Keeps at most MAX_JOBS_KEPT jobs by forgetting finished ones, oldest first: a queued or running job stays. */
  const remember = (job: Job) => {
    jobs.set(job.id, job);
    for (const [id, old] of jobs) {
      if (jobs.size <= (options.maxJobsKept ?? MAX_JOBS_KEPT)) break;
      if (old.status === 'succeeded' || old.status === 'failed') jobs.delete(id);
    }
  };

  app.setErrorHandler(
    (error: { statusCode?: number; validation?: unknown; message: string }, request, reply) => {
      const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
      if (status >= 500) request.log.error({ err: redact(error.message) }, 'request failed');
      const message = error.validation
        ? `invalid request body: ${error.message}`
        : status >= 500
          ? 'internal error'
          : redact(error.message);
      void reply.status(status).send({ error: message });
    },
  );

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const query = request.url.includes('?') ? new URLSearchParams(request.url.split('?')[1]) : undefined;
    if (query && credentialInQuery(query))
      return reply
        .status(400)
        .send({ error: 'send the token in the Authorization header (Bearer), never in the URL' });
    if (!options.token) return;
    const path = request.url.split('?')[0];
    if (options.openHealth && (path === '/healthz' || path === '/metrics')) return;
    const header = request.headers.authorization;
    const given = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (!tokenMatches(given, options.token)) await reply.status(401).send({ error: 'unauthorized' });
  });

  const selectRelations = (names: string[] | undefined): ResolvedConfig => {
    if (!names?.length) return config;
    const unknown = names.filter((name) => !config.relations.some((r) => r.name === name));
    if (unknown.length)
      throw Object.assign(new Error(`unknown relation ${unknown.join(', ')}`), { statusCode: 400 });
    return { ...config, relations: config.relations.filter((r) => names.includes(r.name)) };
  };

  const countsOf = (report: ScanReport) =>
    Object.fromEntries(report.relations.map((r) => [r.name, relationCounts(r)]));

  const start = (job: Job, work: (signal: AbortSignal) => Promise<void>) => {
    remember(job);
    const controller = new AbortController();
    aborts.add(controller);
    const task = (async () => {
      job.status = 'running';
      job.startedAt = new Date();
      try {
        await work(controller.signal);
        job.status = job.error ? 'failed' : 'succeeded';
      } catch (error) {
        job.status = 'failed';
        job.error = redact((error as Error).message);
      } finally {
        job.finishedAt = new Date();
        aborts.delete(controller);
        running.delete(job.id);
        app.log.info({ job: job.id, kind: job.kind, status: job.status, error: job.error }, 'job finished');
      }
    })();
    running.set(job.id, task);
  };

  const newJob = (kind: Job['kind'], scoped: ResolvedConfig, execute: boolean): Job => ({
    id: `${kind}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
    kind,
    status: 'queued',
    execute,
    relations: scoped.relations.map((r) => r.name),
    createdAt: new Date(),
  });

  app.post('/api/v1/scan', { schema: { body: jobBody } }, async (request, reply) => {
    const body = (request.body ?? {}) as { relations?: string[] };
    const scoped = selectRelations(body.relations);
    const job = newJob('scan', scoped, false);
    start(job, async (signal) => {
      const report = await runScan({ config: scoped, pool, access, signal });
      scanned(report);
      job.counts = countsOf(report);
      const failed = report.relations.find((r) => r.error);
      if (failed) job.error = `scan of ${failed.name} failed: ${failed.error}`;
    });
    return reply.status(202).send({ id: job.id, status: job.status });
  });

  app.post('/api/v1/cleanup', { schema: { body: jobBody } }, async (request, reply) => {
    const body = (request.body ?? {}) as { relations?: string[]; execute?: boolean; maxDeletes?: number };
    const scoped = selectRelations(body.relations);
    const execute = body.execute === true;
    if (execute) {
      const overlapping = [...jobs.values()].find(
        (job) =>
          job.kind === 'cleanup' &&
          job.execute &&
          (job.status === 'queued' || job.status === 'running') &&
          job.relations.some((r) => scoped.relations.some((s) => s.name === r)),
      );
      if (overlapping)
        return reply
          .status(409)
          .send({ error: 'a cleanup of these relations is already running', runningId: overlapping.id });
    }
    const job = newJob('cleanup', scoped, execute);
    start(job, async (signal) => {
      // The API call is the confirmation; unsafe relations are refused (no override over HTTP).
      const outcome = await runCleanupPipeline({
        config: scoped,
        pool,
        access,
        signal,
        execute,
        maxDeletes: body.maxDeletes,
        deleteBatchSize: options.batchSize,
        backupRoot: options.backupRoot,
        execution: options.throttle,
        onNotice: (message) => app.log.warn({ job: job.id }, message),
        onPlan: (plan, report) => {
          scanned(report);
          job.counts = Object.fromEntries(
            plan.relations.map((r) => [
              r.name,
              { deletable: r.deletable, toDelete: r.toDelete, deferred: r.deferred },
            ]),
          );
        },
      });
      if (outcome.kind !== 'executed') return;
      const { result } = outcome;
      lastCleanup = result;
      job.runId = result.runId;
      job.backupPath = result.runDir;
      job.counts ??= {};
      const counts = job.counts;
      for (const relation of result.relations)
        counts[relation.name] = {
          ...counts[relation.name],
          backedUp: relation.backedUp,
          deleted: relation.deleted,
          mismatch: relation.mismatch,
          ...relation.skipped,
        };
      if (result.status !== 'completed') job.error = result.error ?? `cleanup ${result.status}`;
    });
    return reply.status(202).send({ id: job.id, status: job.status });
  });

  app.get('/api/v1/runs', async () => ({ runs: [...jobs.values()].reverse() }));

  app.get('/api/v1/runs/:id', async (request, reply) => {
    const job = jobs.get((request.params as { id: string }).id);
    if (!job) return reply.status(404).send({ error: 'no such run' });
    return job;
  });

  app.get('/metrics', async (_request, reply) => {
    const registry = new Registry();
    // With --watch, the scan's figures as live counts have moved them since (growth counted from the scan).
    if (lastScan) scanRegistry(live ? withLiveCounts(lastScan, live.latest) : lastScan, registry);
    const liveness = sourceLiveness();
    sourceRegistry(liveness, registry);
    if (live)
      liveRegistry(
        live.latest,
        config.relations.map((r) => r.name),
        registry,
        staleRelations(liveness),
      );
    if (lastCleanup) cleanupRegistry(lastCleanup, registry);
    return reply.header('content-type', registry.contentType).send(await registry.metrics());
  });

  /** Each source's heartbeats, as the console shows them (the same signal ends a silent source's operations). */
  const sourceLiveness = () =>
    Object.fromEntries(
      Object.keys(config.sources).map((name) => {
        const state = pool.liveness(name);
        return [
          name,
          {
            answering: isAnswering(state),
            ...(state ? { quietSeconds: Math.round((Date.now() - state.lastAnswerAt) / 1000) } : {}),
          },
        ];
      }),
    );
  /** Relations with a source not answering: their live counts are not live. */
  const staleRelations = (liveness: Record<string, { answering: boolean }>) =>
    new Set(
      config.relations
        .filter((r) => !liveness[r.child.source]?.answering || !liveness[r.parent.source]?.answering)
        .map((r) => r.name),
    );

  app.get('/healthz', async (_request, reply) => {
    const checks = await Promise.all(
      Object.keys(config.sources).map(async (name) => {
        const ping = (async () => {
          const client = await pool.client(name);
          await client.db('admin').command({ ping: 1 }, { timeoutMS: HEALTH_TIMEOUT_MS });
          return 'ok';
        })();
        const timeout = new Promise<string>((resolve) =>
          setTimeout(() => resolve('timeout'), HEALTH_TIMEOUT_MS).unref(),
        );
        const result = await Promise.race([ping.catch(() => 'unreachable'), timeout]);
        return [name, result] as const;
      }),
    );
    const healthy = checks.every(([, result]) => result === 'ok');
    const liveness = sourceLiveness();
    const stale = staleRelations(liveness);
    return reply.status(healthy ? 200 : 503).send({
      status: healthy ? 'ok' : 'unhealthy',
      sources: Object.fromEntries(checks),
      liveness,
      ...(live
        ? {
            live: Object.fromEntries(
              config.relations.map((r) => [
                r.name,
                stale.has(r.name) ? 'stale' : live.latest.has(r.name) ? 'live' : 'scan figures',
              ]),
            ),
          }
        : {}),
    });
  });

  return {
    app,
    jobs,
    async shutdown() {
      live?.stop();
      await app.close();
      for (const controller of aborts) controller.abort();
      await Promise.allSettled([...running.values()]);
    },
  };
}
