// The error catalogue: every error a client can receive, each code listed once with its HTTP
// status and meaning. The codes of the domain (a DomainError's) get their status here; the others
// are HTTP's own (a malformed body, a wrong method, a missing token). The error handler turns each
// into `{error, message, details?}`; anything else becomes a masked 500, so no driver or SDK
// message reaches a client. The error table of docs/api.md is written from ERROR_CATALOGUE.

import {
  DatabaseUnavailableError,
  type DomainError,
  type DomainErrorCode,
  type ErrorDetail,
} from '../domain/errors.js';

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
  invalid_complete_markers: {
    status: 400,
    description: 'An entry of `complete_markers` is not a usable glob pattern, or the list repeats one.',
  },
  invalid_manifest_key: {
    status: 400,
    description: '`manifest_key` is not a usable S3 key, or is given with `manifest: false`.',
  },
  invalid_notify_url: {
    status: 400,
    description: '`notify_url` is not an http(s) URL, or its host is not one NOTIFY_ALLOWED_HOSTS names.',
  },
  invalid_destination_prefix: {
    status: 400,
    description: '`destination_prefix` cannot be the start of an S3 object key.',
  },
  invalid_upload_id: {
    status: 400,
    description:
      '`upload_id` is not 1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `~` and `-`, or is `.` or `..`.',
  },
  invalid_object_properties: {
    status: 400,
    description:
      "A field of `object_properties` breaks S3's rules (storage class, encryption, metadata or tags; see the `ObjectProperties` schema). `details` names the field.",
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
  upload_not_found: { status: 404, description: 'No upload has this `upload_id`.' },
  route_not_found: { status: 404, description: 'No route matches this path.' },
  method_not_allowed: {
    status: 405,
    description: 'The path exists, but not with this method. The `Allow` header lists the methods it takes.',
  },
  request_timeout: {
    status: 408,
    description: 'The client did not send the whole request in time.',
  },
  upload_id_taken: {
    status: 409,
    description: 'An upload with this `upload_id` already exists (whatever its status).',
  },
  upload_overlaps: {
    status: 409,
    description:
      'A live (pending or active) upload could write the same objects: the same bucket, and one `destination_prefix` is the other or one of its folders (an empty prefix overlaps every other). The message names that upload; send `allow_overlap: true` if both are meant.',
  },
  upload_cancelled: {
    status: 409,
    description: 'The upload is cancelled, so its files cannot be retried.',
  },
  upload_not_watched: {
    status: 409,
    description:
      'The folder of the upload is not being watched, so it cannot be rescanned: the upload is cancelled or, one-shot, completed, or the service is starting, stopping, or about to watch it again after a database error (the message says which).',
  },
  bucket_not_found: {
    status: 422,
    description:
      "The check of `destination_bucket` with the service's credentials found no such bucket. Create it first, or send `check_bucket: false` to create the upload anyway (its files wait and are tried again until the bucket exists).",
  },
  s3_credentials_rejected: {
    status: 422,
    description:
      "S3 rejected the service's credentials when checking `destination_bucket` (an unknown access key, a wrong secret, an expired session token): every file would fail. Fix the service's AWS settings.",
  },
  s3_credentials_missing: {
    status: 422,
    description:
      'The service has no AWS credentials to check `destination_bucket` with (none in its environment, profile or instance role): every file would fail. Set them and restart the service.',
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
  dashboard_not_built: {
    status: 503,
    description:
      'The dashboard at `/ui` has not been built: its files (`dist/ui/`) are missing. Run `npm run build` (`npm start` does), then load the page again.',
  },
  database_unavailable: {
    status: 503,
    description:
      'The database could not be read or written: its disk is full or read-only, it failed with an I/O error, or it is busy (the message says which). Nothing was changed; uploads already recorded go on, and the same request succeeds once the disk is fixed. When its file was removed or replaced while the service ran, every request but `GET /` (which answers 503 `degraded`) gets this answer until the service is restarted (the message says what to do first).',
  },
} as const satisfies Record<string, ErrorCatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

/** The HTTP status a code is answered with. */
export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CATALOGUE[code].status;
}

/** An error as the API answers it. */
export class ApiError extends Error {
  readonly httpStatus: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = 'ApiError';
    this.httpStatus = httpStatusOf(code);
  }
}

/**
 * A DomainError as the API answers it: its code, message and details, with the code's status. A
 * database that cannot be used right now gets the words that tell a client what to do.
 */
export function fromDomainError(error: DomainError): ApiError {
  if (error instanceof DatabaseUnavailableError) return databaseUnavailable(error.reason);
  const code: DomainErrorCode = error.code;
  return new ApiError(code, error.message, error.details);
}

// --- one function per error of HTTP itself, so that callers never build codes or statuses by hand

export function validationFailed(message: string, details: ErrorDetail[]): ApiError {
  return new ApiError('validation_error', message, details);
}

export function invalidJson(): ApiError {
  return new ApiError('invalid_json', 'The request body is not valid JSON.');
}

export function badRequest(message: string): ApiError {
  return new ApiError('bad_request', message);
}

/** `tokenGiven`: a bearer token was sent but is not the service's. */
export function unauthorized(tokenGiven: boolean): ApiError {
  return new ApiError(
    'unauthorized',
    tokenGiven
      ? 'The API token is wrong: send the one the service was started with, as Authorization: Bearer <token>.'
      : 'This route needs the API token: send it as Authorization: Bearer <token>.',
  );
}

export function routeNotFound(method: string, url: string): ApiError {
  return new ApiError('route_not_found', `No route for ${method} ${url}.`);
}

/** `allowed` are the methods the path takes, as the `Allow` header lists them. */
export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): ApiError {
  return new ApiError(
    'method_not_allowed',
    `${path} does not take ${method}: it takes ${allowed.join(', ')}.`,
  );
}

export function requestTimeout(): ApiError {
  return new ApiError('request_timeout', 'The request was not received in time.');
}

export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError(
    'payload_too_large',
    `The request body is larger than the limit of ${limitBytes} bytes.`,
  );
}

export function unsupportedMediaType(contentType: string | undefined): ApiError {
  const given = contentType ? `'${contentType}'` : 'no content type';
  return new ApiError(
    'unsupported_media_type',
    `The request body must be sent as application/json (got ${given}).`,
  );
}

export function unsupportedCharset(charset: string): ApiError {
  return new ApiError(
    'unsupported_media_type',
    `The request body must be JSON in UTF-8 (got charset '${charset}'): send it as application/json, or application/json; charset=utf-8.`,
  );
}

export function headersTooLarge(): ApiError {
  return new ApiError('headers_too_large', 'The request headers are too large.');
}

/** `cause` completes "The database cannot be used right now: ...", e.g. "its disk is full". */
export function databaseUnavailable(cause: string): ApiError {
  return new ApiError(
    'database_unavailable',
    `The database cannot be used right now: ${cause}. Nothing was changed; try again once it is fixed.`,
  );
}

/** The page is public: the message names no path of the server (its log line does). */
export function dashboardNotBuilt(): ApiError {
  return new ApiError(
    'dashboard_not_built',
    'The dashboard is not built: dist/ui/ holds no index.html. Run npm run build (npm start does), then load the page again.',
  );
}

export function internalError(requestId?: string): ApiError {
  const reference = requestId ? ` (request id ${requestId})` : '';
  return new ApiError('internal_error', `An unexpected error occurred on the server${reference}.`);
}
