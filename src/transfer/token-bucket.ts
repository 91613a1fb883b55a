// One token bucket for every request body of the process (MAX_UPLOAD_BYTES_PER_SECOND): a token is
// a byte, refilled at the rate, held up to a quarter of a second's worth (at least one slice).
// Waiters are served first come, first served,
// so parts in flight share the rate evenly, and a change of rate applies to those already waiting.

/** The time and timers the bucket runs on: the real ones, or a test's. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * What a body takes from the bucket at a time (64 KiB): small enough that the bytes go on the wire
 * smoothly, large enough that the timers cost nothing next to the sending.
 */
export const SLICE_BYTES = 64 * 1024;
const MIN_SLICE_BYTES = 1024;

/**
 * The slice a body takes at this rate: 64 KiB, or an eighth of a second's worth at a low rate (at
 * least 1 KiB), so that a connection is never silent long enough to be taken for dead.
 */
export function sliceBytesAt(bytesPerSecond: number): number {
  if (bytesPerSecond === 0) return SLICE_BYTES;
  return Math.min(SLICE_BYTES, Math.max(MIN_SLICE_BYTES, Math.floor(bytesPerSecond / 8)));
}

/**
 * How much sending the bucket holds, in seconds at the rate: a timer that fires late (an event loop
 * busy hashing a part) is caught up to this much, so the rate holds on a busy machine, while a
 * second never carries more than 1.25 seconds' worth.
 */
export const BURST_SECONDS = 0.25;

interface Waiter {
  bytes: number;
  resolve(): void;
  reject(reason: unknown): void;
  signal: AbortSignal | undefined;
  onAbort(): void;
}

export class TokenBucket {
  private rate: number;
  private tokens: number;
  private updatedAt: number;
  private readonly waiters: Waiter[] = [];
  private timer: unknown;
  private capacity: number;

  /** `bytesPerSecond` 0: no limit. */
  constructor(
    bytesPerSecond: number,
    private readonly clock: Clock = SYSTEM_CLOCK,
    private readonly burstSeconds = BURST_SECONDS,
  ) {
    assertRate(bytesPerSecond);
    this.rate = bytesPerSecond;
    this.capacity = this.capacityAt(bytesPerSecond);
    this.tokens = this.capacity;
    this.updatedAt = clock.now();
  }

  private capacityAt(bytesPerSecond: number): number {
    return Math.max(SLICE_BYTES, Math.floor(bytesPerSecond * this.burstSeconds));
  }

  /** The limit in bytes per second; 0 means none. */
  get bytesPerSecond(): number {
    return this.rate;
  }

  /** Changes the limit at once, for the bytes waiting too; 0 lets every waiter go. */
  setBytesPerSecond(bytesPerSecond: number): void {
    assertRate(bytesPerSecond);
    this.refill();
    const wasUnlimited = this.rate === 0;
    this.rate = bytesPerSecond;
    this.capacity = this.capacityAt(bytesPerSecond);
    // Nothing was metered while unlimited; a lower limit holds no more than its own burst.
    this.tokens = wasUnlimited ? this.capacity : Math.min(this.tokens, this.capacity);
    this.drain();
  }

  /**
   * Resolves once `bytes` may be sent. A request larger than the capacity waits for a full bucket
   * and leaves it in debt, so the rate holds on average. Rejects with the signal's reason when it
   * is aborted first; its bytes are then not counted.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.rate === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index === -1) return;
          this.waiters.splice(index, 1);
          reject(signal?.reason);
          this.drain();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.drain();
    });
  }

  /** Bytes waiting for the bucket (for tests and logs). */
  get waiting(): number {
    return this.waiters.reduce((sum, waiter) => sum + waiter.bytes, 0);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedAt) * this.rate) / 1000);
    this.updatedAt = now;
  }

  /** Lets go every waiter the bucket can serve, in order, then sleeps until the next one can be. */
  private drain(): void {
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.refill();
    for (let head = this.waiters[0]; head !== undefined; head = this.waiters[0]) {
      if (this.rate !== 0 && this.tokens < Math.min(head.bytes, this.capacity)) {
        const missing = Math.min(head.bytes, this.capacity) - this.tokens;
        const ms = Math.max(1, Math.ceil((missing * 1000) / this.rate));
        this.timer = this.clock.setTimeout(() => {
          this.timer = undefined;
          this.drain();
        }, ms);
        return;
      }
      this.waiters.shift();
      if (this.rate !== 0) this.tokens -= head.bytes;
      head.signal?.removeEventListener('abort', head.onAbort);
      head.resolve();
    }
  }
}

function assertRate(bytesPerSecond: number): void {
  if (!Number.isSafeInteger(bytesPerSecond) || bytesPerSecond < 0) {
    throw new RangeError(`a bandwidth limit is a whole number of bytes per second, not ${bytesPerSecond}`);
  }
}
