import type { KeyMatch } from '../mongo/keys.ts';
import { canonicalKey } from '../mongo/keys.ts';
import { ACTIVE_PARENT, INACTIVE_PARENT, MISSING_PARENT, type ParentState } from './probe.ts';
import { BSON_OBJECT_ID, BSON_STRING, decodeValue, int32, readObjectIdHex } from './raw-bson.ts';

const OBJECT_ID_BYTES = 12;
/** Hex digit values by character code, -1 for anything else. */
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;
  HEX_VALUE['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/**
 * ObjectId-shaped keys (12 bytes) mapped to values in typed arrays, open addressing: no string, Buffer or
 * entry object per key, so a million lookups allocate nothing.
 */
export class ObjectIdTable<V> {
  private keys: Uint8Array;
  private values: V[] = [];
  /** 0 = empty slot, else 1 + the entry's index in `values` and `keys`. */
  private slots: Int32Array;

  /** `expected`: the entries it will likely hold, allocated at once (no rehash on the way there). */
  constructor(expected = 1024) {
    let slots = 2048;
    while (slots < 2 * expected) slots *= 2;
    this.slots = new Int32Array(slots);
    this.keys = new Uint8Array((slots / 2) * OBJECT_ID_BYTES);
  }

  get size(): number {
    return this.values.length;
  }

  get(buf: Uint8Array, at: number): V | undefined {
    const mask = this.slots.length - 1;
    for (let slot = hash(buf, at) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot];
      if (entry === 0) return undefined;
      if (this.keyEquals(entry - 1, buf, at)) return this.values[entry - 1];
    }
  }

  set(buf: Uint8Array, at: number, value: V): void {
    const mask = this.slots.length - 1;
    let slot = hash(buf, at) & mask;
    for (; this.slots[slot] !== 0; slot = (slot + 1) & mask) {
      const entry = this.slots[slot];
      if (this.keyEquals(entry - 1, buf, at)) {
        this.values[entry - 1] = value;
        return;
      }
    }
    const index = this.values.length;
    if ((index + 1) * OBJECT_ID_BYTES > this.keys.length) {
      const keys = new Uint8Array(this.keys.length * 2);
      keys.set(this.keys);
      this.keys = keys;
    }
    this.keys.set(buf.subarray(at, at + OBJECT_ID_BYTES), index * OBJECT_ID_BYTES);
    this.values.push(value);
    this.slots[slot] = index + 1;
    // At most half full, so a probe sequence stays short.
    if (this.values.length * 2 > this.slots.length) this.rehash(this.slots.length * 2);
  }

  private keyEquals(index: number, buf: Uint8Array, at: number): boolean {
    const base = index * OBJECT_ID_BYTES;
    for (let i = 0; i < OBJECT_ID_BYTES; i++) if (this.keys[base + i] !== buf[at + i]) return false;
    return true;
  }

  private rehash(capacity: number): void {
    const slots = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let index = 0; index < this.values.length; index++) {
      let slot = hash(this.keys, index * OBJECT_ID_BYTES) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = index + 1;
    }
    this.slots = slots;
  }
}

const KIND_CODE = { active: 0, missing: 1, inactive: 2 } as const;

/**
 * Parent states by ObjectId bytes, each a kind byte and a time (NaN: none) in typed arrays: no object or Date
 * kept per key, so a cache of 400,000 orphaned keys is a few MB the collector never walks.
 */
class StateTable {
  private readonly entries: ObjectIdTable<number>;
  private kinds: Uint8Array;
  private since: Float64Array;

  constructor(expected: number) {
    this.entries = new ObjectIdTable<number>(expected);
    this.kinds = new Uint8Array(Math.max(1024, expected));
    this.since = new Float64Array(Math.max(1024, expected));
  }

  get size(): number {
    return this.entries.size;
  }

  get(buf: Uint8Array, at: number): ParentState | undefined {
    const n = this.entries.get(buf, at);
    if (n === undefined) return undefined;
    const kind = this.kinds[n];
    const since = this.since[n];
    if (kind === KIND_CODE.active) return ACTIVE_PARENT;
    if (Number.isNaN(since)) return kind === KIND_CODE.missing ? MISSING_PARENT : INACTIVE_PARENT;
    return { kind: kind === KIND_CODE.missing ? 'missing' : 'inactive', since: new Date(since) };
  }

