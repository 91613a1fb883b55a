// Bytes confirmed by S3 per upload over a short sliding window, kept in memory: what the API shows
// as bytes_per_second. Bounded: a fixed ring of one-second buckets per upload that moved bytes
// within the window, and an upload leaves the map once its window is empty.

/** The window: long enough to smooth parts of tens of MiB, short enough to follow a stall. */
export const THROUGHPUT_WINDOW_SECONDS = 20;
const BUCKET_MS = 1000;

interface Window {
  /** Bytes per bucket, indexed by the bucket's number modulo the window's length. */
  bytes: number[];
  /** The bucket number (time / BUCKET_MS) each slot holds, to tell a stale slot from a live one. */
  slots: number[];
  /** When bytes began to move after a quiet window: a rate younger than the window is over its age. */
  startedAt: number;
  /** The newest bucket that holds bytes. */
  lastBucket: number;
}

export class Throughput {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * A file of the upload began to send: a rate younger than the window is counted from here, not
   * from the first bytes S3 confirmed (a small file's come only when it is whole).
   */
  began(uploadId: string): void {
    this.windowOf(uploadId, this.now());
  }

  /** Records bytes S3 confirmed for one of the upload's files just now. */
  add(uploadId: string, bytes: number): void {
    if (!(bytes > 0)) return;
    const now = this.now();
    const bucket = Math.floor(now / BUCKET_MS);
    const window = this.windowOf(uploadId, now);
    const slot = bucket % THROUGHPUT_WINDOW_SECONDS;
    if (window.slots[slot] !== bucket) {
      window.slots[slot] = bucket;
      window.bytes[slot] = 0;
    }
    window.bytes[slot] = (window.bytes[slot] ?? 0) + bytes;
  }

  /**
   * Bytes per second over the last THROUGHPUT_WINDOW_SECONDS (the current, partial second
   * included), or over the time since bytes began to move when that is shorter (at least a second):
   * a transfer 3 s old is not averaged over 20. Rounded down; 0 when nothing moved.
   */
  bytesPerSecond(uploadId: string): number {
    const window = this.windows.get(uploadId);
    if (!window) return 0;
    const current = Math.floor(this.now() / BUCKET_MS);
    let sum = 0;
    for (let slot = 0; slot < THROUGHPUT_WINDOW_SECONDS; slot += 1) {
      const bucket = window.slots[slot] ?? -1;
      if (bucket > current - THROUGHPUT_WINDOW_SECONDS && bucket <= current) sum += window.bytes[slot] ?? 0;
    }
    if (sum === 0) {
      // Nothing confirmed yet since a file began: the window stays, to remember when.
      if (window.lastBucket <= current - THROUGHPUT_WINDOW_SECONDS) this.windows.delete(uploadId);
      return 0;
    }
    const movingSeconds = (this.now() - window.startedAt) / BUCKET_MS;
    return Math.floor(sum / Math.min(THROUGHPUT_WINDOW_SECONDS, Math.max(1, movingSeconds)));
  }

  /** The upload's window; after a quiet window, its bytes begin to move now. */
  private windowOf(uploadId: string, now: number): Window {
    const bucket = Math.floor(now / BUCKET_MS);
    let window = this.windows.get(uploadId);
    if (!window) {
      window = {
        bytes: new Array<number>(THROUGHPUT_WINDOW_SECONDS).fill(0),
        slots: new Array<number>(THROUGHPUT_WINDOW_SECONDS).fill(-1),
        startedAt: now,
        lastBucket: bucket,
      };
      this.windows.set(uploadId, window);
    }
    if (window.lastBucket <= bucket - THROUGHPUT_WINDOW_SECONDS) window.startedAt = now;
    window.lastBucket = bucket;
    return window;
  }

  /** A cancelled upload's window goes at once. */
  forget(uploadId: string): void {
    this.windows.delete(uploadId);
  }
}
