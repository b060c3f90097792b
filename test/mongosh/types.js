// Values that keep their BSON type through insert → find (issue 23 item 4): Decimal128, Timestamp, BinData
// subtypes, dates, key order; and how int64 is answered (mongod: kept; the sandbox: a $type query asking for it
// is refused, since it stores whole numbers without their type).
const coll = db.getSiblingDB(process.env.DB_NAME).getCollection('typed');
const doc = {
  _id: 1,
  z: 'last-first',
  dec: NumberDecimal('9.990'),
  ts: Timestamp({ t: 1700000000, i: 7 }),
  uuid: UUID('0123456789abcdef0123456789abcdef'),
  md5: BinData(5, 'AAECAwQFBgcICQoLDA0ODw=='),
  raw: BinData(0, 'AQID'),
  when: ISODate('2026-12-05T00:00:00.123Z'),
  nested: { b: 1, a: [1, 'x', null] },
  frac: 2.5,
};
coll.insertOne(doc);
const back = coll.findOne({ _id: 1 });
const out = {
  same: EJSON.stringify(back, { relaxed: false }) === EJSON.stringify(doc, { relaxed: false }),
  keys: Object.keys(back),
  decimal: coll.countDocuments({ dec: { $type: 'decimal' } }),
  timestamp: coll.countDocuments({ ts: { $type: 'timestamp' } }),
  uuidSubtype: back.uuid.sub_type,
};
coll.insertOne({ _id: 2, long: NumberLong('5') });
try {
  out.long = coll.countDocuments({ long: { $type: 'long' } });
} catch (error) {
  out.long = { code: error.code };
}
print(JSON.stringify(out));
