// Two sessions, as mongod isolates them (issue 23 item 1): snapshot reads inside a transaction, first writer wins
// with WriteConflict (112, TransientTransactionError), and the loser's abort never erases the winner's commit.
const name = process.env.DB_NAME;
const coll = db.getSiblingDB(name).getCollection('accounts');
coll.insertOne({ _id: 1, balance: 100 }, { writeConcern: { w: 'majority' } });

const a = db.getMongo().startSession();
const b = db.getMongo().startSession();
const aColl = a.getDatabase(name).getCollection('accounts');
const bColl = b.getDatabase(name).getCollection('accounts');
const out = {};

a.startTransaction({ readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' } });
out.aSawFirst = aColl.findOne({ _id: 1 }).balance;
coll.updateOne({ _id: 1 }, { $inc: { balance: 5 } }, { writeConcern: { w: 'majority' } });
out.aSawAfterOutsideWrite = aColl.findOne({ _id: 1 }).balance;
a.abortTransaction();

a.startTransaction();
b.startTransaction();
aColl.updateOne({ _id: 1 }, { $set: { by: 'a' } });
try {
  bColl.updateOne({ _id: 1 }, { $set: { by: 'b' } });
  out.conflict = 'none';
} catch (error) {
  out.conflict = { code: error.code, labels: error.errorLabels ?? [] };
}
a.commitTransaction();
try {
  b.abortTransaction();
} catch (error) {
  out.abortError = error.code;
}
out.final = coll.findOne({ _id: 1 });
print(JSON.stringify(out));
