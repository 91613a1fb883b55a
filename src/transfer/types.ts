import type { MultipartState, UploadedPart, ValidationMethod } from '../domain/model.js';

/** One file version to put at one key. */
export interface UploadJob {
  filePath: string;
  bucket: string;
  key: string;
  /** The version the engine expects: if the file on disk differs, before or after reading, the upload does not count. */
  size: number;
  mtimeMs: number;
  /** Aborts every request in flight; the upload then rejects with an AbortError ('AbortError' name). */
  signal: AbortSignal;
}

/** Progress the engine persists as it happens, so that a crash loses at most the parts in flight. */
export interface UploadProgressListener {
  /** A multipart upload was created (or replaced a stale one): persist it before any part is sent. */
  multipartCreated(state: { s3UploadId: string; partSize: number }): Promise<void>;
  /** One part is stored on S3 and its ETag checked. */
  partUploaded(part: UploadedPart): Promise<void>;
  /** Bytes of this file confirmed by S3 so far (parts already on S3 count at resume). */
  bytesUploaded(total: number): void;
}

export interface UploadResult {
  /** The ETag S3 returned, with its quotes stripped. */
  etag: string;
  validation: ValidationMethod;
  /** 'single' for one PutObject; 'multipart' otherwise. */
  method: 'single' | 'multipart';
  /** Bytes sent over the network during this call (resumed parts are not sent again). */
  bytesSent: number;
  /** Parts found already on S3 and reused (multipart resume). */
  partsReused: number;
}

export type ResumeState = Pick<MultipartState, 's3UploadId' | 'partSize' | 'parts' | 'size' | 'mtimeMs'>;

export interface Uploader {
  /**
   * Uploads the file at job.filePath to job.bucket/job.key. Below the multipart threshold: one
   * PutObject with Content-MD5. At or above: a multipart upload, resumed from `resume` when that
   * belongs to the same file version (S3's ListParts decides which parts are really there; the
   * rest are sent), else a stale upload is aborted and a new one created.
   * Throws FileChangedError / FileVanishedError (transfer/errors.ts) when the file is not the
   * version the job names; S3 errors after retries as they are classified in transfer/errors.ts.
   */
  upload(
    job: UploadJob,
    resume: ResumeState | undefined,
    progress: UploadProgressListener,
  ): Promise<UploadResult>;
  /** Aborts a multipart upload; an upload S3 no longer knows counts as aborted. */
  abortMultipart(bucket: string, key: string, s3UploadId: string): Promise<void>;
}
