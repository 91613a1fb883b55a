// The errors a transfer can end with, and how S3's errors are sorted into "try again" and "give up".
// Retrying is an allow-list: only what is known to pass with time is transient.
import { MAX_OBJECT_SIZE } from './part-plan.js';

import type { FileVersion } from '../domain/model.js';

export type { FileVersion };

export type FileCheckMoment = 'before reading' | 'while reading' | 'after reading';

function describeVersion(version: FileVersion): string {
  const identity = [
    version.ino === null ? '' : `, inode ${version.ino}`,
    version.ctimeMs === null ? '' : `, ctime ${new Date(version.ctimeMs).toISOString()}`,
  ];
  return `${version.size} bytes modified at ${new Date(version.mtimeMs).toISOString()}${identity.join('')}`;
}

/** The file on disk is not the version the transfer names (it was written to before or during the upload). */
export class FileChangedError extends Error {
  override readonly name = 'FileChangedError';

  constructor(
    readonly filePath: string,
    readonly expected: FileVersion,
    readonly found: FileVersion | undefined,
    readonly moment: FileCheckMoment,
    /** What was found instead, when it is not a version (default: fewer bytes than expected). */
    detail = 'found fewer bytes than expected',
  ) {
    super(
      `'${filePath}' changed ${moment}: expected ${describeVersion(expected)}, ` +
        (found ? `found ${describeVersion(found)}` : detail),
    );
  }
}

/**
 * A file uploaded while it grew was not only appended to: it shrank, its bytes already read changed,
 * or another file took its name. Its multipart upload was aborted; the file starts over.
 */
export class FileRewrittenError extends Error {
  override readonly name = 'FileRewrittenError';

  constructor(
    readonly filePath: string,
    readonly how: 'truncated' | 'rewritten' | 'replaced' | 'outgrown',
  ) {
    super(`'${filePath}' ${REWRITES[how]}; its upload starts over`);
  }
}

const REWRITES: Record<FileRewrittenError['how'], string> = {
  truncated: 'shrank while it was uploaded as it grew',
  rewritten: 'was rewritten where it had already been uploaded',
  replaced: 'was replaced by another file while it was uploaded as it grew',
  outgrown: 'grew beyond what one upload of STREAM_PART_SIZE_BYTES parts can hold',
};

/** The file (or a folder on its path) no longer exists, or is no longer a regular file. */
export class FileVanishedError extends Error {
  override readonly name = 'FileVanishedError';

  constructor(
    readonly filePath: string,
    options?: ErrorOptions,
  ) {
    super(`'${filePath}' no longer exists or is not a regular file`, options);
  }
}

/**
 * The file is larger than S3 stores in one object: no request could store it, so none is sent, and
 * no retry can cure it until the file changes.
 */
export class ObjectTooLargeError extends Error {
  override readonly name = 'ObjectTooLargeError';

  constructor(
    readonly filePath: string,
    readonly size: number,
  ) {
    super(
      `${filePath} is ${size} bytes; S3 stores objects of at most 5 TiB (${MAX_OBJECT_SIZE.toLocaleString('en-US')} bytes)`,
    );
  }
}

/** What S3 stored does not hash to what was read: the bytes were corrupted in flight, so sending again helps. */
export class ETagMismatchError extends Error {
  override readonly name = 'ETagMismatchError';

  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string | undefined,
  ) {
    super(
      actual === undefined
        ? `${what}: S3 returned no ETag (expected ${expected})`
        : `${what}: S3 returned ETag ${actual}, expected ${expected}`,
    );
  }
}

/** Where a request went, for messages. */
export interface S3Target {
  bucket: string;
  key?: string;
  s3UploadId?: string;
}

export type ErrorKind = 'transient' | 'permanent';

/** An S3 request that failed for good (permanent, or transient with every attempt used), with its context. */
export class S3RequestError extends Error {
  override readonly name = 'S3RequestError';
  readonly kind: ErrorKind;
  readonly code: string | undefined;
  readonly httpStatus: number | undefined;

  constructor(
    readonly operation: string,
    readonly target: S3Target,
    readonly attempts: number,
    cause: unknown,
  ) {
    const tries = attempts > 1 ? `, after ${attempts} attempts` : '';
    super(`${describeS3Error(cause, target)} [${operation} ${locationOf(target)}${tries}]`, { cause });
    this.kind = classifyS3Error(cause);
    this.code = errorCodeOf(cause);
    this.httpStatus = httpStatusOf(cause);
  }
}

