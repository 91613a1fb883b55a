// Whether S3's ETag can be compared with a local MD5. With SSE-KMS or SSE-C it cannot (the ETag is
// not an MD5 of the content); S3 then still checks every Content-MD5 we send.
import type { ValidationMethod } from '../domain/model.js';
import { ETagMismatchError } from './errors.js';
import { normalizeEtag } from './checksums.js';

export interface EncryptionHeaders {
  ServerSideEncryption?: string | undefined;
  SSECustomerAlgorithm?: string | undefined;
}

const KMS_ENCRYPTIONS = new Set(['aws:kms', 'aws:kms:dsse']);

export function validationMethodOf(response: EncryptionHeaders): ValidationMethod {
  const kms =
    response.ServerSideEncryption !== undefined && KMS_ENCRYPTIONS.has(response.ServerSideEncryption);
  return kms || response.SSECustomerAlgorithm ? 'content-md5' : 'etag';
}

/**
 * The normalised ETag S3 returned, after checking it against `expected` when the method allows.
 * Throws ETagMismatchError (transient) on a difference, or when S3 returned none.
 */
export function checkedEtag(
  what: string,
  returned: string | undefined,
  expected: string,
  method: ValidationMethod,
): string {
  const etag = returned === undefined ? undefined : normalizeEtag(returned);
  if (etag === undefined || etag === '') throw new ETagMismatchError(what, expected, undefined);
  if (method === 'etag' && etag !== expected) throw new ETagMismatchError(what, expected, etag);
  return etag;
}
