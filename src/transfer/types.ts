import type { ExistingAtKey } from './existing-object.js';
import type { ObjectChunk, ObjectTarget, StreamObjectOptions, WrittenObject } from './stream-object.js';
import type { ObjectProperties } from '../domain/object-properties.js';
import type { MultipartState, UploadMethod, UploadedPart, ValidationMethod } from '../domain/model.js';

/** The object this service last completed at the key: what an append copies from. */
export interface PreviousUpload {
  size: number;
  /** Normalised ETag. */
  etag: string;
  /** Hex SHA-256 of its content. */
  sha256: string;
}

/** What an upload this service completed at the key stored, as it was recorded. */
export interface UploadedContent {
  etag: string;
  validation: ValidationMethod;
  /** Hex SHA-256. */
  sha256: string;
}

/** One file version to put at one key. */
export interface FileTransfer {
  filePath: string;
  bucket: string;
  key: string;
  /** What the object carries besides its bytes, on every write that makes it (its Content-Type comes from the key). */
  objectProperties: ObjectProperties;
  /**
   * The version the engine expects: if the file on disk differs, before or after reading, the
   * upload does not count. A file uploaded while it grows is followed instead, from this version on.
   */
  size: number;
  mtimeMs: number;
  /** null: not recorded (a task from before they were), not checked. */
  ino: number | null;
  ctimeMs: number | null;
  /**
   * The file is still being written: upload it as it grows (see part-sources/followed.ts) rather than
   * expecting the version above.
   */
  stream: boolean;
  /** A file whose modification time is this recent is still being written. */
  settleMs: number;
  /** The object already at the key (APPEND_MODE=auto), when this service uploaded it. */
  previous: PreviousUpload | undefined;
  /**
   * Only the file's ctime differs from this upload's version (chmod, chown, a new hard link): the
   * file is hashed first, and nothing is sent when its content is still this upload's.
   */
  hashFirst?: UploadedContent;
  /**
   * An object is already at the key, and this upload has not sent the file before: with
   * if_exists 'skip_identical' the file is hashed first and not sent when the object holds the
   * same bytes; with 'skip' it is not sent at all (see existing-object.ts).
   */
  existing?: ExistingAtKey | undefined;
  /** Aborts every request in flight; the upload then rejects with an AbortError ('AbortError' name). */
  signal: AbortSignal;
  /**
   * Fields the transfer layer adds to its log lines about this file (the caller's ids). Its child
   * logger is made at the first line: most files are uploaded without one.
   */
  logFields?: Record<string, unknown>;
}

/** A multipart upload as it is saved, before any part is sent. */
export interface NewMultipartUpload {
  s3UploadId: string;
  partSize: number;
  streamed: boolean;
  copiedBytes: number;
  copySourceEtag: string | null;
}

/** Progress the engine persists as it happens, so that a crash loses at most the parts in flight. */
export interface UploadProgressListener {
  /** A multipart upload was created (or replaced a stale one): persist it before any part is sent. */
  multipartCreated(upload: NewMultipartUpload): Promise<void>;
  /** One part is stored on S3 and its ETag checked. */
  partUploaded(part: UploadedPart): Promise<void>;
  /** The saved multipart upload was aborted on S3: forget it. */
  multipartAborted(): Promise<void>;
  /**
   * Bytes of this file confirmed by S3 so far (parts already on S3 count at resume), and, for a
   * file uploaded while it grows, its size so far.
   */
  bytesUploaded(total: number, sizeSoFar?: number): void;
}

export interface UploadResult {
  /** The ETag S3 returned, with its quotes stripped (of the object found, for a skipped file). */
  etag: string;
  /** null for a skipped file: nothing was sent to check. */
  validation: ValidationMethod | null;
  /** Hex SHA-256 of the content uploaded; for a skipped file, when it is known. */
  sha256: string | null;
  /** Why nothing was sent (method 'skipped'). */
  skipped?: string | undefined;
  /** The version uploaded: a file uploaded while it grew ends at the version it settled at. */
  size: number;
  mtimeMs: number;
  ino: number | null;
  ctimeMs: number | null;
  /**
   * How it went (see UploadMethod); 'unchanged': the file hashed to transfer.hashFirst's content;
   * 'skipped': an object already at the key stays (transfer.existing).
   */
  method: UploadMethod;
  /** Bytes sent over the network during this call (resumed parts are not sent again). */
  bytesSent: number;
  /** Bytes copied on the server from the object already at the key. */
  bytesCopied: number;
  /** Parts found already on S3 and reused (multipart resume). */
  partsReused: number;
}

export type ResumeState = Pick<
  MultipartState,
  | 's3UploadId'
  | 'partSize'
  | 'parts'
  | 'size'
  | 'mtimeMs'
  | 'ino'
  | 'ctimeMs'
  | 'streamed'
  | 'copiedBytes'
  | 'copySourceEtag'
>;

export interface Uploader {
  /**
   * Uploads the file at transfer.filePath to transfer.bucket/transfer.key:
   * - a settled file below the multipart threshold: one PutObject with Content-MD5;
   * - a settled file at or above it: a multipart upload, resumed from `resume` when that belongs
   *   to the same file version (S3's ListParts decides which parts are really there);
   * - a file still being written (STREAM_GROWING_FILES), or one that grew by appends since
   *   `transfer.previous` was uploaded (APPEND_MODE=auto): parts sent as the bytes exist, after the old
   *   object's bytes copied on the server; only appends are accepted (see part-sources/).
   * A saved upload that cannot go on is aborted. Throws FileChangedError / FileRewrittenError /
   * FileVanishedError (transfer/errors.ts) when the file is not what it should be; S3 errors after
   * retries as they are classified in transfer/errors.ts.
   */
  upload(
    transfer: FileTransfer,
    resume: ResumeState | undefined,
    progress: UploadProgressListener,
  ): Promise<UploadResult>;
  /** Aborts a multipart upload; an upload S3 no longer knows counts as aborted. */
  abortMultipart(bucket: string, key: string, s3UploadId: string): Promise<void>;
  /**
   * Writes an object from a stream of bytes of unknown length (a manifest), in memory bounded by
   * two parts: see streamObject in stream-object.ts.
   */
  writeObject(
    target: ObjectTarget,
    chunks: AsyncIterable<ObjectChunk>,
    signal: AbortSignal,
    options?: StreamObjectOptions,
  ): Promise<WrittenObject>;
}
