/**
 * The scan's parent probes in flight: at most `limit` at once, and every outcome surfaced. A probe that fails
 * is remembered until someone asks (`start`, `settle`), whether or not the limit was reached when it failed —
 * a rejection removed from the in-flight set by its own cleanup before anyone awaited it would otherwise be
 * lost, and a scan with children in no category would call itself complete.
 */
export class ProbeScheduler {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {}

  /** A probe has failed: the scan's tallies no longer match what it has read. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  get size(): number {
    return this.inFlight.size;
  }

  /**
   * Starts `task`; returns once fewer than `limit` tasks are in flight. Throws the first failure of any task
   * started so far, this one included.
   */
  async start(task: () => Promise<void>): Promise<void> {
    this.throwIfFailed();
    const running: Promise<void> = task()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
    while (this.inFlight.size >= this.limit) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  /** Waits for every task in flight; throws the first failure of any task started. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
