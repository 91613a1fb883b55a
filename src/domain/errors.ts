// The error catalogue: every error a client can receive, each code listed once with its HTTP
// status and meaning. The API's error handler turns an AppError into `{error, message, details?}`;
// anything that is not an AppError (or a client error raised by the HTTP framework) becomes a
// masked 500, so no driver or SDK message reaches a client. The error table of docs/api.md is
// written from ERROR_CATALOGUE.

import type { Upload } from './model.js';

export interface ErrorCatalogueEntry {
  status: number;
  description: string;
}

export const ERROR_CATALOGUE = {
  validation_error: {
    status: 400,
    description:
      'The request does not match the API schema: a missing or unknown field, a wrong type, a value out of range. `details` lists each field with what is wrong.',
  },
  invalid_json: { status: 400, description: 'The request body is not valid JSON.' },
  invalid_source_folder: {
    status: 400,
    description:
      '`source_folder` is not an absolute path, does not exist, is a file rather than a folder, or cannot be read and listed by the service.',
  },
  invalid_bucket_name: {
    status: 400,
    description: '`destination_bucket` is not a valid S3 bucket name.',
  },
  invalid_pattern: { status: 400, description: '`pattern` is not a usable glob pattern.' },
  invalid_destination_prefix: {
    status: 400,
    description: '`destination_prefix` cannot be the start of an S3 object key.',
  },
  invalid_upload_id: {
    status: 400,
    description:
      '`upload_id` is not 1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `~` and `-`, or is `.` or `..`.',
  },
  invalid_cursor: {
    status: 400,
    description: '`cursor` is not a value returned as `next_cursor` by this API.',
  },
  bad_request: {
    status: 400,
    description: 'The HTTP request itself is malformed (for example a bad URL or Content-Length).',
  },
  unauthorized: {
    status: 401,
    description:
      'The service has an `API_TOKEN` and the request does not carry it as `Authorization: Bearer <token>` (missing, malformed or wrong).',
  },
  source_folder_not_allowed: {
    status: 403,
    description:
      '`source_folder` (its real path, links resolved) is outside every folder of `ALLOWED_SOURCE_ROOTS`.',
  },
  upload_not_found: { status: 404, description: 'No upload request has this `upload_id`.' },
  route_not_found: { status: 404, description: 'No route matches this method and path.' },
  request_timeout: {
    status: 408,
    description: 'The client did not send the whole request in time.',
  },
  upload_id_taken: {
    status: 409,
    description: 'An upload request with this `upload_id` already exists (whatever its status).',
  },
  upload_overlaps: {
    status: 409,
    description:
      'A live (pending or active) upload request could write the same objects: the same bucket, and one `destination_prefix` is the other or one of its folders (an empty prefix overlaps every other). The message names that request; send `allow_overlap: true` if both are meant.',
  },
  upload_cancelled: {
    status: 409,
    description: 'The upload request is cancelled, so its files cannot be retried.',
  },
  upload_not_watched: {
    status: 409,
    description:
      'The folder of the upload request is not being watched, so it cannot be rescanned: the request is cancelled, or the service is starting, stopping, or about to watch it again after a database error (the message says which).',
  },
  payload_too_large: { status: 413, description: 'The request body is larger than the server accepts.' },
  unsupported_media_type: {
    status: 415,
    description:
      'The request body is not sent as `application/json`, or declares a charset other than UTF-8.',
  },
  headers_too_large: { status: 431, description: 'The request headers are too large.' },
  internal_error: {
    status: 500,
    description:
      'An unexpected error on the server. It is logged with the request id; the details are not sent.',
  },
  s3_unavailable: {
    status: 503,
    description:
      'S3 could not be reached, or refused the requests that check the objects (the message says which and why). Files found wrong before that are requeued; try again once S3 answers.',
  },
  database_unavailable: {
    status: 503,
    description:
      'The database could not be read or written: its disk is full or read-only, it failed with an I/O error, or it is busy (the message says which). Nothing was changed; uploads already recorded go on, and the same request succeeds once the disk is fixed. When its file was removed or replaced while the service ran, every request but `GET /` (which answers 503 `degraded`) gets this answer until the service is restarted (the message says what to do first).',
  },
} as const satisfies Record<string, ErrorCatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

/** One field of a request that is wrong; `field` is the API's snake_case name (a path for nested values). */
export interface ErrorDetail {
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly httpStatus: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = 'AppError';
    this.httpStatus = ERROR_CATALOGUE[code].status;
  }
}

// --- one function per error, so that callers never build codes or statuses by hand

export function validationFailed(message: string, details: ErrorDetail[]): AppError {
  return new AppError('validation_error', message, details);
}

export function invalidJson(): AppError {
  return new AppError('invalid_json', 'The request body is not valid JSON.');
}

/** One of the checks a create request goes through failed on a single field. */
function invalidField(code: ErrorCode, field: string, message: string): AppError {
  return new AppError(code, `${field}: ${message}`, [{ field, message }]);
}

/** `reason` completes "source_folder '<folder>' ...", e.g. "does not exist". */
export function invalidSourceFolder(folder: string, reason: string): AppError {
  return invalidField('invalid_source_folder', 'source_folder', `'${folder}' ${reason}`);
}

export function invalidBucketName(name: string, problem: string): AppError {
  return invalidField(
    'invalid_bucket_name',
    'destination_bucket',
    `'${name}' is not a valid bucket name: ${problem}`,
  );
}

export function invalidPattern(pattern: string, problem: string): AppError {
  return invalidField('invalid_pattern', 'pattern', `'${pattern}' is not a valid pattern: ${problem}`);
}

