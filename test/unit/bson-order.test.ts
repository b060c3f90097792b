import { Long, MaxKey, MinKey, ObjectId } from 'bson';
import { describe, expect, it } from 'vitest';
import { compareBson, indexKey, valuesAtPath } from '../../src/sandbox/bson-values.ts';

describe('sandbox BSON ordering and equality', () => {
  it('orders types as MongoDB does', () => {
    const values = [
      new MaxKey(),
      true,
      new Date(5),
      new ObjectId(),
      [1],
      { a: 1 },
      'b',
      2,
      null,
      new MinKey(),
    ];
    const sorted = [...values].sort(compareBson);
    expect(
      sorted.map((v) =>
        v === null
          ? 'null'
          : ((v as { _bsontype?: string })._bsontype ??
            (Array.isArray(v) ? 'array' : v instanceof Date ? 'date' : typeof v)),
      ),
    ).toEqual([
      'MinKey',
      'null',
      'number',
      'string',
      'object',
      'array',
      'ObjectId',
      'boolean',
      'date',
      'MaxKey',
    ]);
  });

  it('gives equal index keys exactly to values MongoDB matches as equal', () => {
    expect(indexKey(5)).toBe(indexKey(Long.fromNumber(5)));
    expect(indexKey('507f1f77bcf86cd799439011')).not.toBe(indexKey(new ObjectId('507f1f77bcf86cd799439011')));
    expect(indexKey(null)).toBe(indexKey(undefined));
    expect(indexKey(-0)).toBe(indexKey(0));
  });

  it('finds values through arrays on dotted paths', () => {
    expect(valuesAtPath({ a: [{ b: 1 }, { b: [2, 3] }] }, 'a.b')).toEqual([1, 2, 3]);
    expect(valuesAtPath({ a: [10, 20] }, 'a.1')).toEqual([20]);
    expect(valuesAtPath({ a: 1 }, 'x')).toEqual([]);
  });
});
