import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { md5Of, multipartEtag, normalizeEtag } from '../../src/transfer/checksums.js';
import { checkedEtag, validationMethodOf } from '../../src/transfer/validation.js';
import { ETagMismatchError } from '../../src/transfer/errors.js';

// Reference values computed with coreutils/openssl:
//   printf hello | md5sum; (printf hello | openssl md5 -binary; printf world | openssl md5 -binary) | md5sum
const HELLO_MD5 = '5d41402abc4b2a76b9719d911017c592';
const WORLD_MD5 = '7d793037a0760186574b0282f2f435e7';

describe('checksums', () => {
  it('computes the MD5 of a buffer in hex and base64', () => {
    const md5 = md5Of(Buffer.from('hello'));
    assert.equal(md5.hex, HELLO_MD5);
    assert.equal(md5.base64, 'XUFAKrxLKna5cZ2REBfFkg==');
  });

  it('computes the multipart ETag as md5(concat(binary part md5s))-N', () => {
    assert.equal(multipartEtag([HELLO_MD5, WORLD_MD5]), '065947336a2f2a95ba8899f3675c3be6-2');
  });

  it('counts the parts in the multipart ETag, even for one part', () => {
    assert.match(multipartEtag([HELLO_MD5]), /^[0-9a-f]{32}-1$/);
    assert.notEqual(multipartEtag([HELLO_MD5]).slice(0, 32), HELLO_MD5);
  });

  it('strips the quotes of an ETag and lowers its case', () => {
    assert.equal(normalizeEtag('"5D41402ABC4B2A76B9719D911017C592"'), HELLO_MD5);
    assert.equal(normalizeEtag(HELLO_MD5), HELLO_MD5);
    assert.equal(normalizeEtag('"abc-3"'), 'abc-3');
  });
});

describe('ETag validation', () => {
  it('compares ETags unless the object is encrypted with KMS or a customer key', () => {
    assert.equal(validationMethodOf({}), 'etag');
    assert.equal(validationMethodOf({ ServerSideEncryption: 'AES256' }), 'etag');
    assert.equal(validationMethodOf({ ServerSideEncryption: 'aws:kms' }), 'content-md5');
    assert.equal(validationMethodOf({ ServerSideEncryption: 'aws:kms:dsse' }), 'content-md5');
    assert.equal(validationMethodOf({ SSECustomerAlgorithm: 'AES256' }), 'content-md5');
  });

  it('accepts a matching ETag and rejects a different or missing one', () => {
    assert.equal(checkedEtag('part 1', `"${HELLO_MD5}"`, HELLO_MD5, 'etag'), HELLO_MD5);
    assert.throws(() => checkedEtag('part 1', `"${WORLD_MD5}"`, HELLO_MD5, 'etag'), ETagMismatchError);
    assert.throws(() => checkedEtag('part 1', undefined, HELLO_MD5, 'content-md5'), ETagMismatchError);
  });

  it('does not compare an ETag that is not an MD5 (SSE-KMS)', () => {
    assert.equal(checkedEtag('part 1', '"not-an-md5"', HELLO_MD5, 'content-md5'), 'not-an-md5');
  });
});
