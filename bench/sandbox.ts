// npm run bench:sandbox — seeds 1,000,000 documents into a sandbox through the driver and measures it.
import { MongoClient, ObjectId } from 'mongodb';
import { startSandboxProcess } from '../src/sandbox/process.ts';
import { peakRssMb, rate, report, seconds } from './support.ts';

const TOTAL = Number(process.env.BENCH_DOCS ?? 1_000_000);
const INSERT_BATCH = 10_000;
const LOOKUPS = 1000;
const IDS_PER_LOOKUP = 1000;

const sandbox = await startSandboxProcess();
const client = await new MongoClient(sandbox.uri).connect();
const coll = client.db('bench').collection('children');
const ids: ObjectId[] = [];
try {
  process.stdout.write(
    `sandbox benchmark: ${TOTAL.toLocaleString('en-US')} documents {_id, content_id, n}\n`,
  );
  let started = performance.now();
  for (let n = 0; n < TOTAL; n += INSERT_BATCH) {
    const docs = [];
    for (let i = n; i < Math.min(TOTAL, n + INSERT_BATCH); i++) {
      const _id = new ObjectId();
      ids.push(_id);
      docs.push({ _id, content_id: new ObjectId().toHexString(), n: i });
    }
    await coll.insertMany(docs, { ordered: false });
  }
  const seedMs = performance.now() - started;

  started = performance.now();
  let drained = 0;
  for await (const _ of coll.find({}, { projection: { content_id: 1 } }).batchSize(10_000)) drained++;
  const drainMs = performance.now() - started;

  started = performance.now();
  let found = 0;
  for (let call = 0; call < LOOKUPS; call++) {
    const wanted = Array.from({ length: IDS_PER_LOOKUP }, () => ids[Math.floor(Math.random() * ids.length)]);
    found += (await coll.find({ _id: { $in: wanted } }, { projection: { _id: 1 } }).toArray()).length;
  }
  const lookupMs = performance.now() - started;

  report([
    ['seeding (insertMany, 10k per call)', `${rate(TOTAL, seedMs)}  (${seconds(seedMs)})`],
    [
      'driver drain, projection content_id',
      `${rate(drained, drainMs)}  (${seconds(drainMs)}, ${drained.toLocaleString('en-US')} docs)`,
    ],
    [
      `${LOOKUPS} x find({_id: {$in: ${IDS_PER_LOOKUP} ids}})`,
      `${seconds(lookupMs)} total, ${(lookupMs / LOOKUPS).toFixed(2)} ms per call (${found.toLocaleString('en-US')} found)`,
    ],
    ['sandbox peak RSS', `${peakRssMb(sandbox.pid).toFixed(0)} MB`],
  ]);
} finally {
  await client.close();
  await sandbox.stop();
}
