// Coalesces file-system events: paths gather for a short window, then are handed over together,
// one hand-over at a time. The number of pending paths is bounded: a full buffer is handed over
// at once, and if the previous hand-over is still running, further paths are dropped and the
// owner is told (a rescan finds them) rather than letting memory grow with the size of a burst.

export interface ChangeBufferOptions {
  /** How long paths gather after the first one arrives. */
  windowMs: number;
  /** Distinct pending paths that trigger an early hand-over. */
  maxPending: number;
  /** Receives the pending paths: relative path → whether any of its events was a rename (which a creation is). */
  flush(changes: Map<string, boolean>): Promise<void>;
  /** Paths were dropped since the last hand-over started; called once per episode. */
  overflowed(): void;
  /** flush() rejected (it should report its own errors; this is the last resort). */
  failed(error: unknown): void;
}

export class ChangeBuffer {
  private pending = new Map<string, boolean>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private dropping = false;
  private closed = false;

  constructor(private readonly options: ChangeBufferOptions) {}

  add(relativePath: string, renamed: boolean): void {
    if (this.closed) return;
    const known = this.pending.get(relativePath);
    if (known !== undefined) {
      if (renamed && !known) this.pending.set(relativePath, true);
      return;
    }
    if (this.pending.size >= this.options.maxPending) {
      if (this.flushing === undefined) {
        this.handOver();
      } else {
        if (!this.dropping) this.options.overflowed();
        this.dropping = true;
        return;
      }
    }
    this.pending.set(relativePath, renamed);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.handOver();
    }, this.options.windowMs);
  }

  /** Drops what is pending and waits for a hand-over in progress to finish. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    await this.flushing;
  }

  private handOver(): void {
    // A hand-over in progress starts the next one when it ends.
    if (this.closed || this.flushing !== undefined || this.pending.size === 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const changes = this.pending;
    this.pending = new Map();
    this.dropping = false;
    this.flushing = this.options
      .flush(changes)
      .catch((error: unknown) => this.options.failed(error))
      .finally(() => {
        this.flushing = undefined;
        // No timer while paths are pending means their window ended during this hand-over.
        if (this.pending.size >= this.options.maxPending || this.timer === undefined) this.handOver();
      });
  }
}
