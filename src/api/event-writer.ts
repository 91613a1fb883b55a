// One client of the event stream, and the only memory it may cost: frames wait in a queue bounded
// in events and in bytes until the stream flushes (a few times a second), and are then written in
// one write; while the socket is full they wait for it to drain. One write per flush rather than
// one per event: each write is a system call and a wake-up of the reader, which cost the service
// more than everything else the stream does. A queue that reaches either bound while the socket
// takes what it is given is written at once; one that reaches it while the socket is full belongs
// to a client that stopped reading (or reads too slowly to ever catch up): it is dropped, its
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
  private queue: string[] = [];
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

  /**
   * Queues a frame for the next flush(); drops the client past the limits. `bytes` is the frame's
   * length in UTF-8, when the caller knows it already (one frame goes to many clients).
   */
  write(frame: string, bytes: number = Buffer.byteLength(frame)): void {
    if (this.done) return;
    // A queue that fills up before the next flush, while the socket takes what it is given, holds
    // what a burst produced, not what the client failed to read: it goes out now.
    if (this.wouldOverflow(bytes)) this.flush();
    if (this.wouldOverflow(bytes)) {
      this.drop();
      return;
    }
    this.queue.push(frame);
    this.queuedBytes += bytes;
  }

  private wouldOverflow(bytes: number): boolean {
    return this.queue.length + 1 > this.limits.maxEvents || this.queuedBytes + bytes > this.limits.maxBytes;
  }

  /** Writes every queued frame, in one write, unless the socket is full: then when it drains. */
  readonly flush = (): void => {
    if (this.done || this.queue.length === 0 || this.out.writableNeedDrain) return;
    const frames = this.queue.length === 1 ? this.queue[0]! : this.queue.join('');
    this.queue = [];
    this.queuedBytes = 0;
    this.out.write(frames);
  };

  /**
   * Ends the stream (the service is stopping). A client that is keeping up gets what is queued and
   * the end of the response; one whose socket is full would hold the connection open for ever, so
   * its connection is closed at once.
   */
  end(): void {
    if (this.done) return;
    if (this.out.writableNeedDrain) this.out.destroy();
    else this.out.end(this.queue.join(''));
    this.stop();
  }

  private drop(): void {
    const backlog = this.backlog;
    // Destroyed, not ended: an end would wait behind the bytes the client is not reading.
    this.out.destroy();
    this.stop();
    this.hooks.dropped(backlog);
  }

  private readonly stop = (): void => {
    if (this.done) return;
    this.done = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.out.off('drain', this.flush);
    this.hooks.closed();
  };
}