/** The rejection of an aborted transfer, named 'AbortError' whatever reason the signal was given. */
export function abortErrorFrom(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const error = new Error('the upload was aborted', { cause: reason });
  error.name = 'AbortError';
  return error;
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

const TRANSIENT_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'PriorRequestNotComplete',
  // The bytes got corrupted on the way: sending them again is the cure.
  'BadDigest',
  'TimeoutError',
]);

const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
]);

function fieldOf(error: unknown, field: string): unknown {
  return typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[field] : undefined;
}

function stringField(error: unknown, field: string): string | undefined {
  const value = fieldOf(error, field);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** S3's error code ('NoSuchBucket'...), or a Node.js network code ('ECONNRESET'...). */
function errorCodeOf(error: unknown): string | undefined {
  if (error instanceof S3RequestError) return error.code;
  const nodeCode = stringField(error, 'code');
  if (nodeCode) return nodeCode;
  const s3Code = stringField(error, 'Code');
  if (s3Code) return s3Code;
  const name = stringField(error, 'name');
  return name === 'Error' ? undefined : name;
}

function httpStatusOf(error: unknown): number | undefined {
  if (error instanceof S3RequestError) return error.httpStatus;
  const status = fieldOf(fieldOf(error, '$metadata'), 'httpStatusCode');
  return typeof status === 'number' ? status : undefined;
}

const NOT_IMPLEMENTED = 501;

export function classifyS3Error(error: unknown): ErrorKind {
  if (error instanceof S3RequestError) return error.kind;
  if (error instanceof ETagMismatchError) return 'transient';
  if (isAbortError(error)) return 'permanent';
  const status = httpStatusOf(error);
  // 501: S3 answered that it does not do what was asked (an object property it does not take).
  if (status === NOT_IMPLEMENTED) return 'permanent';
  if (status !== undefined && (status >= 500 || status === 429)) return 'transient';
  const code = errorCodeOf(error);
  if (code && (TRANSIENT_CODES.has(code) || TRANSIENT_NETWORK_CODES.has(code))) return 'transient';
  if (error instanceof Error && /socket hang up/i.test(error.message)) return 'transient';
  return 'permanent';
}

/**
 * The failure says nothing about the file: S3 could not be reached, or answered with a server
 * error or throttling (network errors, timeouts, 5xx, 429, SlowDown). Whether S3 as a whole is
 * down is for a probe to tell (engine/s3-health.ts). Corrupted bytes (BadDigest, a wrong ETag)
 * and a request S3 timed out waiting for (RequestTimeout, a 400) prove that S3 answers.
 */
export function isS3Unreachable(error: unknown): boolean {
  if (error instanceof S3RequestError) {
    if (error.kind !== 'transient') return false;
    if (error.cause !== undefined) return isS3Unreachable(error.cause);
  }
  if (error instanceof ETagMismatchError || isAbortError(error)) return false;
  const code = errorCodeOf(error);
  if (code === 'BadDigest' || code === 'RequestTimeout' || code === 'RequestTimeoutException') return false;
  if (code === 'ENOTFOUND' || (code !== undefined && TRANSIENT_NETWORK_CODES.has(code))) return true;
  if (code === 'TimeoutError') return true;
  const status = httpStatusOf(error);
  if (status !== undefined) return (status >= 500 && status !== NOT_IMPLEMENTED) || status === 429;
  if (code !== undefined && TRANSIENT_CODES.has(code)) return true;
  return error instanceof Error && /socket hang up/i.test(error.message);
}

/** An S3 error code as S3 spells them ('NoSuchBucket', 'KMS.NotFoundException'): safe as a metric label. */
const S3_CODE = /^[A-Za-z][A-Za-z0-9.]{0,63}$/;

/**
 * How one S3 request ended, in a few words fit for a metric label: S3's error code when S3 answered
 * (`http_503` when its answer named none), `timeout` or `network_error` when no answer came,
 * `aborted` when the transfer stopped it.
 */
export function requestOutcomeOf(error: unknown): string {
  if (isAbortError(error)) return 'aborted';
  const code = errorCodeOf(error);
  const status = httpStatusOf(error);
  // The SDK names an error whose answer gave no code 'Unknown': the status says more.
  const named = code !== undefined && code !== 'Unknown' && S3_CODE.test(code);
  if (status !== undefined) return named ? code : `http_${status}`;
  return code === 'TimeoutError' || code === 'ETIMEDOUT' ? 'timeout' : 'network_error';
}

/** S3's answers that a person must act on: the credentials, the permissions, the bucket, the clock. */
const CONFIGURATION_CODES = new Set([
  'NoSuchBucket',
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidToken',
  'InvalidBucketName',
  'RequestTimeTooSkewed',
  'CredentialsProviderError',
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'InvalidRequest',
  'KMS.DisabledException',
  'KMS.NotFoundException',
]);

/** An S3 error about the setup (credentials, permissions, bucket), not about one file. */
export function isS3ConfigurationError(error: unknown): boolean {
  const code = errorCodeOf(error instanceof S3RequestError ? (error.cause ?? error) : error);
  if (code !== undefined && CONFIGURATION_CODES.has(code)) return true;
  const status = httpStatusOf(error);
  return status === 401 || status === 403;
}

function locationOf(target: S3Target): string {
  return target.key === undefined ? `s3://${target.bucket}` : `s3://${target.bucket}/${target.key}`;
}

function explain(
  code: string | undefined,
  bucket: string | undefined,
  target: S3Target | undefined,
): string | undefined {
  const theBucket = bucket === undefined ? 'the bucket' : `bucket '${bucket}'`;
  switch (code) {
    case 'NoSuchBucket':
      return `${theBucket} does not exist`;
    case 'AccessDenied':
    case 'AllAccessDisabled':
      return `access denied to ${theBucket}`;
    case 'InvalidAccessKeyId':
      return 'S3 does not know the access key id: check AWS_ACCESS_KEY_ID or the profile';
    case 'SignatureDoesNotMatch':
      return 'S3 rejected the request signature: check the secret access key';
    case 'ExpiredToken':
    case 'TokenRefreshRequired':
      return 'the session credentials have expired';
    case 'InvalidBucketName':
      return `${bucket === undefined ? 'the bucket name' : `'${bucket}'`} is not a valid bucket name`;
    case 'RequestTimeTooSkewed':
      return "this machine's clock differs too much from S3's: synchronise the clock";
    case 'NoSuchUpload':
      return target?.s3UploadId === undefined
        ? 'the multipart upload no longer exists on S3'
        : `the multipart upload '${target.s3UploadId}' no longer exists on S3`;
    case 'SlowDown':
    case 'Throttling':
    case 'ThrottlingException':
    case 'TooManyRequestsException':
      return 'S3 is throttling requests';
    case 'BadDigest':
      return 'S3 received bytes that do not match their Content-MD5 (corrupted in flight)';
    case 'NotImplemented':
      return "this S3 does not implement something the request asks for, such as the upload's server-side encryption or tags (object_properties): create the upload without it";
    case 'InvalidStorageClass':
      return "this S3 does not take the upload's storage class (object_properties.storage_class): create the upload with one it takes, or none";
    case 'CredentialsProviderError':
      return 'no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE';
    case 'ENOTFOUND':
      return 'the S3 endpoint host name does not resolve';
    case 'ECONNREFUSED':
      return 'the S3 endpoint refused the connection';
    case 'ETIMEDOUT':
    case 'TimeoutError':
      return 'S3 did not answer within S3_REQUEST_TIMEOUT_MS, or the connection timed out';
    default:
      return undefined;
  }
}

/** A message a user can act on, with S3's code and HTTP status; never credentials. Takes any error. */
export function describeS3Error(error: unknown, target?: S3Target): string {
  if (error instanceof S3RequestError || error instanceof FileChangedError) return error.message;
  if (error instanceof FileVanishedError || error instanceof ETagMismatchError) return error.message;
  if (error instanceof ObjectTooLargeError) return error.message;
  if (isAbortError(error)) return 'the upload was stopped before it finished (AbortError)';
  const code = errorCodeOf(error);
  const status = httpStatusOf(error);
  const bucket = target?.bucket ?? stringField(error, 'BucketName');
  const detail = [code, status === undefined ? undefined : `HTTP ${status}`].filter(Boolean).join(', ');
  const suffix = detail === '' ? '' : ` (${detail})`;
  const explained = explain(code, bucket, target);
  if (explained) return `${explained}${suffix}`;
  const message = error instanceof Error ? error.message : String(error);
  if (status !== undefined && status >= 500) return `S3 failed with a server error: ${message}${suffix}`;
  return `${message || 'S3 request failed'}${suffix}`;
}
