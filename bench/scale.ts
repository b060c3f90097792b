// npm run bench:scale — the scan's and a dry run's time, memory and bookkeeping against the orphan backlog:
// 1,000,000 children at 5% and at 50% orphans (each orphan pointing at its own missing parent), each run in its own
// process, on a replica-set sandbox whose oplog shows what the tool writes to its own collections. Measured from
// empty (no first-seen state) and in steady state (after a first dry run, nothing changed since), as production
// runs every night.
import { BSON, type Collection, MongoClient, ObjectId, type Timestamp } from 'mongodb';
import { startSandboxProcess } from '../src/sandbox/process.ts';
import { cpuSeconds, rate, report, runScanWorker, seconds, startScanWorker } from './support.ts';

const CHILDREN = Number(process.env.BENCH_CHILDREN ?? 1_000_000);
const PARENTS = Number(process.env.BENCH_PARENTS ?? 100_000);
const SHARES = [0.05, 0.5];

async function insertChildren(coll: Collection, share: number, parentIds: ObjectId[]) {
  for (let done = 0; done < CHILDREN; done += 10_000) {
    const docs = Array.from({ length: Math.min(10_000, CHILDREN - done) }, (_, i) => {
      const parent = Math.random() < share ? new ObjectId() : parentIds[(done + i) % parentIds.length];
      return { _id: new ObjectId(), content_id: parent.toHexString(), embedding_type: 'title', n: done + i };
    });
    await coll.insertMany(docs, { ordered: false });
  }
}

interface WorkerResult {
  scanMs: number;
  /** The worker's CPU (user + system), and the sandbox's while the worker ran. */
  cpuMs: number;
  serverCpuMs?: number;
  rssMb: number;
  scanned: number;
  documentsRead: number;
  ok: number;
  orphans: number;
  inGrace: number;
  deletable: number;
}

async function inWorker(
  uri: string,
  collection: string,
  mode: 'scan' | 'plan' | 'resume',
  env: NodeJS.ProcessEnv = {},
): Promise<WorkerResult> {
  const serverBefore = cpuSeconds(sandbox.pid);
  const result = await runScanWorker<WorkerResult>([uri, 'bench', collection, mode, 'write'], env);
  return { ...result, serverCpuMs: (cpuSeconds(sandbox.pid) - serverBefore) * 1000 };
}

/** Where a run's time went: the tool's CPU and the server's (the sandbox's), which overlap on two cores. */
const cpuSplit = (r: WorkerResult) =>
  `CPU: tool ${seconds(r.cpuMs)}, server ${seconds(r.serverCpuMs ?? Number.NaN)}`;

const counts = (r: WorkerResult) =>
  JSON.stringify({
    scanned: r.scanned,
    ok: r.ok,
    orphans: r.orphans,
    inGrace: r.inGrace,
    deletable: r.deletable,
  });

/**
 * Starts a scan that records a checkpoint every second, kills it (SIGKILL) once a checkpoint passed half the
 * children, and resumes it: the resumed part's time and documents read, and whether its counts match.
 */
async function killAndResume(client: MongoClient, uri: string, collection: string) {
  const runs = client.db('bench').collection('orphan_cleanup_runs');
  await runs.deleteMany({});
  const { child, result } = startScanWorker<WorkerResult>([uri, 'bench', collection, 'scan', 'write'], {
    BENCH_CHECKPOINT_MS: '500',
  });
  result.catch(() => undefined);
  let checkpointed = 0;
  while (checkpointed < CHILDREN / 2 && child.exitCode === null) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const running = await runs.findOne({ relation: 'bench', outcome: 'running' });
    checkpointed = (running?.checkpoint as { scanned?: number } | undefined)?.scanned ?? 0;
  }
  child.kill('SIGKILL');
  await result.catch(() => undefined);
  const resumed = await inWorker(uri, collection, 'resume');
  return { killedAt: checkpointed, resumed };
}