export function invalidDestinationPrefix(prefix: string, problem: string): AppError {
  return invalidField(
    'invalid_destination_prefix',
    'destination_prefix',
    `'${prefix}' is not a valid prefix: ${problem}`,
  );
}

/** `rule` says which ids are accepted, so the client can fix the request. */
export function invalidUploadId(uploadId: string, rule: string): AppError {
  return invalidField('invalid_upload_id', 'upload_id', `'${uploadId}' is not a valid upload id: ${rule}`);
}

export function invalidCursor(cursor: string): AppError {
  return invalidField(
    'invalid_cursor',
    'cursor',
    `'${cursor}' is not a cursor of this list: pass the next_cursor of the previous page, or no cursor for the first page`,
  );
}

export function badRequest(message: string): AppError {
  return new AppError('bad_request', message);
}

/** `tokenGiven`: a bearer token was sent but is not the service's. */
export function unauthorized(tokenGiven: boolean): AppError {
  return new AppError(
    'unauthorized',
    tokenGiven
      ? 'The API token is wrong: send the one the service was started with, as Authorization: Bearer <token>.'
      : 'This route needs the API token: send it as Authorization: Bearer <token>.',
  );
}

export function sourceFolderNotAllowed(folder: string, allowedRoots: readonly string[]): AppError {
  return invalidField(
    'source_folder_not_allowed',
    'source_folder',
    `'${folder}' is outside the folders this service may read: ${allowedRoots.join(', ')}`,
  );
}

export function uploadNotFound(uploadId: string): AppError {
  return new AppError('upload_not_found', `No upload request has upload_id '${uploadId}'.`);
}

export function routeNotFound(method: string, url: string): AppError {
  return new AppError('route_not_found', `No route for ${method} ${url}.`);
}

export function requestTimeout(): AppError {
  return new AppError('request_timeout', 'The request was not received in time.');
}

export function uploadIdTaken(uploadId: string): AppError {
  return new AppError(
    'upload_id_taken',
    `An upload request with upload_id '${uploadId}' already exists: choose another id, or omit upload_id to get a generated one.`,
  );
}

/** `other` is the live request whose objects the new one could overwrite. */
export function uploadOverlaps(
  other: Pick<Upload, 'uploadId' | 'sourceFolder' | 'destinationBucket' | 'destinationPrefix'>,
): AppError {
  const prefix = other.destinationPrefix === '' ? 'no prefix' : `prefix '${other.destinationPrefix}'`;
  const message = `overlaps the keys of the live upload request '${other.uploadId}' (folder '${other.sourceFolder}', bucket '${other.destinationBucket}', ${prefix})`;
  return new AppError(
    'upload_overlaps',
    `destination_prefix: ${message}; whichever uploads a key last would win. Choose another bucket or prefix, cancel '${other.uploadId}', or send allow_overlap: true if both are meant.`,
    [{ field: 'destination_prefix', message }],
  );
}

export function uploadCancelled(uploadId: string): AppError {
  return new AppError(
    'upload_cancelled',
    `Upload request '${uploadId}' is cancelled: its failed files are not retried. Create a new upload request instead.`,
  );
}

/** `reason` completes "its folder is not being watched: ...", e.g. "the request is cancelled". */
export function uploadNotWatched(uploadId: string, reason: string): AppError {
  return new AppError(
    'upload_not_watched',
    `Upload request '${uploadId}' cannot be rescanned: its folder is not being watched: ${reason}.`,
  );
}

export function payloadTooLarge(limitBytes: number): AppError {
  return new AppError(
    'payload_too_large',
    `The request body is larger than the limit of ${limitBytes} bytes.`,
  );
}

export function unsupportedMediaType(contentType: string | undefined): AppError {
  const given = contentType ? `'${contentType}'` : 'no content type';
  return new AppError(
    'unsupported_media_type',
    `The request body must be sent as application/json (got ${given}).`,
  );
}

export function unsupportedCharset(charset: string): AppError {
  return new AppError(
    'unsupported_media_type',
    `The request body must be JSON in UTF-8 (got charset '${charset}'): send it as application/json, or application/json; charset=utf-8.`,
  );
}

export function headersTooLarge(): AppError {
  return new AppError('headers_too_large', 'The request headers are too large.');
}

/** `cause` is already in words for people (an S3RequestError's message: what failed, where, why). */
export function s3Unavailable(cause: string): AppError {
  return new AppError('s3_unavailable', `S3 could not be asked about the uploaded objects: ${cause}`);
}

/** `cause` completes "The database cannot be used right now: ...", e.g. "its disk is full". */
/**
 * The database cannot be used right now (its disk is full or read-only, an I/O error, a lock): not
 * a bug, and it may pass. The store throws it; the API answers it with database_unavailable.
 */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';

  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`the database cannot be used right now: ${reason}`, options);
  }
}

/**
 * The database's file (or its log) was removed or replaced while the service ran: unlike the
 * others, this does not pass. Nothing more is written until the service is restarted.
 */
export class DatabaseLostError extends DatabaseUnavailableError {}

export function databaseUnavailable(cause: string): AppError {
  return new AppError(
    'database_unavailable',
    `The database cannot be used right now: ${cause}. Nothing was changed; try again once it is fixed.`,
  );
}

export function internalError(requestId?: string): AppError {
  const reference = requestId ? ` (request id ${requestId})` : '';
  return new AppError('internal_error', `An unexpected error occurred on the server${reference}.`);
}
