// Tells when an upload's phase changes (upload.phase). The phase is computed, never stored (see
// progress.ts), so it is looked at again: soon after a file of the upload starts, completes or fails,
// and on a slow tick for every watched upload, which catches what no event announces (a scan that
// found new files, a failed file's requeue coming due). One read of the stored counts per look, for
// every upload looked at together.
import type { ServiceEvent } from '../domain/events.js';
import type { UploadCounts } from '../domain/model.js';
import type { UploadPhase } from '../domain/status.js';
import type { Logger } from '../logger.js';

export interface PhaseWatchOptions {
  /** The stored counts of these uploads (one read for all). */
  counts(uploadIds: readonly string[]): Promise<Map<string, UploadCounts>>;
  /** The phase of a watched upload from its counts; undefined once it is no longer watched. */
  phaseOf(uploadId: string, counts: UploadCounts): UploadPhase | undefined;
  /** The uploads being watched now. */
  watched(): Iterable<string>;
  publish(event: ServiceEvent): void;
  logger: Logger;
  /** How soon a look follows a file's event: events close together share one read. */
  settleMs?: number;
  /** The slow tick over every watched upload. */
  tickMs?: number;
  now?: () => number;
}

const DEFAULT_SETTLE_MS = 200;
const DEFAULT_TICK_MS = 2000;

export class PhaseWatch {
  private readonly phases = new Map<string, UploadPhase>();
  private readonly due = new Set<string>();
  private soon: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private looking: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: PhaseWatchOptions) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.tick = setInterval(() => {
      for (const uploadId of this.options.watched()) this.due.add(uploadId);
      this.look();
    }, this.options.tickMs ?? DEFAULT_TICK_MS);
    this.tick.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tick);
    clearTimeout(this.soon);
    await this.looking;
  }

  /** Something happened to the upload that may change its phase: look soon. */
  lookSoon(uploadId: string): void {
    if (this.stopped) return;
    this.due.add(uploadId);
    this.soon ??= setTimeout(() => {
      this.soon = undefined;
      this.look();
    }, this.options.settleMs ?? DEFAULT_SETTLE_MS);
  }

  /**
   * The upload is watched from now on and its first scan is about to run: its phase is scanning,
   * told now. A look would come after the scan of a small folder had ended, and miss it.
   */
  watching(uploadId: string): void {
    if (this.stopped) return;
    this.change(uploadId, 'scanning');
  }

  /** The upload was cancelled or completed: its last phase is told now, and it is looked at no more. */
  ended(uploadId: string, phase: 'cancelled' | 'completed'): void {
    this.change(uploadId, phase);
    this.phases.delete(uploadId);
    this.due.delete(uploadId);
  }

  /** One look at a time; the uploads that come due meanwhile wait for the next. */
  private look(): void {
    this.looking = this.looking.then(() => this.lookNow());
  }

  private async lookNow(): Promise<void> {
    if (this.stopped || this.due.size === 0) return;
    const uploadIds = [...this.due];
    this.due.clear();
    let counts: Map<string, UploadCounts>;
    try {
      counts = await this.options.counts(uploadIds);
    } catch (error) {
      // The next tick looks again; the database's trouble is logged where it matters more.
      this.options.logger.debug({ err: error }, 'could not read counts to follow phases');
      return;
    }
    for (const uploadId of uploadIds) {
      const uploadCounts = counts.get(uploadId);
      const phase = uploadCounts && this.options.phaseOf(uploadId, uploadCounts);
      if (phase === undefined) this.phases.delete(uploadId);
      else this.change(uploadId, phase);
    }
  }

  private change(uploadId: string, phase: UploadPhase): void {
    const previousPhase = this.phases.get(uploadId) ?? null;
    if (previousPhase === phase) return;
    this.phases.set(uploadId, phase);
    this.options.publish({ type: 'upload.phase', uploadId, phase, previousPhase, at: this.now() });
  }
}
