// Memory for file data on its way to S3. Every part and every small file is read into a buffer
// leased from one pool per process, so MAX_BUFFER_BYTES bounds that memory however many files and
// parts are in flight; a lease waits while the pool is full. Returned buffers are kept for reuse
// (allocating 16 MiB per part costs page faults on every part) within the same bound.
import { abortErrorFrom } from './errors.js';

export interface BufferLease {
  /** Exactly the bytes asked for; do not keep it after release(). */
  readonly buffer: Buffer;
  /** Returns the memory to the pool; calling it again does nothing. */
  release(): void;
}

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class BufferPool {
  /** Bytes held by leases. */
  private leased = 0;
  private peak = 0;
  /** Returned buffers kept for reuse, by length; their bytes count against the capacity too. */
  private readonly spare = new Map<number, Buffer[]>();
  private spareBytes = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly capacityBytes: number) {
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes <= 0) {
      throw new RangeError(`a buffer pool needs a positive capacity, not ${capacityBytes}`);
    }
  }

  /** Bytes leased right now (for tests and figures). */
  get leasedBytes(): number {
    return this.leased;
  }

  /** The most bytes ever leased at once (for tests and figures). */
  get peakLeasedBytes(): number {
    return this.peak;
  }

  /**
   * A buffer of `bytes`, once the pool has room. Leases are granted in the order they were asked
   * for, so a large one is not starved by small ones, and the parts of one file (asked for in
   * order) are granted in order. One larger than the whole pool is granted when nothing else is
   * leased, rather than stall its file forever; nothing asks for one: a part larger than the pool
   * is sent in pieces, and the configuration keeps streamed parts and small files within it.
   */
  lease(bytes: number, signal?: AbortSignal): Promise<BufferLease> {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`cannot lease ${bytes} bytes`);
    if (signal?.aborted) return Promise.reject(abortErrorFrom(signal));
    if (this.waiters.length === 0 && this.fits(bytes)) return Promise.resolve(this.grant(bytes));
    return new Promise<BufferLease>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(abortErrorFrom(signal!));
        this.serveWaiters(); // the head may have been the one blocking the others
      };
      const waiter: Waiter = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.grant(bytes));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private fits(bytes: number): boolean {
    return this.leased === 0 || this.leased + bytes <= this.capacityBytes;
  }

  private grant(bytes: number): BufferLease {
    this.leased += bytes;
    this.peak = Math.max(this.peak, this.leased);
    const buffer = this.takeSpare(bytes) ?? Buffer.allocUnsafe(bytes);
    let released = false;
    return {
      buffer,
      release: () => {
        if (released) return;
        released = true;
        this.leased -= bytes;
        this.keepSpare(buffer);
        this.serveWaiters();
      },
    };
  }

  private takeSpare(bytes: number): Buffer | undefined {
    const buffer = this.spare.get(bytes)?.pop();
    if (buffer !== undefined) {
      this.spareBytes -= bytes;
      return buffer;
    }
    // Room for a new buffer of this length: spares of other lengths make way (the GC frees them).
    if (this.leased + this.spareBytes > this.capacityBytes) this.dropSpares();
    return undefined;
  }

  private keepSpare(buffer: Buffer): void {
    // Tiny buffers are cheap to allocate; only part-sized ones are worth keeping.
    if (buffer.length < 1024 * 1024) return;
    if (this.leased + this.spareBytes + buffer.length > this.capacityBytes) return;
    const list = this.spare.get(buffer.length) ?? [];
    list.push(buffer);
    this.spare.set(buffer.length, list);
    this.spareBytes += buffer.length;
  }

  private dropSpares(): void {
    this.spare.clear();
    this.spareBytes = 0;
  }

  private serveWaiters(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) this.waiters.shift()!.grant();
  }
}
