// One client of the event stream, and the only memory it may cost: frames go straight to its
// socket while the socket takes them; once write() says the socket is full, they wait in a queue
// bounded in events and in bytes, and are written as the socket drains. A client whose queue would
// pass either bound has stopped reading (or reads too slowly to ever catch up): it is dropped, its
// connection closed, rather than buffered without end.
import type { Writable } from 'node:stream';

export interface QueueLimits {
  /** The most frames that may wait for one client. */
  maxEvents: number;
  /** The most bytes (UTF-8) that may wait for one client. */
  maxBytes: number;
}

export const DEFAULT_QUEUE_LIMITS: QueueLimits = { maxEvents: 1000, maxBytes: 1024 * 1024 };

/** What waited for a client when it was dropped. */
export interface Backlog {
  events: number;
  bytes: number;
}

export class EventWriter {
  private readonly queue: { frame: string; bytes: number }[] = [];
  private queuedBytes = 0;
  private done = false;

  /**
   * `dropped` is called once, when the queue overflows, after the connection is destroyed. The
   * writer also stops on its own when `out` closes or fails; `closed` is called then (and after a
   * drop or an end), once.
   */
  constructor(
    private readonly out: Writable,
    private readonly limits: QueueLimits,
    private readonly hooks: { dropped(backlog: Backlog): void; closed(): void },
  ) {
    out.on('drain', this.flush);
    out.once('close', this.stop);
    // A failed socket closes too; the error itself is the server's to log.
    out.on('error', this.stop);
  }

  get isOpen(): boolean {
    return !this.done;
  }

  /** What waits now, for tests and the log. */
  get backlog(): Backlog {
    return { events: this.queue.length, bytes: this.queuedBytes };
  }

  /** Sends a frame now, or queues it while the socket is full; drops the client past the limits. */
  write(frame: string): void {
    if (this.done) return;
    if (this.queue.length === 0 && !this.out.writableNeedDrain) {
      this.out.write(frame);
      return;
    }
    const bytes = Buffer.byteLength(frame);
    if (this.queue.length + 1 > this.limits.maxEvents || this.queuedBytes + bytes > this.limits.maxBytes) {
      this.drop();
      return;
    }
    this.queue.push({ frame, bytes });
    this.queuedBytes += bytes;
  }

  /**
   * Ends the stream (the service is stopping). A client that is keeping up gets the end of the
   * response; one with frames still waiting would hold the connection open for ever, so its
   * connection is closed at once.
   */
  end(): void {
    if (this.done) return;
    if (this.backlog.events > 0 || this.out.writableLength > 0) this.out.destroy();
    else this.out.end();
    this.stop();
  }

  private drop(): void {
    const backlog = this.backlog;
    // Destroyed, not ended: an end would wait behind the bytes the client is not reading.
    this.out.destroy();
    this.stop();
    this.hooks.dropped(backlog);
  }

  private readonly flush = (): void => {
    // shift() moves at most maxEvents entries: cheap next to the write itself.
    let next = this.done ? undefined : this.queue.shift();
    while (next !== undefined) {
      this.queuedBytes -= next.bytes;
      if (!this.out.write(next.frame)) return;
      next = this.queue.shift();
    }
  };

  private readonly stop = (): void => {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.out.off('drain', this.flush);
    this.hooks.closed();
  };
}
