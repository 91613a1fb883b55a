import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, type S3Settings } from '../../src/config.js';
import { createS3Client } from '../../src/transfer/s3-client.js';

const base: S3Settings = {
  region: 'eu-west-1',
  endpoint: 'http://127.0.0.1:9',
  forcePathStyle: true,
  checksumMode: 'when_required',
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'secret',
  sessionToken: undefined,
  profile: undefined,
};

describe('createS3Client', () => {
  it('applies the settings and leaves retries to the transfer code', async () => {
    const client = createS3Client(base, { maxSockets: 4 });
    try {
      assert.equal(await client.config.region(), 'eu-west-1');
      assert.equal(client.config.forcePathStyle, true);
      assert.equal(await client.config.maxAttempts(), 1);
      assert.equal(await client.config.requestChecksumCalculation(), 'WHEN_REQUIRED');
      assert.equal(await client.config.responseChecksumValidation(), 'WHEN_REQUIRED');
      const credentials = await client.config.credentials();
      assert.equal(credentials.accessKeyId, 'AKIDEXAMPLE');
    } finally {
      client.destroy();
    }
  });

  it('maps when_supported to the SDK default of flexible checksums', async () => {
    const client = createS3Client({ ...base, checksumMode: 'when_supported' }, { maxSockets: 1 });
    try {
      assert.equal(await client.config.requestChecksumCalculation(), 'WHEN_SUPPORTED');
      assert.equal(await client.config.responseChecksumValidation(), 'WHEN_SUPPORTED');
    } finally {
      client.destroy();
    }
  });

  it('refuses half a key pair', () => {
    assert.throws(
      () => createS3Client({ ...base, secretAccessKey: undefined }, { maxSockets: 1 }),
      ConfigError,
    );
    assert.throws(() => createS3Client({ ...base, accessKeyId: undefined }, { maxSockets: 1 }), ConfigError);
  });
});
