/**
 * Keeps the `limit` items with the smallest key offered so far (a max-heap on the key, so the largest kept is
 * the one to drop): the oldest deletable children, in memory bounded by `--max-deletes`, not by the backlog.
 */
export class OldestFirst<T> {
  private readonly heap: T[] = [];

  constructor(
    private readonly limit: number,
    private readonly keyOf: (item: T) => number,
  ) {}

  offer(item: T): void {
    if (this.limit <= 0) return;
    const { heap } = this;
    if (heap.length < this.limit) {
      heap.push(item);
      if (Number.isFinite(this.limit)) this.up(heap.length - 1);
      return;
    }
    if (this.keyOf(item) >= this.keyOf(heap[0])) return;
    heap[0] = item;
    this.down(0);
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