  set(buf: Uint8Array, at: number, state: ParentState): void {
    let n = this.entries.get(buf, at);
    if (n === undefined) {
      n = this.entries.size;
      if (n === this.kinds.length) {
        const kinds = new Uint8Array(2 * n);
        kinds.set(this.kinds);
        this.kinds = kinds;
        const since = new Float64Array(2 * n);
        since.set(this.since);
        this.since = since;
      }
      this.entries.set(buf, at, n);
    }
    this.kinds[n] = KIND_CODE[state.kind];
    this.since[n] = state.kind === 'active' || !state.since ? Number.NaN : state.since.getTime();
  }
}

/** Mixes the 12 bytes (timestamp, random, counter) so nearby ObjectIds spread over the table. */
function hash(buf: Uint8Array, at: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < OBJECT_ID_BYTES; i += 4) {
    const word = buf[at + i] | (buf[at + i + 1] << 8) | (buf[at + i + 2] << 16) | (buf[at + i + 3] << 24);
    h = Math.imul(h ^ word, 0x9e3779b1);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** Writes the 12 bytes of a 24-hex string into `out`; false when it is not one. */
function hexToBytes(buf: Uint8Array, textAt: number, out: Uint8Array): boolean {
  for (let i = 0; i < OBJECT_ID_BYTES; i++) {
    const high = HEX_VALUE[buf[textAt + 2 * i]];
    const low = HEX_VALUE[buf[textAt + 2 * i + 1]];
    if (high < 0 || low < 0) return false;
    out[i] = (high << 4) | low;
  }
  return true;
}

/** Writes the 12 bytes of the 24 hex digits of `text` from `at` into `out`; false when they are not hex. */
function hexTextToBytes(text: string, at: number, out: Uint8Array): boolean {
  for (let i = 0; i < OBJECT_ID_BYTES; i++) {
    const high = hexValue(text.charCodeAt(at + 2 * i));
    const low = hexValue(text.charCodeAt(at + 2 * i + 1));
    if (high < 0 || low < 0) return false;
    out[i] = (high << 4) | low;
  }
  return true;
}

/** A hex digit's value by its character code; -1 for anything else (NaN past the end, codes past 255). */
function hexValue(code: number): number {
  return code < 256 ? HEX_VALUE[code] : -1;
}

/** Whether the 24 hex characters at `textAt` hold both a-f and A-F. */
function isMixedCase(buf: Uint8Array, textAt: number): boolean {
  let lower = false;
  let upper = false;
  for (let i = textAt; i < textAt + 24; i++) {
    const c = buf[i];
    if (c >= 0x61 && c <= 0x66) lower = true;
    else if (c >= 0x41 && c <= 0x46) upper = true;
  }
  return lower && upper;
}

/**
 * A bounded map of recently seen keys, in two generations: when the young one is full it becomes the old
 * one, and old keys still in use are promoted back (by the caller). Nearly LRU, without reordering on hits.
 */
class Generations<T extends { size: number }> {
  young: T;
  old: T;

  constructor(
    private readonly create: () => T,
    private readonly limit: number,
  ) {
    this.young = create();
    this.old = create();
  }

  /** The table new entries go to, turning over the generations first when it is full. */
  fresh(): T {
    if (this.young.size >= this.limit / 2) {
      this.old = this.young;
      this.young = this.create();
    }
    return this.young;
  }
}

/** What the cache says about one child's reference. */
export type ReferenceLookup = ParentState | 'invalid' | 'excepted' | 'unknown';

/**
 * The scan's memory of parents: reads a child's reference straight from its raw bytes and answers from
 * recently probed keys. ObjectIds and 24-hex strings are looked up by their 12 bytes, so a reference whose
 * parent is known never becomes a string; other keys (exact matching on strings, numbers...) by their
 * canonical key. `key()` gives the canonical key of the last lookup when the caller needs it.
 */
export class ReferenceCache {
  private readonly byBytes: Generations<StateTable>;
  private readonly byKey: Generations<Map<string, ParentState>>;
  private readonly exceptedBytes = new ObjectIdTable<true>();
  private readonly scratch = new Uint8Array(OBJECT_ID_BYTES);
  /** The 12 bytes of a key being remembered (`toKeyBytes`), apart from `scratch`, which the last lookup points at. */
  private readonly keyBytes = new Uint8Array(OBJECT_ID_BYTES);
  private lastBuf: Uint8Array = this.scratch;
  private lastAt = 0;
  private lastKey: string | undefined;
  /**
   * References that are 24-hex strings with both lower- and upper-case letters (objectid-or-hex): a parent
   * stored as another mixed form cannot be found by any `$in`, so the relation is unsafe while one exists.
   */
  mixedCaseHex = 0;

  constructor(
    private readonly keyMatch: KeyMatch,
    private readonly exceptedKeys: ReadonlySet<string>,
    limit: number,
    /** The distinct keys the scan may meet (its children, at most): each generation is sized for it at once. */
    expectedKeys = 0,
  ) {
    const generation = Math.min(Math.ceil(limit / 2), Math.max(1024, expectedKeys));
    this.byBytes = new Generations(() => new StateTable(generation), limit);
    this.byKey = new Generations(() => new Map<string, ParentState>(), limit);
    for (const key of exceptedKeys) if (this.toKeyBytes(key)) this.exceptedBytes.set(this.keyBytes, 0, true);
  }

  /** Looks up the reference of BSON `type` whose value starts at `at` of `buf`. */
  lookup(buf: Uint8Array, type: number, at: number): ReferenceLookup {
    if (this.readObjectId(buf, type, at)) {
      this.lastKey = undefined;
      if (this.exceptedBytes.size > 0 && this.exceptedBytes.get(this.lastBuf, this.lastAt)) return 'excepted';
      const tables = this.byBytes;
      let state = tables.young.get(this.lastBuf, this.lastAt);
      if (state === undefined) {
        state = tables.old.get(this.lastBuf, this.lastAt);
        if (state !== undefined) tables.fresh().set(this.lastBuf, this.lastAt, state);
      }
      return state ?? 'unknown';
    }
    if (this.keyMatch === 'objectid-or-hex') return 'invalid';
    const key = canonicalKey(decodeValue(buf, type, at), this.keyMatch);
    this.lastBuf = this.scratch;
    this.lastKey = key;
    if (key === undefined) return 'invalid';
    if (this.exceptedKeys.has(key)) return 'excepted';
    const tables = this.byKey;
    let state = tables.young.get(key);
    if (state === undefined) {
      state = tables.old.get(key);
      if (state !== undefined) tables.fresh().set(key, state);
    }
    return state ?? 'unknown';
  }

  /** The canonical key of the reference last looked up (not invalid). */
  key(): string {
    if (this.lastKey === undefined) {
      const hex = readObjectIdHex(this.lastBuf, this.lastAt);
      this.lastKey = this.keyMatch === 'objectid-or-hex' ? hex : `o${hex}`;
    }
    return this.lastKey;
  }

  /** Remembers what a probe found for a canonical key. */
  set(key: string, state: ParentState): void {
    if (this.toKeyBytes(key)) this.byBytes.fresh().set(this.keyBytes, 0, state);
    else this.byKey.fresh().set(key, state);
  }

  /** Writes the 12 bytes of a canonical key that stands for an ObjectId into `keyBytes`; false for any other key. */
  private toKeyBytes(key: string): boolean {
    if (this.keyMatch === 'objectid-or-hex')
      return key.length === 24 && hexTextToBytes(key, 0, this.keyBytes);
    return key.length === 25 && key.startsWith('o') && hexTextToBytes(key, 1, this.keyBytes);
  }

  /** Points lastBuf/lastAt at the 12 bytes of an ObjectId reference (or a 24-hex string under objectid-or-hex). */
  private readObjectId(buf: Uint8Array, type: number, at: number): boolean {
    if (type === BSON_OBJECT_ID) {
      this.lastBuf = buf;
      this.lastAt = at;
      return true;
    }
    if (type !== BSON_STRING || this.keyMatch !== 'objectid-or-hex') return false;
    if (int32(buf, at) !== 25 || !hexToBytes(buf, at + 4, this.scratch)) return false;
    if (isMixedCase(buf, at + 4)) this.mixedCaseHex++;
    this.lastBuf = this.scratch;
    this.lastAt = 0;
    return true;
  }
}