// A replica set holding 2 million children, their history and an oplog needs more than Node's default heap.
const sandbox = await startSandboxProcess({
  replicaSet: 'bench',
  env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=12288` },
});
const client = await new MongoClient(sandbox.uri).connect();
const oplog = client.db('local').collection('oplog.rs');

/**
 * Counts the oplog entries (and their BSON bytes) written to the tool's own collections while `work` runs, read
 * once it has finished: polling the oplog during the run loaded the sandbox and slowed the run it measured (a
 * cold dry run at 50% took 173 s measured, 52 s alone). The sandbox keeps 2,000,000 entries here, so nothing a
 * run writes rolls off before it is counted (said if it did).
 */
async function countingWrites<T>(work: () => Promise<T>): Promise<{ result: T; writes: string }> {
  const [newest] = await oplog.find({}).sort({ $natural: -1 }).limit(1).toArray();
  const from = newest.ts as Timestamp;
  const result = await work();
  const [oldest] = await oplog.find({}).limit(1).toArray();
  const lost = oldest !== undefined && (oldest.ts as Timestamp).compare(from) > 0;
  let entries = 0;
  let bytes = 0;
  for await (const entry of oplog.find({ ts: { $gt: from } })) {
    if (!/^bench\.orphan_cleanup_/.test(String(entry.ns))) continue;
    entries++;
    bytes += BSON.calculateObjectSize(entry);
  }
  return {
    result,
    writes: `${entries.toLocaleString('en-US')} oplog entries, ${(bytes / 1024 / 1024).toFixed(2)} MB to the tool's collections${lost ? ' (SOME ENTRIES ROLLED OFF UNCOUNTED)' : ''}`,
  };
}

/**
 * The median of three runs, by time, with the median peak RSS of the three: one run's figures vary by a fifth
 * on this machine (another process's GC, the sandbox's), which is more than the ratios this benchmark checks.
 */
async function medianOf(run: () => Promise<WorkerResult>): Promise<WorkerResult> {
  const results: WorkerResult[] = [];
  for (let i = 0; i < 3; i++) results.push(await run());
  const middle = [...results].sort((a, b) => a.scanMs - b.scanMs)[1];
  const rssMb = results.map((r) => r.rssMb).sort((a, b) => a - b)[1];
  return { ...middle, rssMb };
}

/** Runs one measured worker and counts what it wrote to the tool's collections. */
async function measured(collection: string, mode: 'scan' | 'plan') {
  const { result, writes } = await countingWrites(() => inWorker(sandbox.uri, collection, mode));
  return { result, writes };
}

