// npm run bench:scale — the scan's and a dry run's memory against the orphan backlog: 1,000,000 children at 5% and at
// 50% orphans (each orphan pointing at its own missing parent), each measured in its own process.
import { type Collection, MongoClient, ObjectId } from 'mongodb';
import { startSandboxProcess } from '../src/sandbox/process.ts';
import { rate, report, runScanWorker, seconds, startScanWorker } from './support.ts';

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
  rssMb: number;
  scanned: number;
  documentsRead: number;
  ok: number;
  orphans: number;
  inGrace: number;
  deletable: number;
}

function inWorker(
  uri: string,
  collection: string,
  mode: 'scan' | 'plan' | 'resume',
  env: NodeJS.ProcessEnv = {},
): Promise<WorkerResult> {
  return runScanWorker([uri, 'bench', collection, mode, 'write'], env);
}

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

const sandbox = await startSandboxProcess();
const client = await new MongoClient(sandbox.uri).connect();
try {
  process.stdout.write(
    `scale benchmark: ${CHILDREN.toLocaleString('en-US')} children, ${PARENTS.toLocaleString('en-US')} parents, ${SHARES.map((s) => `${s * 100}%`).join(' and ')} orphans\n`,
  );
  const parentIds = Array.from({ length: PARENTS }, () => new ObjectId());
  const parents = client.db('bench_parents').collection('content');
  for (let i = 0; i < PARENTS; i += 10_000)
    await parents.insertMany(parentIds.slice(i, i + 10_000).map((_id) => ({ _id, deleted_at: null })));
  const rows: [string, string][] = [];
  const rss: Record<string, number[]> = { scan: [], plan: [] };
  for (const share of SHARES) {
    const name = `children_${share * 100}`;
    await insertChildren(client.db('bench').collection(name), share, parentIds);
    // The first scan stages every orphan's first sighting; the measured ones then read and mark them.
    await inWorker(sandbox.uri, name, 'scan');
    const scan = await inWorker(sandbox.uri, name, 'scan');
    const plan = await inWorker(sandbox.uri, name, 'plan');
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
    rss.scan.push(scan.rssMb);
    rss.plan.push(plan.rssMb);
    rows.push(
      [
        `${share * 100}% orphans: scan`,
        `${seconds(scan.scanMs)}  ${rate(scan.scanned, scan.scanMs)}  orphans ${scan.orphans.toLocaleString('en-US')}  peak RSS ${scan.rssMb.toFixed(0)} MB`,
      ],
      [
        `${share * 100}% orphans: dry run (scan + plan)`,
        `${seconds(plan.scanMs)}  peak RSS ${plan.rssMb.toFixed(0)} MB`,
      ],
    );
  }
  rows.push(
    ['peak RSS ratio 50% / 5%: scan', (rss.scan[1] / rss.scan[0]).toFixed(2)],
    ['peak RSS ratio 50% / 5%: dry run', (rss.plan[1] / rss.plan[0]).toFixed(2)],
  );
  report(rows);
} finally {
  await client.close();
  await sandbox.stop();
}
