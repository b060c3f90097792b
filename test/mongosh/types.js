// Values that keep their BSON type through insert → find (issue 23 item 4): int64, whole and fractional doubles,
// int32, Decimal128, Timestamp, BinData subtypes, dates, key order — compared in canonical extended JSON, which
// names every number's type — and $type queries that tell int, long and double apart.
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
  long: NumberLong('5'),
  whole: Double(5),
  int: NumberInt(5),
};
coll.insertOne(doc);
const back = coll.findOne({ _id: 1 });
// mongosh reads a whole double back as a plain number (its driver promotes doubles), so that field's type is
// checked by $type on the server below, and the rest compared in canonical extended JSON.
const canonical = ({ whole, ...rest }) => EJSON.stringify(rest, { relaxed: false });
const out = {
  same: canonical(back) === canonical(doc),
  keys: Object.keys(back),
  decimal: coll.countDocuments({ dec: { $type: 'decimal' } }),
  timestamp: coll.countDocuments({ ts: { $type: 'timestamp' } }),
  uuidSubtype: back.uuid.sub_type,
  long: coll.countDocuments({ long: { $type: 'long' } }),
  whole: coll.countDocuments({ whole: { $type: 'double' } }),
  int: coll.countDocuments({ int: { $type: 'int' } }),
  notLong: coll.countDocuments({ whole: { $type: 'long' } }),
};
print(JSON.stringify(out));
