import { BSON, type Document, type MongoClient, type Timestamp } from 'mongodb';

/**
 * What a replica set's oplog shows of the tool's writes: the time of its last entry, and the entries written to
 * one namespace after a time (with their BSON bytes) — what a production cluster's oplog would carry.
 */
export async function lastOplogTime(client: MongoClient): Promise<Timestamp> {
  const [last] = await client
    .db('local')
    .collection('oplog.rs')
    .find({})
    .sort({ $natural: -1 })
    .limit(1)
    .toArray();
  return last.ts as Timestamp;
}

export async function oplogWrites(
  client: MongoClient,
  ns: string,
  since: Timestamp,
): Promise<{ entries: Document[]; bytes: number }> {
  const entries = await client
    .db('local')
    .collection('oplog.rs')
    .find({ ns, ts: { $gt: since } })
    .toArray();
  return { entries, bytes: entries.reduce((sum, e) => sum + BSON.calculateObjectSize(e), 0) };
}
