// The watch leases this instance holds: which live uploads it watches (scans, follows by
// file-system events, rescans). It takes a lease at start, when an upload is created through it,
// and at each heartbeat for uploads no live instance watches (new ones created on another instance,
// or a dead instance's, once its lease expired); it starts the upload's monitor for each lease
// taken and stops it for each lease a heartbeat says it lost. A clean stop releases them all, for
// the others to take at their next beat.
import type { Upload } from '../domain/model.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';

export interface WatchLeasesOptions {
  store: Pick<Store, 'instanceId' | 'takeWatchLeases' | 'releaseWatchLeases'>;
  /** ALLOWED_SOURCE_ROOTS: only uploads under them are taken. */
  sourceRoots: readonly string[] | null;
  logger: Logger;
  /** Starts watching an upload whose lease was just taken. */
  watch: (upload: Upload) => void;
  /** Stops watching an upload whose lease was lost (another instance may watch it already). */
  unwatch: (uploadId: string) => void;
}

export class WatchLeases {
  private readonly held = new Set<string>();
  private stopped = false;

  constructor(private readonly options: WatchLeasesOptions) {}

  /** The uploads this instance watches now: read before each heartbeat. */
  watching(): string[] {
    return [...this.held];
  }

  holds(uploadId: string): boolean {
    return this.held.has(uploadId);
  }

  /**
   * Takes the watch leases of live uploads nobody watches (its fair share, see
   * Store.takeWatchLeases), or of the one upload named, and watches them.
   */
  async take(uploadId?: string): Promise<void> {
    if (this.stopped) return;
    const { store, sourceRoots, logger } = this.options;
    const taken = await store.takeWatchLeases({ sourceRoots, uploadId });
    for (const { upload, previous } of taken) {
      // A stop that came meanwhile: the lease goes with the others in release().
      if (this.stopped) return;
      this.held.add(upload.uploadId);
      const instanceId = store.instanceId;
      if (previous !== null && previous !== instanceId) {
        logger.info(
          { uploadId: upload.uploadId, instanceId, previousWatcher: previous },
          'watch lease taken over: the instance that watched this upload let its lease expire; watching it here',
        );
      } else {
        logger.info({ uploadId: upload.uploadId, instanceId }, 'watch lease taken: watching this upload');
      }
      this.options.watch(upload);
    }
  }

  /**
   * After a heartbeat: `watchingBefore` is what this instance watched when the beat began, `renewed`
   * the leases the beat renewed. One watched before and not renewed was lost: its lease expired
   * before a beat could renew it (the process was paused or cut off), or its upload ended.
   */
  renewed(watchingBefore: readonly string[], renewed: readonly string[]): void {
    const still = new Set(renewed);
    for (const uploadId of watchingBefore) {
      if (still.has(uploadId) || !this.held.delete(uploadId)) continue;
      this.options.logger.warn(
        { uploadId, instanceId: this.options.store.instanceId },
        'watch lease lost: no heartbeat renewed it within LEASE_SECONDS, or the upload ended; stopping its monitor here',
      );
      this.options.unwatch(uploadId);
    }
  }

  /** The upload ended (cancelled, completed): its lease went with it. */
  forget(uploadId: string): void {
    this.held.delete(uploadId);
  }

  /** Takes no more leases from now on. */
  stop(): void {
    this.stopped = true;
  }

  /** A clean stop, once the monitors are stopped: every lease goes, for others to take. */
  async release(): Promise<void> {
    this.stopped = true;
    if (this.held.size === 0) return;
    const uploadIds = this.watching();
    this.held.clear();
    await this.options.store.releaseWatchLeases();
    this.options.logger.info(
      { uploadIds, instanceId: this.options.store.instanceId },
      'watch leases released: other instances take these uploads at their next heartbeat',
    );
  }
}
