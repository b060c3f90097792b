// Timestamps compare by seconds, then increment (issue 23 item 2): $gt and sort see the increment.
const coll = db.getSiblingDB(process.env.DB_NAME).getCollection('times');
coll.insertMany([
  { n: 'b', ts: Timestamp({ t: 100, i: 2 }) },
  { n: 'c', ts: Timestamp({ t: 101, i: 0 }) },
  { n: 'a', ts: Timestamp({ t: 100, i: 1 }) },
]);
print(
  JSON.stringify({
    after: coll
      .find({ ts: { $gt: Timestamp({ t: 100, i: 1 }) } })
      .sort({ ts: 1 })
      .toArray()
      .map((d) => d.n),
    sorted: coll
      .find()
      .sort({ ts: -1 })
      .toArray()
      .map((d) => d.n),
  }),
);
