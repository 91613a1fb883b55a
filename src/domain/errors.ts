// The errors of the domain and the application service: each is a DomainError with a stable code,
// a message for people and, when one field of the order is at fault, details naming it. They say
// what is wrong, not how it is answered: the HTTP status of each code, its description and the
// errors of HTTP itself (a malformed body, a wrong method, a missing token) are the API's error
// catalogue (api/errors.ts), which turns a DomainError into its reply.

import type { Upload } from './model.js';

export const DOMAIN_ERROR_CODES = [
  'invalid_source_folder',
  'invalid_bucket_name',
  'invalid_pattern',
  'invalid_destination_prefix',
  'invalid_upload_id',
  'invalid_cursor',
  'invalid_object_properties',
  'invalid_complete_markers',
  'invalid_manifest_key',
  'invalid_notify_url',
  'source_folder_not_allowed',
  'upload_not_found',
  'upload_id_taken',
  'upload_overlaps',
  'upload_cancelled',
  'upload_not_watched',
  'bucket_not_found',
  's3_credentials_rejected',
  's3_credentials_missing',
  's3_unavailable',
  'database_unavailable',
] as const;

export type DomainErrorCode = (typeof DOMAIN_ERROR_CODES)[number];

/** One field of an order that is wrong; `field` is the API's snake_case name (a path for nested values). */
export interface ErrorDetail {
  field: string;
  message: string;
}

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'DomainError';
  }
}

// --- one function per error, so that callers never build codes by hand

/** One of the checks a new upload goes through failed on a single field. */
function invalidField(code: DomainErrorCode, field: string, message: string): DomainError {
  return new DomainError(code, `${field}: ${message}`, [{ field, message }]);
}

/** `reason` completes "source_folder '<folder>' ...", e.g. "does not exist". */
export function invalidSourceFolder(folder: string, reason: string): DomainError {
  return invalidField('invalid_source_folder', 'source_folder', `'${folder}' ${reason}`);
}

export function invalidBucketName(name: string, problem: string): DomainError {
  return invalidField(
    'invalid_bucket_name',
    'destination_bucket',
    `'${name}' is not a valid bucket name: ${problem}`,
  );
}

export function invalidPattern(pattern: string, problem: string): DomainError {
  return invalidField('invalid_pattern', 'pattern', `'${pattern}' is not a valid pattern: ${problem}`);
}

export function invalidDestinationPrefix(prefix: string, problem: string): DomainError {
  return invalidField(
    'invalid_destination_prefix',
    'destination_prefix',
    `'${prefix}' is not a valid prefix: ${problem}`,
  );
}

export function invalidCompleteMarker(marker: string, problem: string): DomainError {
  return invalidField(
    'invalid_complete_markers',
    'complete_markers',
    `'${marker}' is not a valid marker pattern: ${problem}`,
  );
}

export function invalidManifestKey(key: string, problem: string): DomainError {
  return invalidField(
    'invalid_manifest_key',
    'manifest_key',
    `'${key}' is not a valid manifest key: ${problem}`,
  );
}

/** `url` is shown redacted: a webhook's URL may hold a secret. */
export function invalidNotifyUrl(url: string, problem: string): DomainError {
  return invalidField('invalid_notify_url', 'notify_url', `'${url}' ${problem}`);
}

/** `rule` says which ids are accepted, so the client can fix its order. */
export function invalidUploadId(uploadId: string, rule: string): DomainError {
  return invalidField('invalid_upload_id', 'upload_id', `'${uploadId}' is not a valid upload id: ${rule}`);
}

/** A property of the upload's objects breaks S3's rules; the problem names the field. */
export function invalidObjectProperties(problem: ErrorDetail): DomainError {
  return new DomainError('invalid_object_properties', `${problem.field}: ${problem.message}`, [problem]);
}

export function invalidCursor(cursor: string): DomainError {
  return invalidField(
    'invalid_cursor',
    'cursor',
    `'${cursor}' is not a cursor of this list: pass the next_cursor of the previous page, or no cursor for the first page`,
  );
}

export function sourceFolderNotAllowed(folder: string, allowedRoots: readonly string[]): DomainError {
  return invalidField(
    'source_folder_not_allowed',
    'source_folder',
    `'${folder}' is outside the folders this service may read: ${allowedRoots.join(', ')}`,
  );
}

export function uploadNotFound(uploadId: string): DomainError {
  return new DomainError('upload_not_found', `No upload has upload_id '${uploadId}'.`);
}

export function uploadIdTaken(uploadId: string): DomainError {
  return new DomainError(
    'upload_id_taken',
    `An upload with upload_id '${uploadId}' already exists: choose another id, or omit upload_id to get a generated one.`,
  );
}

/** `other` is the live upload whose objects the new one could overwrite. */
export function uploadOverlaps(
  other: Pick<Upload, 'uploadId' | 'sourceFolder' | 'destinationBucket' | 'destinationPrefix'>,
): DomainError {
  const prefix = other.destinationPrefix === '' ? 'no prefix' : `prefix '${other.destinationPrefix}'`;
  const message = `overlaps the keys of the live upload '${other.uploadId}' (folder '${other.sourceFolder}', bucket '${other.destinationBucket}', ${prefix})`;
  return new DomainError(
    'upload_overlaps',
    `destination_prefix: ${message}; whichever uploads a key last would win. Choose another bucket or prefix, cancel '${other.uploadId}', or send allow_overlap: true if both are meant.`,
    [{ field: 'destination_prefix', message }],
  );
}

export function uploadCancelled(uploadId: string): DomainError {
  return new DomainError(
    'upload_cancelled',
    `Upload '${uploadId}' is cancelled: its failed files are not retried. Create a new upload instead.`,
  );
}

/** `reason` completes "its folder is not being watched: ...", e.g. "the request is cancelled". */
export function uploadNotWatched(uploadId: string, reason: string): DomainError {
  return new DomainError(
    'upload_not_watched',
    `Upload '${uploadId}' cannot be rescanned: its folder is not being watched: ${reason}.`,
  );
}

/**
 * S3 refused the check of a new upload's bucket, in a way that would fail every file: `problem` is
 * the code, `message` S3's answer in words for people (as files show it).
 */
export function bucketRefused(
  problem: 'bucket_not_found' | 's3_credentials_rejected' | 's3_credentials_missing',
  bucket: string,
  message: string,
): DomainError {
  return new DomainError(problem, `destination_bucket '${bucket}' cannot be used: ${message}`, [
    { field: 'destination_bucket', message },
  ]);
}

/** `cause` is already in words for people (an S3RequestError's message: what failed, where, why). */
export function s3Unavailable(cause: string): DomainError {
  return new DomainError('s3_unavailable', `S3 could not be asked about the uploaded objects: ${cause}`);
}

/**
 * The database cannot be used right now (its disk is full or read-only, an I/O error, a lock): not
 * a bug, and it may pass. The store throws it, with the driver's error as its cause; `reason`
 * completes "the database cannot be used right now: ...", e.g. "its disk is full".
 */
export class DatabaseUnavailableError extends DomainError {
  override readonly name: string = 'DatabaseUnavailableError';

  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super('database_unavailable', `the database cannot be used right now: ${reason}`, undefined, options);
  }
}

/**
 * The database's file (or its log) was removed or replaced while the service ran: unlike the
 * others, this does not pass. Nothing more is written until the service is restarted.
 */
export class DatabaseLostError extends DatabaseUnavailableError {}
