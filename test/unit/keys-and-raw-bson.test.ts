import { BSON, Decimal128, Long, ObjectId } from 'bson';
import { describe, expect, it } from 'vitest';
import { softDeleteState } from '../../src/engine/probe.ts';
import { MISSING, RawFieldReader } from '../../src/engine/raw-bson.ts';
import { canonicalKey, probeValues } from '../../src/mongo/keys.ts';
import { redact, rememberSecretsOf } from '../../src/mongo/redact.ts';

describe('canonicalKey', () => {
  const oid = new ObjectId('507f1f77bcf86cd799439011');

  it('matches an ObjectId and its hex string both ways under objectid-or-hex', () => {
    expect(canonicalKey(oid, 'objectid-or-hex')).toBe('507f1f77bcf86cd799439011');
    expect(canonicalKey('507F1F77BCF86CD799439011', 'objectid-or-hex')).toBe('507f1f77bcf86cd799439011');
    for (const invalid of [null, undefined, '', 'xyz', 12345, { a: 1 }, ['507f1f77bcf86cd799439011']]) {
      expect(canonicalKey(invalid, 'objectid-or-hex')).toBeUndefined();
    }
    expect(probeValues('507F1F77BCF86CD799439011', '507f1f77bcf86cd799439011', 'objectid-or-hex')).toEqual([
      oid,
      '507f1f77bcf86cd799439011',
      '507F1F77BCF86CD799439011',
    ]);
  });

  it('keeps types apart under exact, but numbers equal across int, long and double', () => {
    expect(canonicalKey('7', 'exact')).not.toBe(canonicalKey(7, 'exact'));
    expect(canonicalKey(7, 'exact')).toBe(canonicalKey(Long.fromNumber(7), 'exact'));
    expect(canonicalKey(oid, 'exact')).not.toBe(canonicalKey(oid.toHexString(), 'exact'));
    for (const invalid of [
      null,
      undefined,
      '',
      true,
      { a: 1 },
      [1],
      Number.NaN,
      Decimal128.fromString('1.5'),
    ]) {
      expect(canonicalKey(invalid, 'exact')).toBeUndefined();
    }
    // A whole Decimal128 is the same key as the int or double mongod calls equal to it.
    expect(canonicalKey(Decimal128.fromString('7'), 'exact')).toBe(canonicalKey(7, 'exact'));
  });
});

describe('RawFieldReader', () => {
  const doc = {
    _id: new ObjectId('507f1f77bcf86cd799439011'),
    skip: { big: 'x'.repeat(100), list: [1, 2] },
    re: /a.c/i,
    ref: 'abc',
    n: 5,
    l: Long.fromString('9007199254740993'),
    nested: { deep: { v: 1.5 } },
    nil: null,
    when: new Date(1000),
  };
  const raw = BSON.serialize(doc);

  it('reads top-level and dotted fields without decoding the rest', () => {
    expect(new RawFieldReader('_id').read(raw)).toEqual(doc._id);
    expect(new RawFieldReader('ref').read(raw)).toBe('abc');
    expect(new RawFieldReader('n').read(raw)).toBe(5);
    expect(String(new RawFieldReader('l').read(raw))).toBe('9007199254740993');
    expect(new RawFieldReader('nested.deep.v').read(raw)).toBe(1.5);
    expect(new RawFieldReader('nil').read(raw)).toBeNull();
    expect(new RawFieldReader('when').read(raw)).toEqual(new Date(1000));
    expect(new RawFieldReader('skip').read(raw)).toEqual(doc.skip);
  });

  it("reads a soft-delete date beyond JavaScript's range as deleted at an unknown time, never as NaN", () => {
    // mongod stores any int64 of milliseconds; 10^16 is past the year 275,760, where a Date turns invalid.
    const bytes = BSON.serialize({ deleted_at: new Date(0) });
    new DataView(bytes.buffer, bytes.byteOffset).setBigInt64(bytes.length - 9, 10n ** 16n, true);
    const value = new RawFieldReader('deleted_at').read(bytes);
    expect(value).toBeInstanceOf(Date);
    // Without a time its grace counts from the first sighting; an invalid date would pass no grace check.
    expect(softDeleteState(value)).toEqual({ deleted: true, since: undefined });
    expect(softDeleteState(new Date(5))).toEqual({ deleted: true, since: new Date(5) });
  });

  it('tells a missing field from null', () => {
    expect(new RawFieldReader('absent').read(raw)).toBe(MISSING);
    expect(new RawFieldReader('ref.inner').read(raw)).toBe(MISSING);
    expect(new RawFieldReader('nested.nope').read(raw)).toBe(MISSING);
  });
});

describe('redact', () => {
  it('removes credentials from URIs anywhere in a text, and remembered secrets everywhere', () => {
    expect(redact('failed: mongodb://admin:s3cret-pw@db1:27017,db2/x?authSource=admin')).toBe(
      'failed: mongodb://****@db1:27017,db2/x?authSource=admin',
    );
    expect(redact('mongodb+srv://u:p4ss@cluster0.example.net/db')).not.toContain('p4ss');
    rememberSecretsOf('mongodb://svc:Very%40Secret@host/db');
    expect(redact('auth failed for password Very@Secret')).toBe('auth failed for password ****');
  });
});