try {
  // Room for a second of writes between two reads of the oplog; snapshot history kept short (the sandbox keeps
  // every version for the window: 2 million documents rewritten would not fit otherwise).
  await client.db('admin').command({
    setParameter: 1,
    sandboxOplogEntries: 2_000_000,
    minSnapshotHistoryWindowInSeconds: 10,
  });
  process.stdout.write(
    `scale benchmark: ${CHILDREN.toLocaleString('en-US')} children, ${PARENTS.toLocaleString('en-US')} parents, ${SHARES.map((s) => `${s * 100}%`).join(' and ')} orphans\n`,
  );
  const parentIds = Array.from({ length: PARENTS }, () => new ObjectId());
  const parents = client.db('bench_parents').collection('content');
  for (let i = 0; i < PARENTS; i += 10_000)
    await parents.insertMany(parentIds.slice(i, i + 10_000).map((_id) => ({ _id, deleted_at: null })));
  const rows: [string, string][] = [];
  const rss: Record<string, number[]> = { scan: [], plan: [] };
  const times: Record<number, { scan: number; plan: number }> = {};
  const cpu: Record<number, { tool: number; server: number }> = {};
  for (const share of SHARES) {
    const name = `children_${share * 100}`;
    await insertChildren(client.db('bench').collection(name), share, parentIds);
    // From empty: the first dry run stages every orphan's first sighting. Then steady state: nothing changed.
    await client.db('bench').collection('orphan_cleanup_first_seen').deleteMany({});
    const cold = await measured(name, 'plan');
    const steadyPlan = await measured(name, 'plan');
    const steadyScan = await measured(name, 'scan');
    // Timed again without the oplog being read alongside (nothing changed: the same steady state).
    const scan = await medianOf(() => inWorker(sandbox.uri, name, 'scan'));
    const plan = await medianOf(() => inWorker(sandbox.uri, name, 'plan'));
    rows.push(
      [`${share * 100}% orphans: dry run from empty`, `${seconds(cold.result.scanMs)}  ${cold.writes}`],
      [`${share * 100}% orphans: steady dry run`, steadyPlan.writes],
      [`${share * 100}% orphans: steady scan`, steadyScan.writes],
    );
    times[share] = { scan: scan.scanMs, plan: plan.scanMs };
    cpu[share] = { tool: scan.cpuMs, server: scan.serverCpuMs ?? Number.NaN };
    if (share === SHARES[0]) {
      const parallel = await inWorker(sandbox.uri, name, 'scan', { BENCH_PARALLEL: '4' });
      rows.push([
        `${share * 100}% orphans: scan --parallel 4`,
        `${seconds(parallel.scanMs)}  counts ${counts(parallel) === counts(scan) ? 'equal to' : 'DIFFER from'} --parallel 1`,
      ]);
      const { killedAt, resumed } = await killAndResume(client, sandbox.uri, name);
      rows.push([
        `${share * 100}% orphans: killed at a checkpoint, resumed`,
        `killed after ${killedAt.toLocaleString('en-US')} checkpointed; resumed part ${seconds(resumed.scanMs)}, read ${resumed.documentsRead.toLocaleString('en-US')} documents (${((100 * resumed.documentsRead) / CHILDREN).toFixed(1)}%), counts ${counts(resumed) === counts(scan) ? 'equal to' : 'DIFFER from'} the uninterrupted scan`,
      ]);
    }
    // Each share measured on a server holding its own data only: the 5% collection, its history and its
    // first sightings left in the sandbox's heap made its collections slower for the 50% runs, which real
    // servers' storage engines are not.
    await client.db('bench').collection(name).drop();
    await client.db('bench').collection('orphan_cleanup_first_seen').deleteMany({});
    rss.scan.push(scan.rssMb);
    rss.plan.push(plan.rssMb);
    rows.push(
      [
        `${share * 100}% orphans: steady scan (median of 3)`,
        `${seconds(scan.scanMs)}  ${rate(scan.scanned, scan.scanMs)}  orphans ${scan.orphans.toLocaleString('en-US')}  peak RSS ${scan.rssMb.toFixed(0)} MB  ${cpuSplit(scan)}`,
      ],
      [
        `${share * 100}% orphans: steady dry run (scan + plan, median of 3)`,
        `${seconds(plan.scanMs)}  peak RSS ${plan.rssMb.toFixed(0)} MB  ${cpuSplit(plan)}`,
      ],
    );
  }
  rows.push(
    ['peak RSS ratio 50% / 5%: scan', (rss.scan[1] / rss.scan[0]).toFixed(2)],
    ['peak RSS ratio 50% / 5%: dry run', (rss.plan[1] / rss.plan[0]).toFixed(2)],
    ['time at 50%: dry run / scan', (times[0.5].plan / times[0.5].scan).toFixed(2)],
    ['scan time 50% / 5%', (times[0.5].scan / times[0.05].scan).toFixed(2)],
    [
      'scan CPU 50% / 5%: tool, server',
      `${(cpu[0.5].tool / cpu[0.05].tool).toFixed(2)}, ${(cpu[0.5].server / cpu[0.05].server).toFixed(2)}`,
    ],
  );
  report(rows);
} finally {
  await client.close();
  await sandbox.stop();
}
