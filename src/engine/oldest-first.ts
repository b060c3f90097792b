/**
 * Keeps the `limit` items with the smallest key offered so far (a max-heap on the key, so the largest kept is
 * the one to drop): the oldest deletable children, in memory bounded by `--max-deletes`, not by the backlog.
 */
export class OldestFirst<T> {
  private readonly heap: T[] = [];
  /** Items kept since the last `takeAdded` and still kept: what a checkpoint appends. */
  private added = new Set<T>();

  constructor(
    private readonly limit: number,
    private readonly keyOf: (item: T) => number,
    /** Remember what was kept since the last `takeAdded` (for checkpoints; memory up to `limit` more). */
    private readonly trackAdded = false,
  ) {}

  offer(item: T): void {
    if (this.limit <= 0) return;
    const { heap } = this;
    if (heap.length < this.limit) {
      heap.push(item);
      if (this.trackAdded) this.added.add(item);
      if (Number.isFinite(this.limit)) this.up(heap.length - 1);
      return;
    }
    if (this.keyOf(item) >= this.keyOf(heap[0])) return;
    if (this.trackAdded) {
      this.added.delete(heap[0]);
      this.added.add(item);
    }
    heap[0] = item;
    this.down(0);
  }

  /**
   * The items kept since the last call (and not dropped since), oldest first; then forgets them. The items
   * kept at any moment are the oldest of the union of every call's answers (an item dropped was dropped for
   * older ones), so a checkpoint can append these instead of writing everything kept.
   */
  takeAdded(): T[] {
    const added = [...this.added].sort((a, b) => this.keyOf(a) - this.keyOf(b));
    this.added = new Set();
    return added;
  }

  /** How many items are kept. */
  get size(): number {
    return this.heap.length;
  }

  /** What was kept, oldest first. */
  sorted(): T[] {
    return [...this.heap].sort((a, b) => this.keyOf(a) - this.keyOf(b));
  }

  private up(i: number): void {
    const { heap, keyOf } = this;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keyOf(heap[parent]) >= keyOf(heap[i])) return;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  }

  private down(i: number): void {
    const { heap, keyOf } = this;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let largest = i;
      if (left < heap.length && keyOf(heap[left]) > keyOf(heap[largest])) largest = left;
      if (right < heap.length && keyOf(heap[right]) > keyOf(heap[largest])) largest = right;
      if (largest === i) return;
      [heap[largest], heap[i]] = [heap[i], heap[largest]];
      i = largest;
    }
  }
}
