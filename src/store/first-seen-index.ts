import type { UnresolvedState } from './first-seen.ts';

/**
 * The first sightings of one relation, in memory for one scan: what the last complete scans confirmed (loaded
 * once, one cursor), plus the references this scan saw for the first time, each marked when this scan sees it
 * unresolved. It answers a scan's first-seen questions without a query per probe batch, and at the end tells
 * which confirmed references the scan did not see (forgotten) without touching those it did.
 *
 * Compact: an open-addressing table of two independent hashes of the key (53 + 32 bits; a false match between
 * two different keys has a chance near 2^-85 per pair, ~10^-12 for ten million keys), the first sighting to the
 * millisecond, a byte of flags and an entry number — 25 bytes a slot, at most 4/3 slot a key — plus each
 * key's text (back to back, so the end of a scan confirms what it staged and forgets what it did not see
 * without reading the collection again; an ObjectId's hex as its 12 bytes, anything else as UTF-8): ~50 bytes
 * per unresolved ObjectId reference (10 million: ~500 MB).
 */
export class FirstSeenIndex {
  private slots = 0;
  private mask = 0;
  private h1 = new Float64Array(0);
  private h2 = new Uint32Array(0);
  private seenAt = new Float64Array(0);
  private flags = new Uint8Array(0);
  /** Per slot: the entry number of its key's text in `keyText` (-1: an empty slot). */
  private entry = new Int32Array(0);
  /** The keys' UTF-8 text, back to back; entry n spans `keyStart[n]`..`keyStart[n + 1]`. */
  private keyText = new Uint8Array(0);
  private keyStart = new Int32Array(1);
  private entries = 0;
  /** Keys held (confirmed and new). */
  size = 0;
  /** Stored documents left out when loading because they failed their checks. */
  rejected = 0;
  /** Documents another run staged (pending) met when loading: the end of a complete scan removes them. */
  stagedElsewhere = 0;

  constructor(expected = 0) {
    this.allocate(capacityFor(expected));
  }

  private allocate(slots: number) {
    this.slots = slots;
    this.mask = slots - 1;
    this.h1 = new Float64Array(slots);
    this.h2 = new Uint32Array(slots);
    this.seenAt = new Float64Array(slots);
    this.flags = new Uint8Array(slots);
    this.entry = new Int32Array(slots).fill(-1);
  }

  private grow() {
    const { h1, h2, seenAt, flags, entry } = this;
    this.allocate(this.slots * 2);
    for (let i = 0; i < h1.length; i++)
      if (flags[i] & OCCUPIED) this.place(h1[i], h2[i], seenAt[i], flags[i], entry[i]);
  }

  private place(a: number, b: number, s: number, f: number, e: number): number {
    let i = (a % this.slots) & this.mask;
    while (this.flags[i] & OCCUPIED) i = (i + 1) & this.mask;
    this.h1[i] = a;
    this.h2[i] = b;
    this.seenAt[i] = s;
    this.flags[i] = f;
    this.entry[i] = e;
    return i;
  }

  /**
   * Keeps a key's text (its entry number), so the end of a scan can name keys without reading them back; a
   * 24-digit lowercase hex key (an ObjectId's) as its 12 bytes.
   */
  private keep(key: string, hex: boolean): number {
    const bytes = hex ? undefined : textEncoder.encode(key);
    const length = bytes ? bytes.length : 12;
    const at = this.keyStart[this.entries];
    if (at + length > this.keyText.length) {
      const text = new Uint8Array(Math.max(1024, 2 * (at + length)));
      text.set(this.keyText.subarray(0, at));
      this.keyText = text;
    }
    if (this.entries + 2 > this.keyStart.length) {
      const starts = new Int32Array(Math.max(1024, 2 * this.keyStart.length));
      starts.set(this.keyStart);
      this.keyStart = starts;
    }
    if (bytes) this.keyText.set(bytes, at);
    // The 12 bytes of 24 lowercase hex digits, written in place (no Buffer per key).
    else
      for (let i = 0; i < 12; i++)
        this.keyText[at + i] = (hexDigit(key.charCodeAt(2 * i)) << 4) | hexDigit(key.charCodeAt(2 * i + 1));
    this.keyStart[this.entries + 1] = at + length;
    return this.entries++;
  }

