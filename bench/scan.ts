// npm run bench — the engine's scan against the alternatives, on 1,000,000 children and 100,000 parents (5% orphans).
import { type Collection, MongoClient, ObjectId } from 'mongodb';
import { startSandboxProcess } from '../src/sandbox/process.ts';
import { cpuSeconds, rate, report, runScanWorker, seconds } from './support.ts';

const CHILDREN = Number(process.env.BENCH_CHILDREN ?? 1_000_000);
const SMALL = Math.round(CHILDREN / 10);
const PARENTS = Number(process.env.BENCH_PARENTS ?? 100_000);
const ORPHAN_SHARE = 0.05;
const SUBSET = 10_000;

function childDocs(count: number, parentIds: ObjectId[]) {
  const docs = [];
  for (let i = 0; i < count; i++) {
    const orphan = Math.random() < ORPHAN_SHARE;
    const parent = orphan ? new ObjectId() : parentIds[Math.floor(Math.random() * parentIds.length)];
    docs.push({
      _id: new ObjectId(),
      content_id: Math.random() < 0.9 ? parent.toHexString() : parent,
      embedding_type: 'title',
      n: i,
    });
  }
  return docs;
}

async function insertChildren(coll: Collection, count: number, parentIds: ObjectId[]) {
  for (let done = 0; done < count; done += 10_000)
    await coll.insertMany(childDocs(Math.min(10_000, count - done), parentIds), { ordered: false });
}

function scanInWorker(uri: string, collection: string) {
  return runScanWorker<any>([uri, 'bench', collection]);
}

const sandbox = await startSandboxProcess();
const client = await new MongoClient(sandbox.uri).connect();
try {
  process.stdout.write(
    `scan benchmark: ${CHILDREN.toLocaleString('en-US')} children, ${PARENTS.toLocaleString('en-US')} parents, ${ORPHAN_SHARE * 100}% orphans\n`,
  );
  const parents = client.db('bench_parents').collection('content');
  const parentIds = Array.from({ length: PARENTS }, () => new ObjectId());
  for (let i = 0; i < PARENTS; i += 10_000)
    await parents.insertMany(
      parentIds.slice(i, i + 10_000).map((_id) => ({ _id, title: 't', deleted_at: null })),
    );
  const big = client.db('bench').collection('children');
  const small = client.db('bench').collection('children_small');
  await insertChildren(big, CHILDREN, parentIds);
  await insertChildren(small, SMALL, parentIds);

  const smallScan = await scanInWorker(sandbox.uri, 'children_small');
  let sandboxCpu = cpuSeconds(sandbox.pid);
  const bigScan = await scanInWorker(sandbox.uri, 'children');
  const scanSandboxCpu = cpuSeconds(sandbox.pid) - sandboxCpu;

  sandboxCpu = cpuSeconds(sandbox.pid);
  let started = performance.now();
  let drained = 0;
  for await (const _ of big.find({}, { projection: { content_id: 1 }, batchSize: 5000 })) drained++;
  const drainMs = performance.now() - started;
  const drainSandboxCpu = cpuSeconds(sandbox.pid) - sandboxCpu;

  // A round trip per child: measured on a subset, scaled.
  started = performance.now();
  let roundTripsPerDoc = 0;
  for await (const child of big.find({}, { projection: { content_id: 1 } }).limit(SUBSET)) {
    const ref = child.content_id;
    const id = typeof ref === 'string' ? new ObjectId(ref) : ref;
    await parents.findOne({ _id: id }, { projection: { _id: 1 } });
    roundTripsPerDoc++;
  }
  const perDocMs = ((performance.now() - started) / SUBSET) * CHILDREN;

  // distinct of every reference, then $in batches over the parents.
  started = performance.now();
  let distinctNote = '';
  let distinctTrips = 1;
  let distinctKeys = Number.NaN;
  try {
    const keys = await big.distinct('content_id');
    const hex = [...new Set(keys.map((k) => String(k)))];
    distinctKeys = hex.length;
    for (let i = 0; i < hex.length; i += 1000) {
      const batch = hex.slice(i, i + 1000);
      await parents
        .find({ _id: { $in: batch.flatMap((h): unknown[] => [new ObjectId(h), h]) } } as never, {
          projection: { _id: 1 },
        })
        .toArray();
      distinctTrips++;
    }
    distinctNote = `${seconds(performance.now() - started)} (${distinctTrips} round trips; holds every distinct key in memory, and fails past 16 MB of keys)`;
  } catch (error) {
    distinctNote = `failed: ${(error as Error).message}`;
  }

  const expectedTrips = CHILDREN / 5000 + distinctKeys / 1000;
  report([
    [
      'engine scan (1M children)',
      `${seconds(bigScan.scanMs)}  ${rate(bigScan.scanned, bigScan.scanMs)}  orphans ${bigScan.orphans.toLocaleString('en-US')}`,
    ],
    ['  CPU: the tool / the sandbox', `${seconds(bigScan.cpuMs)} / ${scanSandboxCpu.toFixed(2)} s`],
    ['plain driver drain, same projection', `${seconds(drainMs)}  ${rate(drained, drainMs)}`],
    ['  sandbox CPU during the drain', `${drainSandboxCpu.toFixed(2)} s`],
    ['ratio scan / drain', (bigScan.scanMs / drainMs).toFixed(2)],
    [
      `findOne per child (${SUBSET.toLocaleString('en-US')} measured, scaled)`,
      `${seconds(perDocMs)}  (${CHILDREN.toLocaleString('en-US')} round trips)`,
    ],
    ['distinct + $in batches', distinctNote],
    [
      'engine round trips',
      `${bigScan.roundTrips.childBatches} child batches + ${bigScan.roundTrips.parentProbes} parent probes + ${bigScan.roundTrips.sizeQueries} storage queries = ${bigScan.roundTrips.childBatches + bigScan.roundTrips.parentProbes + bigScan.roundTrips.sizeQueries} (limit: children/5000 + ${distinctKeys.toLocaleString('en-US')} keys/1000 + 20 = ${Math.round(expectedTrips + 20)})`,
    ],
    ['probe p95 latency', `${bigScan.p95.toFixed(1)} ms`],
    ['tool peak RSS, 100k children', `${smallScan.rssMb.toFixed(0)} MB`],
    [
      'tool peak RSS, 1M children',
      `${bigScan.rssMb.toFixed(0)} MB  (ratio ${(bigScan.rssMb / smallScan.rssMb).toFixed(2)})`,
    ],
  ]);
  void roundTripsPerDoc;
} finally {
  await client.close();
  await sandbox.stop();
}
