import { Long, ObjectId } from 'bson';
import { describe, expect, it } from 'vitest';
import { displayValue } from '../../src/mongo/keys.ts';
import { parseValueArgument, valueArgument } from '../../src/store/exception-input.ts';

// Issue 26 item 2: one notation for references. Whatever the tool displays (and mongosh prints) is accepted back
// by every place that takes a reference or an id.
describe('a reference typed in any notation the tool shows', () => {
  const hex = '507f1f77bcf86cd799439011';
  const id = new ObjectId(hex);

  it.each([
    ['ObjectId(hex), as the console displays it', `ObjectId(${hex})`],
    ["ObjectId('hex'), as mongosh prints it", `ObjectId('${hex}')`],
    ['new ObjectId("hex")', `new ObjectId("${hex}")`],
    ['oid hex, as the review table shows it', `oid ${hex}`],
    ['bare hex', hex],
    ['Extended JSON', `{"$oid": "${hex}"}`],
    ['with spaces around it', `  ObjectId( '${hex}' ) `],
  ])('%s is that ObjectId', (_, text) => {
    expect(parseValueArgument(text)).toEqual(id);
  });

  it('every displayed form of a value reads back as that value', () => {
    for (const value of [id, 'p-1', '42', 'it\'s "quoted"', 42, -7, 2.5])
      expect(parseValueArgument(displayValue(value))).toEqual(value);
  });

  it('strings quoted either way are strings, digits unquoted are numbers, and a long stays exact', () => {
    expect(parseValueArgument('"42"')).toBe('42');
    expect(parseValueArgument("'42'")).toBe('42');
    expect(parseValueArgument('42')).toBe(42);
    expect(parseValueArgument('{"$numberLong": "9007199254740993"}')).toEqual(
      Long.fromString('9007199254740993'),
    );
    expect(parseValueArgument('p-gone')).toBe('p-gone');
  });
});

describe('a reference printed in a command', () => {
  it('reads back as the same value', () => {
    for (const value of [new ObjectId(), 'p-1', '42', '507f1f77bcf86cd799439011', 'oid x', 42, 2.5])
      expect(parseValueArgument(valueArgument(value))).toEqual(value);
    expect(valueArgument(new ObjectId('507f1f77bcf86cd799439011'))).toBe('507f1f77bcf86cd799439011');
    expect(valueArgument('p-1')).toBe('p-1');
    expect(valueArgument('42')).toBe('"42"');
  });
});