  private keyOf(slot: number): string {
    const n = this.entry[slot];
    const text = this.keyText.subarray(this.keyStart[n], this.keyStart[n + 1]);
    return this.flags[slot] & HEX ? Buffer.from(text).toString('hex') : textDecoder.decode(text);
  }

  /** The confirmed keys this scan did not see unresolved: what a complete scan forgets. */
  *unseenConfirmed(): Generator<string> {
    for (let i = 0; i < this.slots; i++) {
      const f = this.flags[i];
      if (f & OCCUPIED && !(f & (SEEN | FRESH))) yield this.keyOf(i);
    }
  }

  /** The keys this scan staged as first sightings: what a complete scan confirms. */
  *staged(): Generator<string> {
    for (let i = 0; i < this.slots; i++) if (this.flags[i] & FRESH) yield this.keyOf(i);
  }

  private find(key: string): number {
    return this.findHashed(hash53(key, 0), hash53(key, 0x9e3779b9) >>> 0);
  }

  private findHashed(a: number, b: number): number {
    let i = (a % this.slots) & this.mask;
    while (this.flags[i] & OCCUPIED) {
      if (this.h1[i] === a && this.h2[i] === b) return i;
      i = (i + 1) & this.mask;
    }
    return -1;
  }

  /** Adds a confirmed sighting, as loaded. A key already held is left. */
  add(key: string, firstSeenAt: Date, state: UnresolvedState | undefined): void {
    const a = hash53(key, 0);
    const b = hash53(key, 0x9e3779b9) >>> 0;
    if (this.findHashed(a, b) >= 0) return;
    if ((this.size + 1) * 4 > this.slots * 3) this.grow();
    const hex = HEX_KEY.test(key);
    const f =
      OCCUPIED | (hex ? HEX : 0) | (state === 'inactive' ? INACTIVE : state === 'missing' ? MISSING : 0);
    this.place(a, b, firstSeenAt.getTime(), f, this.keep(key, hex));
    this.size++;
  }

  /**
   * Notes that this scan saw `key` unresolved, in `state`, with one lookup of the key, and says what the index
   * held: `new` (not held: added as this scan's first sighting, dated `now`), `fresh` (this scan staged it
   * before), or the confirmed first sighting with the state it was stored with.
   */
  sight(
    key: string,
    state: UnresolvedState,
    now: Date,
  ): 'new' | 'fresh' | { firstSeenAt: Date; state: UnresolvedState | undefined } {
    const a = hash53(key, 0);
    const b = hash53(key, 0x9e3779b9) >>> 0;
    const i = this.findHashed(a, b);
    const stateFlag = state === 'inactive' ? INACTIVE : MISSING;
    if (i < 0) {
      if ((this.size + 1) * 4 > this.slots * 3) this.grow();
      const hex = HEX_KEY.test(key);
      this.place(
        a,
        b,
        now.getTime(),
        OCCUPIED | (hex ? HEX : 0) | stateFlag | SEEN | FRESH,
        this.keep(key, hex),
      );
      this.size++;
      return 'new';
    }
    const f = this.flags[i];
    this.flags[i] = (f & ~(MISSING | INACTIVE)) | SEEN | stateFlag;
    if (f & FRESH) return 'fresh';
    return {
      firstSeenAt: new Date(this.seenAt[i]),
      state: f & INACTIVE ? 'inactive' : f & MISSING ? 'missing' : undefined,
    };
  }

  /** Whether this scan saw the key unresolved. */
  seen(key: string): boolean {
    const i = this.find(key);
    return i >= 0 && (this.flags[i] & SEEN) !== 0;
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

const OCCUPIED = 1;
const MISSING = 2;
const INACTIVE = 4;
const SEEN = 8;
/** Staged by this scan (not confirmed yet). */
const FRESH = 16;
/** The key's text is kept as the 12 bytes of its 24 hex digits. */
const HEX = 32;
const HEX_KEY = /^[0-9a-f]{24}$/;

/** The value of a lowercase hex digit's character code (the key passed HEX_KEY). */
function hexDigit(code: number): number {
  return code <= 0x39 ? code - 0x30 : code - 0x57;
}

function capacityFor(expected: number): number {
  let slots = 1024;
  while (slots * 3 < expected * 4) slots *= 2;
  return slots;
}

/** cyrb53 (public domain): a fast 53-bit string hash; two seeds give two independent-enough hashes. */
function hash53(text: string, seed: number): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
