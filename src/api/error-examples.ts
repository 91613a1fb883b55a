// One example of each error, made by the same functions that make the real ones, so that the
// OpenAPI document shows the messages clients really get.
import { bucketNameProblem } from '../domain/bucket-name.js';
import {
  bucketRefused,
  invalidBucketName,
  invalidCompleteMarker,
  invalidManifestKey,
  invalidNotifyUrl,
  invalidCursor,
  invalidObjectProperties,
  invalidDestinationPrefix,
  invalidPattern,
  invalidSourceFolder,
  invalidUploadId,
  s3Unavailable,
  sourceFolderNotAllowed,
  uploadCancelled,
  uploadIdTaken,
  uploadNotFound,
  uploadNotWatched,
  uploadOverlaps,
} from '../domain/errors.js';
import { prefixProblem } from '../domain/object-key.js';
import { patternProblem } from '../domain/pattern.js';
import { UPLOAD_ID_RULE } from '../service/upload-service.js';
import {
  badRequest,
  dashboardNotBuilt,
  databaseUnavailable,
  fromDomainError,
  headersTooLarge,
  internalError,
  invalidJson,
  methodNotAllowed,
  payloadTooLarge,
  requestTimeout,
  routeNotFound,
  unauthorized,
  unsupportedMediaType,
  validationFailed,
  type ApiError,
  type ErrorCode,
} from './errors.js';

const ID = 'photos-2024';

/** What a check says of a value it refuses. */
function problemOf(value: string, check: (value: string) => string | null): string {
  return check(value) ?? `'${value}' is refused`;
}

export const ERROR_EXAMPLES: Record<ErrorCode, ApiError> = {
  validation_error: validationFailed(
    'Invalid request body: destination_bucket is required; colour is not a known field (known: source_folder, destination_bucket, pattern, destination_prefix, upload_id, allow_overlap, check_bucket).',
    [
      { field: 'destination_bucket', message: 'is required' },
      {
        field: 'colour',
        message:
          'is not a known field (known: source_folder, destination_bucket, pattern, destination_prefix, upload_id, allow_overlap, check_bucket)',
      },
    ],
  ),
  invalid_json: invalidJson(),
  invalid_source_folder: fromDomainError(invalidSourceFolder('/data/fotos', 'does not exist')),
  invalid_bucket_name: fromDomainError(
    invalidBucketName('My_Bucket', problemOf('My_Bucket', bucketNameProblem)),
  ),
  invalid_pattern: fromDomainError(invalidPattern('[z-a].jpg', problemOf('[z-a].jpg', patternProblem))),
  invalid_complete_markers: fromDomainError(
    invalidCompleteMarker('RTAComplete.txt/', problemOf('RTAComplete.txt/', patternProblem)),
  ),
  invalid_manifest_key: fromDomainError(
    invalidManifestKey('runs/42/_manifest.json', 'a manifest key is given, but manifest is false'),
  ),
  invalid_notify_url: fromDomainError(
    invalidNotifyUrl('ftp://hooks.example.org/runs', 'is not an http(s) URL'),
  ),
  invalid_destination_prefix: fromDomainError(
    invalidDestinationPrefix('/backups', problemOf('/backups', prefixProblem)),
  ),
  invalid_upload_id: fromDomainError(invalidUploadId('photos 2024', UPLOAD_ID_RULE)),
  invalid_object_properties: fromDomainError(
    invalidObjectProperties({
      field: 'object_properties.metadata.sha256',
      message: "the key 'sha256' is reserved: the service stores the SHA-256 of the content there",
    }),
  ),
  invalid_cursor: fromDomainError(invalidCursor('abc')),
  bad_request: badRequest('The HTTP request is malformed.'),
  unauthorized: unauthorized(false),
  source_folder_not_allowed: fromDomainError(sourceFolderNotAllowed('/etc', ['/data'])),
  upload_not_found: fromDomainError(uploadNotFound(ID)),
  route_not_found: routeNotFound('GET', '/upload'),
  method_not_allowed: methodNotAllowed('PUT', '/uploads', ['GET', 'HEAD', 'POST']),
  request_timeout: requestTimeout(),
  upload_id_taken: fromDomainError(uploadIdTaken(ID)),
  bucket_not_found: fromDomainError(
    bucketRefused(
      'bucket_not_found',
      'my-archive',
      "bucket 'my-archive' does not exist (NoSuchBucket, HTTP 404) [ListObjectsV2 s3://my-archive]",
    ),
  ),
  s3_credentials_rejected: fromDomainError(
    bucketRefused(
      's3_credentials_rejected',
      'my-archive',
      'S3 rejected the request signature: check the secret access key (SignatureDoesNotMatch, HTTP 403) [ListObjectsV2 s3://my-archive]',
    ),
  ),
  s3_credentials_missing: fromDomainError(
    bucketRefused(
      's3_credentials_missing',
      'my-archive',
      'no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (CredentialsProviderError) [ListObjectsV2 s3://my-archive]',
    ),
  ),
  upload_overlaps: fromDomainError(
    uploadOverlaps({
      uploadId: 'photos-2023',
      sourceFolder: '/data/photos-2023',
      destinationBucket: 'my-archive',
      destinationPrefix: 'backups',
    }),
  ),
  upload_cancelled: fromDomainError(uploadCancelled(ID)),
  upload_not_watched: fromDomainError(uploadNotWatched(ID, 'the request is cancelled')),
  payload_too_large: payloadTooLarge(65536),
  unsupported_media_type: unsupportedMediaType('text/plain'),
  headers_too_large: headersTooLarge(),
  internal_error: internalError('req-1a'),
  s3_unavailable: fromDomainError(
    s3Unavailable(
      'the S3 endpoint refused the connection (ECONNREFUSED) [HeadObject s3://my-archive/backups/a.jpg, after 5 attempts]',
    ),
  ),
  dashboard_not_built: dashboardNotBuilt(),
  database_unavailable: databaseUnavailable('the disk that holds it is full (SQLITE_FULL)'),
};
