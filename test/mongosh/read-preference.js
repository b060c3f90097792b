// Every command takes $readPreference (drivers add it on direct connections) and stores none of it (item 5).
const target = db.getSiblingDB(process.env.DB_NAME);
const rp = { $readPreference: { mode: 'primaryPreferred' } };
const results = {};
const run = (label, command) => {
  try {
    results[label] = target.runCommand({ ...command, ...rp }).ok;
  } catch (error) {
    results[label] = `${error.code} ${error.message}`;
  }
};
run('create', { create: 'prefs' });
run('insert', { insert: 'prefs', documents: [{ a: 1 }] });
run('find', { find: 'prefs', filter: {} });
run('count', { count: 'prefs' });
run('distinct', { distinct: 'prefs', key: 'a' });
run('aggregate', { aggregate: 'prefs', pipeline: [], cursor: {} });
run('update', { update: 'prefs', updates: [{ q: {}, u: { $set: { b: 1 } } }] });
run('createIndexes', { createIndexes: 'prefs', indexes: [{ key: { a: 1 }, name: 'a_1' }] });
run('listIndexes', { listIndexes: 'prefs' });
run('listCollections', { listCollections: 1 });
run('collMod', { collMod: 'prefs', changeStreamPreAndPostImages: { enabled: true } });
run('dbStats', { dbStats: 1 });
run('delete', { delete: 'prefs', deletes: [{ q: { a: 2 }, limit: 1 }] });
results.options = target.getCollectionInfos({ name: 'prefs' })[0].options;
run('drop', { drop: 'prefs' });
print(JSON.stringify(results));
