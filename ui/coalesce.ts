// Many events, one request: the page reads an upload again 250 ms after the last event about it,
// and at most 1 s after the first, so that a steady stream of progress still refreshes the bars
// every second without a request per event.

export class Coalescer {
  private readonly pending = new Map<string, { first: number; timer: number }>();

  constructor(
    private readonly run: (key: string) => void,
    private readonly waitMs = 250,
    private readonly maxWaitMs = 1000,
  ) {}

  schedule(key: string): void {
    const now = Date.now();
    const entry = this.pending.get(key);
    const first = entry?.first ?? now;
    if (entry) clearTimeout(entry.timer);
    const delay = Math.max(0, Math.min(this.waitMs, first + this.maxWaitMs - now));
    const timer = setTimeout(() => {
      this.pending.delete(key);
      this.run(key);
    }, delay);
    this.pending.set(key, { first, timer });
  }

  cancel(): void {
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }
}

/** For answers that may arrive out of order: only the last request started for a key applies. */
export class Latest {
  private readonly started = new Map<string, number>();
  private next = 0;

  /** A ticket for a request about to start; `current(key, ticket)` says whether it is still the last. */
  begin(key: string): number {
    this.next += 1;
    this.started.set(key, this.next);
    return this.next;
  }

  current(key: string, ticket: number): boolean {
    return this.started.get(key) === ticket;
  }
}
