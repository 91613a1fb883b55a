import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NoSuchBucket, NoSuchUpload, S3ServiceException } from '@aws-sdk/client-s3';
import {
  ETagMismatchError,
  FileChangedError,
  S3RequestError,
  abortErrorFrom,
  classifyS3Error,
  describeS3Error,
  isS3ConfigurationError,
  isS3Unreachable,
} from '../../src/transfer/errors.js';

function serviceError(name: string, status: number, message = `${name} happened`): S3ServiceException {
  return new S3ServiceException({
    name,
    message,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
}

function networkError(code: string, message = `connect ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

describe('classifyS3Error', () => {
  const transient: [string, unknown][] = [
    ['503 SlowDown', serviceError('SlowDown', 503)],
    ['500 InternalError', serviceError('InternalError', 500)],
    ['an unknown 502', serviceError('Unknown', 502)],
    ['429', serviceError('TooManyRequests', 429)],
    ['400 RequestTimeout', serviceError('RequestTimeout', 400)],
    ['400 BadDigest', serviceError('BadDigest', 400)],
    ['ECONNRESET', networkError('ECONNRESET', 'socket hang up')],
    ['ECONNREFUSED', networkError('ECONNREFUSED')],
    ['EPIPE', networkError('EPIPE')],
    ['ETIMEDOUT', networkError('ETIMEDOUT')],
    ['a bare socket hang up', new Error('socket hang up')],
    ["the SDK handler's TimeoutError", Object.assign(new Error('timed out'), { name: 'TimeoutError' })],
    ['an ETag mismatch', new ETagMismatchError('part 1', 'a', 'b')],
  ];
  for (const [label, error] of transient) {
    it(`retries ${label}`, () => assert.equal(classifyS3Error(error), 'transient'));
  }

  const permanent: [string, unknown][] = [
    [
      'NoSuchBucket',
      new NoSuchBucket({
        message: 'The specified bucket does not exist',
        $metadata: { httpStatusCode: 404 },
      }),
    ],
    ['AccessDenied', serviceError('AccessDenied', 403)],
    ['InvalidAccessKeyId', serviceError('InvalidAccessKeyId', 403)],
    ['SignatureDoesNotMatch', serviceError('SignatureDoesNotMatch', 403)],
    ['RequestTimeTooSkewed', serviceError('RequestTimeTooSkewed', 403)],
    ['InvalidBucketName', serviceError('InvalidBucketName', 400)],
    ['an unlisted 4xx', serviceError('EntityTooSmall', 400)],
    ['NotImplemented (a 501: a property the server does not take)', serviceError('NotImplemented', 501)],
    ['InvalidStorageClass', serviceError('InvalidStorageClass', 400)],
    ['NoSuchUpload', new NoSuchUpload({ message: 'gone', $metadata: { httpStatusCode: 404 } })],
    ['a local EACCES', networkError('EACCES', 'permission denied')],
    ['ENOTFOUND', networkError('ENOTFOUND')],
    ['an abort', abortErrorFrom(AbortSignal.abort())],
    [
      'a changed file',
      new FileChangedError(
        '/f',
        { size: 1, mtimeMs: 1, ino: 1, ctimeMs: 1 },
        { size: 2, mtimeMs: 2, ino: 1, ctimeMs: 2 },
        'after reading',
      ),
    ],
    ['a plain error', new Error('boom')],
  ];
  for (const [label, error] of permanent) {
    it(`does not retry ${label}`, () => assert.equal(classifyS3Error(error), 'permanent'));
  }

  it('keeps the classification of the error an S3RequestError wraps', () => {
    const target = { bucket: 'b', key: 'k' };
    assert.equal(
      classifyS3Error(new S3RequestError('PutObject', target, 5, serviceError('SlowDown', 503))),
      'transient',
    );
    assert.equal(
      classifyS3Error(new S3RequestError('PutObject', target, 1, serviceError('AccessDenied', 403))),
      'permanent',
    );
  });
});

describe('describeS3Error', () => {
  it('names a missing bucket with the code and status', () => {
    const error = new NoSuchBucket({
      message: 'The specified bucket does not exist',
      $metadata: { httpStatusCode: 404 },
    });
    assert.equal(
      describeS3Error(error, { bucket: 'photos' }),
      "bucket 'photos' does not exist (NoSuchBucket, HTTP 404)",
    );
  });

  it('names the bucket access was denied to', () => {
    assert.equal(
      describeS3Error(serviceError('AccessDenied', 403), { bucket: 'photos', key: 'a.jpg' }),
      "access denied to bucket 'photos' (AccessDenied, HTTP 403)",
    );
  });

  it('points at the secret key for a signature mismatch', () => {
    assert.match(
      describeS3Error(serviceError('SignatureDoesNotMatch', 403)),
      /secret access key.*SignatureDoesNotMatch, HTTP 403/,
    );
  });

  it('names the object property a server refuses', () => {
    assert.match(
      describeS3Error(serviceError('NotImplemented', 501)),
      /server-side encryption or tags \(object_properties\).*\(NotImplemented, HTTP 501\)$/,
    );
    assert.match(
      describeS3Error(serviceError('InvalidStorageClass', 400)),
      /object_properties\.storage_class.*\(InvalidStorageClass, HTTP 400\)$/,
    );
  });

  it("keeps S3's message for codes it does not explain", () => {
    assert.equal(
      describeS3Error(
        serviceError('EntityTooSmall', 400, 'Your proposed upload is smaller than the minimum'),
      ),
      'Your proposed upload is smaller than the minimum (EntityTooSmall, HTTP 400)',
    );
  });

  it('wraps the operation, the location and the attempts around the description', () => {
    const error = new S3RequestError(
      'PutObject',
      { bucket: 'photos', key: 'a.jpg' },
      5,
      serviceError('SlowDown', 503),
    );
    assert.equal(
      error.message,
      'S3 is throttling requests (SlowDown, HTTP 503) [PutObject s3://photos/a.jpg, after 5 attempts]',
    );
    assert.equal(describeS3Error(error), error.message);
    assert.equal(error.code, 'SlowDown');
    assert.equal(error.httpStatus, 503);
  });

  it('describes network errors and non-S3 errors by their message', () => {
    assert.match(describeS3Error(networkError('ECONNREFUSED')), /refused the connection \(ECONNREFUSED\)/);
    assert.equal(describeS3Error(new Error('disk on fire')), 'disk on fire');
  });
});

describe('abortErrorFrom', () => {
  it('is named AbortError whatever the reason the signal was given', () => {
    assert.equal(abortErrorFrom(AbortSignal.abort()).name, 'AbortError');
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));
    const error = abortErrorFrom(controller.signal);
    assert.equal(error.name, 'AbortError');
    assert.equal((error.cause as Error).message, 'shutting down');
  });
});

describe('isS3Unreachable and isS3ConfigurationError', () => {
  const s3Error = (name: string, status: number): Error =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  const network = (code: string): Error => Object.assign(new Error(code), { code });

  it('takes network errors, server errors and throttling for an S3 that cannot be reached', () => {
    for (const error of [
      network('ECONNREFUSED'),
      network('ECONNRESET'),
      network('ETIMEDOUT'),
      network('ENOTFOUND'),
      s3Error('InternalError', 500),
      s3Error('ServiceUnavailable', 503),
      s3Error('SlowDown', 503),
      s3Error('TooManyRequestsException', 429),
      new S3RequestError('PutObject', { bucket: 'b', key: 'k' }, 5, network('ECONNREFUSED')),
    ]) {
      assert.equal(isS3Unreachable(error), true, String(error));
    }
  });

  it('does not take an answer about the request or the file for an outage', () => {
    for (const error of [
      s3Error('BadDigest', 400),
      s3Error('RequestTimeout', 400),
      s3Error('NoSuchBucket', 404),
      s3Error('AccessDenied', 403),
      s3Error('NotImplemented', 501),
      new ETagMismatchError('PutObject', '"a"', '"b"'),
      new S3RequestError('PutObject', { bucket: 'b' }, 1, s3Error('AccessDenied', 403)),
    ]) {
      assert.equal(isS3Unreachable(error), false, String(error));
    }
  });

  it('sorts credentials, permissions and a missing bucket as configuration', () => {
    for (const code of ['NoSuchBucket', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch']) {
      const status = code === 'NoSuchBucket' ? 404 : 403;
      assert.equal(
        isS3ConfigurationError(new S3RequestError('PutObject', { bucket: 'b' }, 1, s3Error(code, status))),
        true,
        code,
      );
    }
    assert.equal(isS3ConfigurationError(s3Error('InternalError', 500)), false);
    assert.equal(isS3ConfigurationError(s3Error('EntityTooLarge', 400)), false);
  });
});
