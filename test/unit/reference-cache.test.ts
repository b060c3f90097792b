import { BSON, ObjectId } from 'bson';
import { describe, expect, it } from 'vitest';
import { ACTIVE_PARENT, MISSING_PARENT } from '../../src/engine/probe.ts';
import { RawFieldReader } from '../../src/engine/raw-bson.ts';
import { ObjectIdTable, ReferenceCache } from '../../src/engine/reference-cache.ts';
import { canonicalKey, type KeyMatch } from '../../src/mongo/keys.ts';

/** Looks up `value` as the scan does: from the raw bytes of a child document. */
function lookup(cache: ReferenceCache, value: unknown) {
  const raw = BSON.serialize({ _id: 1, ref: value });
  const reader = new RawFieldReader('ref');
  expect(reader.locate(raw)).toBe(true);
  const found = cache.lookup(raw, reader.type, reader.valueAt);
  return { found, key: found === 'invalid' ? undefined : cache.key() };
}

describe('ObjectIdTable', () => {
  it('finds every key it was given, and only those, across growth', () => {
    const table = new ObjectIdTable<number>();
    const ids = Array.from({ length: 20_000 }, () => new ObjectId());
    for (const [i, id] of ids.entries()) table.set(id.id, 0, i);
    expect(table.size).toBe(20_000);
    expect(ids.map((id) => table.get(id.id, 0))).toEqual(ids.map((_, i) => i));
    expect(table.get(new ObjectId().id, 0)).toBeUndefined();
    table.set(ids[7].id, 0, -1);
    expect(table.get(ids[7].id, 0)).toBe(-1);
    expect(table.size).toBe(20_000);
  });

  it('reads keys in place at any offset of a larger buffer', () => {
    const table = new ObjectIdTable<string>();
    const id = new ObjectId();
    const buf = new Uint8Array(40);
    buf.set(id.id, 17);
    table.set(id.id, 0, 'x');
    expect(table.get(buf, 17)).toBe('x');
    expect(table.get(buf, 16)).toBeUndefined();
  });
});

describe('ReferenceCache', () => {
  const id = new ObjectId('507f1f77bcf86cd799439011');
  const hex = id.toHexString();

  it('under objectid-or-hex, an ObjectId and its hex string in either case are one key', () => {
    const cache = new ReferenceCache('objectid-or-hex', new Set(), 1000);
    expect(lookup(cache, id)).toEqual({ found: 'unknown', key: hex });
    cache.set(hex, MISSING_PARENT);
    for (const value of [id, hex, hex.toUpperCase()])
      expect(lookup(cache, value)).toEqual({ found: MISSING_PARENT, key: hex });
    for (const invalid of [
      null,
      '',
      'xyz',
      `${hex}0`,
      hex.slice(1),
      `${hex.slice(0, 23)}g`,
      12345,
      { id },
      [hex],
    ])
      expect(lookup(cache, invalid).found).toBe('invalid');
  });

  it('under exact, an ObjectId and its hex string stay apart, and other types use their canonical key', () => {
    const cache = new ReferenceCache('exact', new Set(), 1000);
    expect(lookup(cache, id)).toEqual({ found: 'unknown', key: canonicalKey(id, 'exact') });
    cache.set(canonicalKey(id, 'exact')!, ACTIVE_PARENT);
    cache.set(canonicalKey(7, 'exact')!, MISSING_PARENT);
    expect(lookup(cache, id).found).toBe(ACTIVE_PARENT);
    expect(lookup(cache, hex)).toEqual({ found: 'unknown', key: canonicalKey(hex, 'exact') });
    expect(lookup(cache, 7.0).found).toBe(MISSING_PARENT);
    expect(lookup(cache, '7').found).toBe('unknown');
    for (const invalid of [null, '', true]) expect(lookup(cache, invalid).found).toBe('invalid');
  });

  it('answers excepted for allow-listed references of either kind', () => {
    for (const keyMatch of ['objectid-or-hex', 'exact'] as KeyMatch[]) {
      const excepted = new Set([canonicalKey(id, keyMatch)!, canonicalKey('p-1', 'exact')!]);
      const cache = new ReferenceCache(keyMatch, excepted, 1000);
      expect(lookup(cache, id).found).toBe('excepted');
      expect(lookup(cache, new ObjectId()).found).toBe('unknown');
      if (keyMatch === 'exact') expect(lookup(cache, 'p-1').found).toBe('excepted');
      else expect(lookup(cache, hex.toUpperCase()).found).toBe('excepted');
    }
  });

  it('stays bounded: old keys are forgotten unless still in use', () => {
    const cache = new ReferenceCache('objectid-or-hex', new Set(), 4);
    const ids = Array.from({ length: 6 }, () => new ObjectId());
    for (const each of ids.slice(0, 2)) cache.set(each.toHexString(), ACTIVE_PARENT);
    for (const each of ids.slice(2, 4)) cache.set(each.toHexString(), ACTIVE_PARENT);
    // ids[0] is still in use: looked up, it is promoted into the young generation.
    expect(lookup(cache, ids[0]).found).toBe(ACTIVE_PARENT);
    for (const each of ids.slice(4, 6)) cache.set(each.toHexString(), ACTIVE_PARENT);
    expect(lookup(cache, ids[1]).found).toBe('unknown');
    expect(lookup(cache, ids[0]).found).toBe(ACTIVE_PARENT);
    expect(lookup(cache, ids[5]).found).toBe(ACTIVE_PARENT);
  });
});
