// The operations of the API, named by their operationId, with every error each can answer: the one
// table the error replies of the OpenAPI document are written from, so that the document cannot
// drift from the routes (test/unit/api-contract.test.ts provokes each error and looks it up here).
import type { ErrorCode } from './errors.js';

/** Any request: a malformed one (a bad URL, a path parameter too long), or a failure of the server. */
const ANY_REQUEST = ['bad_request', 'internal_error'] as const;
/** POST and DELETE read a body when one is sent, whether or not the operation uses it. */
const READS_BODY = ['invalid_json', 'payload_too_large', 'unsupported_media_type'] as const;
/** An operation that reads or writes the database. */
const USES_DATABASE = ['database_unavailable'] as const;
/** An operation on one upload, named by `upload_id` in the path. */
const ONE_UPLOAD = [...ANY_REQUEST, ...USES_DATABASE, 'upload_not_found'] as const;

export interface OperationErrors {
  /** The error codes it can answer (the 401 of a service with an API token aside). */
  errors: readonly ErrorCode[];
  /** Open to all even when the service has an API token. */
  public?: boolean;
}

export const OPERATIONS = {
  getHealth: { errors: [...ANY_REQUEST], public: true },
  createUpload: {
    errors: [
      ...ANY_REQUEST,
      ...READS_BODY,
      ...USES_DATABASE,
      'validation_error',
      'invalid_source_folder',
      'invalid_bucket_name',
      'invalid_pattern',
      'invalid_destination_prefix',
      'invalid_upload_id',
      'invalid_object_properties',
      'invalid_complete_markers',
      'invalid_manifest_key',
      'invalid_notify_url',
      'source_folder_not_allowed',
      'upload_id_taken',
      'upload_overlaps',
    ],
  },
  listUploads: { errors: [...ANY_REQUEST, ...USES_DATABASE, 'validation_error'] },
  getUpload: { errors: [...ONE_UPLOAD] },
  cancelUpload: { errors: [...ONE_UPLOAD, ...READS_BODY] },
  retryUploadFiles: { errors: [...ONE_UPLOAD, ...READS_BODY, 'upload_cancelled'] },
  rescanUpload: { errors: [...ONE_UPLOAD, ...READS_BODY, 'upload_not_watched'] },
  verifyUpload: { errors: [...ONE_UPLOAD, ...READS_BODY, 's3_unavailable'] },
  listUploadFiles: { errors: [...ONE_UPLOAD, 'validation_error', 'invalid_cursor'] },
  listInstances: { errors: [...ANY_REQUEST, ...USES_DATABASE] },
  getSettings: { errors: [...ANY_REQUEST] },
  updateSettings: { errors: [...ANY_REQUEST, ...READS_BODY, 'validation_error'] },
  streamEvents: { errors: [...ANY_REQUEST, 'validation_error'] },
} as const satisfies Record<string, OperationErrors>;

export type OperationId = keyof typeof OPERATIONS;

export function isOperationId(name: string | undefined): name is OperationId {
  return name !== undefined && Object.hasOwn(OPERATIONS, name);
}

/** The codes an operation can answer, on a service with an API token (`bearerAuth`) or without. */
export function errorCodesOf(operationId: OperationId, bearerAuth: boolean): ErrorCode[] {
  const operation: OperationErrors = OPERATIONS[operationId];
  const codes: ErrorCode[] = [...operation.errors];
  if (bearerAuth && !operation.public) codes.push('unauthorized');
  return codes;
}
