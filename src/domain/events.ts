// The facts the service tells as they happen: one typed stream that the API's event stream, the
// metrics and the logs all read, so that they never disagree (docs/events.md). Times are epoch ms.
import type { EpochMs, ScanKind, UploadMethod } from './model.js';
import type { UploadPhase } from './status.js';

/** What every event about one file of an upload carries. */
interface FileFacts {
  uploadId: string;
  taskId: number;
  /** The file's path under the upload's folder, with `/` separators. */
  path: string;
  at: EpochMs;
}

export type ServiceEvent =
  | { type: 'upload.created'; uploadId: string; at: EpochMs }
  | { type: 'upload.cancelled'; uploadId: string; at: EpochMs }
  /** A one-shot upload's scan finished and every file it found is completed: it is watched no more. */
  | { type: 'upload.completed'; uploadId: string; at: EpochMs }
  /**
   * The upload's files are all in S3 (see Arrival): a marker went up after every other known file,
   * or a one-shot upload completed with no marker. The document its notification POSTs.
   */
  | {
      type: 'upload.arrived';
      uploadId: string;
      bucket: string;
      prefix: string;
      files: number;
      bytes: number;
      manifestKey: string | null;
      markerKey: string | null;
      at: EpochMs;
    }
  /** previousPhase is null for the first phase the service sees after it starts watching. */
  | {
      type: 'upload.phase';
      uploadId: string;
      phase: UploadPhase;
      previousPhase: UploadPhase | null;
      at: EpochMs;
    }
  /**
   * A scan of the upload's folder finished; error is why it failed, or null. filesNotUtf8: matching
   * files it skipped because their name is not valid UTF-8 (see ScanReport).
   */
  | {
      type: 'upload.scanned';
      uploadId: string;
      kind: ScanKind;
      filesSeen: number;
      filesChanged: number;
      filesNotUtf8: number;
      durationMs: number;
      error: string | null;
      at: EpochMs;
    }
  /** attempt: the task's claims for this version of the file, this one included (1 the first time). */
  | (FileFacts & { type: 'file.started'; key: string; size: number; attempt: number })
  /** Bytes S3 confirmed so far; throttled to a few per second per file. size grows with a growing file. */
  | (FileFacts & { type: 'file.progress'; bytesUploaded: number; size: number })
  /**
   * bytesSent: what went over the wire in this run (0 when nothing had to be sent); method 'unchanged':
   * only the file's metadata changed since its last upload, so nothing was sent.
   */
  | (FileFacts & {
      type: 'file.completed';
      key: string;
      size: number;
      bytesSent: number;
      method: UploadMethod;
      /** Why it was not sent (method 'skipped'); null otherwise. */
      skipped: string | null;
    })
  /** size: of the file version that failed. */
  | (FileFacts & { type: 'file.failed'; key: string; size: number; message: string });

export type ServiceEventType = ServiceEvent['type'];

/** The event of the given type. */
export type EventOf<T extends ServiceEventType> = Extract<ServiceEvent, { type: T }>;

export type EventListener = (event: ServiceEvent) => void;

/** Where the events can be heard, as they happen (the engine's bus); subscribe() returns the way out. */
export interface EventSource {
  subscribe(listener: EventListener): () => void;
}
