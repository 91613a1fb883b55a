// What follows the upload of an upload's files (docs/run-folders.md): the manifest written before
// each marker, when a one-shot upload completes and when a watched upload becomes idle with files
// completed since the last one; the arrival told on the event stream; its notification sent.
import type { ServiceEvent } from '../domain/events.js';
import type { Arrival, EpochMs, FileTask, Upload } from '../domain/model.js';
import type { UploadArrived } from '../arrival/notification.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { Uploader } from '../transfer/types.js';
import { writeManifest } from '../arrival/manifest.js';
import type { MarkerSteps } from './task-runner.js';

/** A manifest that could not be written when its upload became idle is tried again after this. */
const MANIFEST_RETRY_MS = 30_000;

export interface ArrivalsOptions {
  store: Store;
  uploader: Pick<Uploader, 'writeObject'>;
  logger: Logger;
  publish: (event: ServiceEvent) => void;
  /** Sends the pending notification of an upload's latest arrival. */
  notify: (upload: Upload) => void;
  now?: () => number;
}

/**
 * Whether the upload's manifest misses files: none was written, or a file completed after it
 * (and after the latest arrival, whose marker completed after the manifest it followed).
 */
export function manifestStale(upload: Upload): boolean {
  if (upload.manifestKey === null) return false;
  if (upload.manifest === null || upload.manifest.key !== upload.manifestKey) return true;
  const since = Math.max(upload.manifest.writtenAt, upload.arrival?.at ?? 0);
  return (upload.lastCompletedAt ?? 0) > since;
}

/** The upload.arrived event of an upload's arrival: what the event stream tells and the notification sends. */
export function arrivalEvent(upload: Upload, arrival: Arrival): UploadArrived {
  const manifestKey = upload.manifestKey !== null && upload.manifest !== null ? upload.manifest.key : null;
  return {
    type: 'upload.arrived',
    uploadId: upload.uploadId,
    bucket: upload.destinationBucket,
    prefix: upload.destinationPrefix,
    files: arrival.files,
    bytes: arrival.bytes,
    manifestKey,
    markerKey: arrival.markerKey,
    at: arrival.at,
  };
}

export class Arrivals implements MarkerSteps {
  private readonly now: () => number;
  private readonly log: Logger;
  /** One manifest at a time per upload: the latest write lists what the earlier one would have. */
  private readonly writing = new Map<string, Promise<void>>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private readonly stopping = new AbortController();

  constructor(private readonly options: ArrivalsOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.logger;
  }

  /** The manifest goes before the marker, so that a reader the marker wakes finds every file in it. */
  async beforeMarker(upload: Upload, signal: AbortSignal): Promise<void> {
    if (upload.manifestKey !== null) await this.writeManifestOf(upload, signal);
  }

  markerUploaded(task: FileTask): void {
    void this.tellArrival(task.uploadId, (upload) => upload.arrival?.markerKey === task.objectKey);
  }

  /** Before a one-shot upload is recorded completed: its manifest, unless the marker's is still whole. */
  async beforeCompletion(upload: Upload, signal: AbortSignal): Promise<void> {
    if (manifestStale(upload)) await this.writeManifestOf(upload, signal);
  }

  /** A one-shot upload was recorded completed at `at`: the arrival it recorded, if it did, is told. */
  completed(uploadId: string, at: EpochMs): void {
    void this.tellArrival(
      uploadId,
      (upload) => upload.arrival?.at === at && upload.arrival.markerKey === null,
    );
  }

  /**
   * A watched upload became idle: a manifest that misses files is written again, once a marker
   * has gone up (before that, the marker writes it), or at once for an upload with no markers.
   */
  idle(uploadId: string): void {
    void this.rewriteIfStale(uploadId);
  }

  stop(): void {
    this.stopping.abort();
    for (const timer of this.retries.values()) clearTimeout(timer);
    this.retries.clear();
  }

  private async rewriteIfStale(uploadId: string): Promise<void> {
    this.retries.delete(uploadId);
    if (this.stopping.signal.aborted) return;
    try {
      const upload = await this.options.store.getUpload(uploadId);
      if (!upload || upload.status !== 'active' || !upload.watch || !manifestStale(upload)) return;
      if (upload.completeMarkers.length > 0 && upload.arrival === null) return;
      await this.writeManifestOf(upload, this.stopping.signal);
    } catch (error) {
      if (this.stopping.signal.aborted) return;
      this.log.error(
        { err: error, uploadId, retryInSeconds: MANIFEST_RETRY_MS / 1000 },
        'cannot write the manifest of the idle upload; trying again',
      );
      const timer = setTimeout(() => void this.rewriteIfStale(uploadId), MANIFEST_RETRY_MS);
      timer.unref();
      this.retries.set(uploadId, timer);
    }
  }

  private async writeManifestOf(upload: Upload, signal: AbortSignal): Promise<void> {
    const { uploadId } = upload;
    const key = upload.manifestKey!;
    // After the write before it, whatever became of that one.
    const previous = this.writing.get(uploadId) ?? Promise.resolve();
    const write = previous.then(async () => {
      const startedAt = performance.now();
      const manifest = await writeManifest({
        store: this.options.store,
        uploader: this.options.uploader,
        upload,
        key,
        now: this.now(),
        signal,
      });
      const { files, bytes, sha256 } = manifest;
      const ms = Math.round(performance.now() - startedAt);
      this.log.info({ uploadId, key, files, bytes, sha256, ms }, 'manifest written');
    });
    const settled = write.catch(() => undefined);
    this.writing.set(uploadId, settled);
    try {
      await write;
    } finally {
      if (this.writing.get(uploadId) === settled) this.writing.delete(uploadId);
    }
  }

  /** Reads the upload; when `recorded` says its arrival is the one just recorded, tells it and notifies. */
  private async tellArrival(uploadId: string, recorded: (upload: Upload) => boolean): Promise<void> {
    try {
      const upload = await this.options.store.getUpload(uploadId);
      if (!upload?.arrival || !recorded(upload)) return;
      const event = arrivalEvent(upload, upload.arrival);
      this.options.publish(event);
      const { files, bytes, markerKey, manifestKey } = event;
      this.log.info(
        { uploadId, files, bytes, markerKey, manifestKey },
        'upload arrived: every known file is in S3',
      );
      if (upload.notification?.status === 'pending') this.options.notify(upload);
    } catch (error) {
      // The notification stays pending in the database: the next start sends it.
      this.log.error({ err: error, uploadId }, 'cannot read the arrival just recorded');
    }
  }
}
