import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, sqlitePathOf } from '../../src/config.js';
import { partSizeFor } from '../../src/transfer/part-plan.js';

const MiB = 1024 * 1024;

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, '/srv/app');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error;
  }
  assert.fail(`expected a configuration error for ${JSON.stringify(env)}`);
}

describe('configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({}, '/srv/app');
    assert.equal(config.port, 8000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.sqlitePath, '/srv/app/data/uploads.db');
    assert.equal(config.s3.region, 'us-east-1');
    assert.equal(config.s3.endpoint, undefined);
    assert.equal(config.s3.forcePathStyle, false);
    assert.equal(config.s3.checksumMode, 'when_required');
    assert.equal(config.failedRequeueIntervalSeconds, 3600);
    assert.equal(config.rescanIntervalSeconds, 60);
    assert.equal(config.settleSeconds, 2);
    assert.equal(config.transfer.multipartThresholdBytes, 16 * MiB);
    assert.equal(config.transfer.partSizeBytes, 8 * MiB);
    assert.equal(config.maxConcurrentFiles, 64);
    assert.equal(config.transfer.maxConcurrentParts, 4);
    assert.equal(config.transfer.retryMaxAttempts, 5);
    assert.equal(config.transfer.retryBaseDelayMs, 500);
    assert.equal(config.transfer.streamGrowingFiles, true);
    assert.equal(config.transfer.streamPartSizeBytes, 16 * MiB);
    assert.equal(config.transfer.appendMode, 'auto');
    assert.equal(config.transfer.checksumAlgorithm, 'md5');
    assert.equal(config.transfer.maxBufferBytes, 256 * MiB);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.logFormat, 'json');
    assert.deepEqual(config.metrics, { enabled: true, public: false });
    assert.deepEqual([config.heartbeatSeconds, config.leaseSeconds], [5, 30]);
  });

  it('takes a lease of at least three heartbeats, and refuses a shorter one with what to do', () => {
    const config = loadConfig({ HEARTBEAT_SECONDS: '1', LEASE_SECONDS: '3' });
    assert.deepEqual([config.heartbeatSeconds, config.leaseSeconds], [1, 3]);
    assert.equal(loadConfig({ LEASE_SECONDS: '15' }).leaseSeconds, 15);
    assert.equal(
      configError({ LEASE_SECONDS: '14.5' }).message,
      'LEASE_SECONDS: 14.5 is less than 3 × HEARTBEAT_SECONDS (5): a lease must outlast 3 heartbeats, or a live instance whose beats are late loses its tasks to another; raise LEASE_SECONDS to at least 15 or lower HEARTBEAT_SECONDS',
    );
    assert.equal(configError({ HEARTBEAT_SECONDS: '20' }).variable, 'LEASE_SECONDS');
    assert.equal(configError({ HEARTBEAT_SECONDS: '0' }).variable, 'HEARTBEAT_SECONDS');
    assert.equal(configError({ LEASE_SECONDS: 'long' }).variable, 'LEASE_SECONDS');
  });

  it('turns the metrics off, or opens /metrics without the token, but not both', () => {
    assert.deepEqual(loadConfig({ METRICS_ENABLED: 'false' }, '/srv/app').metrics, {
      enabled: false,
      public: false,
    });
    assert.deepEqual(loadConfig({ METRICS_PUBLIC: 'true' }, '/srv/app').metrics, {
      enabled: true,
      public: true,
    });
    assert.match(
      configError({ METRICS_ENABLED: 'false', METRICS_PUBLIC: 'true' }).message,
      /^METRICS_PUBLIC: is true but METRICS_ENABLED is false/,
    );
    assert.equal(
      configError({ METRICS_PUBLIC: 'maybe' }).message,
      "METRICS_PUBLIC: 'maybe' is not true or false",
    );
  });

  it('reads every variable', () => {
    const config = loadConfig(
      {
        PORT: '9000',
        DATABASE_URL: 'sqlite:/var/lib/uploads.db',
        AWS_ENDPOINT_URL: 'http://generic:1',
        AWS_ENDPOINT_URL_S3: 'http://s3-specific:2',
        S3_FORCE_PATH_STYLE: 'true',
        SETTLE_SECONDS: '0.5',
        S3_CHECKSUM_MODE: 'when_supported',
        STREAM_GROWING_FILES: 'false',
        STREAM_PART_SIZE_BYTES: String(64 * MiB),
        APPEND_MODE: 'off',
        CHECKSUM_ALGORITHM: 'CRC32C',
      },
      '/srv/app',
    );
    assert.deepEqual(
      [
        config.transfer.streamGrowingFiles,
        config.transfer.streamPartSizeBytes,
        config.transfer.appendMode,
        config.transfer.checksumAlgorithm,
      ],
      [false, 64 * MiB, 'off', 'crc32c'],
    );
    assert.equal(config.port, 9000);
    assert.equal(config.sqlitePath, '/var/lib/uploads.db');
    assert.equal(config.s3.endpoint, 'http://s3-specific:2');
    assert.equal(config.s3.forcePathStyle, true);
    assert.equal(config.settleSeconds, 0.5);
    assert.equal(config.s3.checksumMode, 'when_supported');
    assert.equal(loadConfig({ SETTLE_SECONDS: '0' }).settleSeconds, 0);
    assert.equal(loadConfig({ LOG_FORMAT: 'Pretty' }).logFormat, 'pretty');
  });

  it('names the variable of a bad value', () => {
    assert.equal(configError({ PORT: 'abc' }).variable, 'PORT');
    assert.match(configError({ PORT: 'abc' }).message, /^PORT: 'abc' is not a whole number/);
    assert.equal(configError({ PORT: '70000' }).variable, 'PORT');
    assert.match(
      configError({ PART_SIZE_BYTES: String(4 * MiB) }).message,
      /PART_SIZE_BYTES: .*minimum part size/,
    );
    assert.match(
      configError({ STREAM_PART_SIZE_BYTES: String(MiB) }).message,
      /STREAM_PART_SIZE_BYTES: .*minimum part size/,
    );
    assert.match(configError({ STREAM_PART_SIZE_BYTES: String(6 * 1024 * MiB) }).message, /out of range/);
    assert.match(
      configError({ APPEND_MODE: 'always' }).message,
      /APPEND_MODE: 'always' is not one of auto, off/,
    );
    assert.equal(configError({ CHECKSUM_ALGORITHM: 'sha1' }).variable, 'CHECKSUM_ALGORITHM');
    assert.equal(configError({ STREAM_GROWING_FILES: 'sometimes' }).variable, 'STREAM_GROWING_FILES');
    assert.equal(configError({ SETTLE_SECONDS: '-1' }).variable, 'SETTLE_SECONDS');
    assert.equal(configError({ S3_FORCE_PATH_STYLE: 'maybe' }).variable, 'S3_FORCE_PATH_STYLE');
    assert.equal(configError({ DATABASE_URL: 'mysql://x' }).variable, 'DATABASE_URL');
    assert.equal(configError({ AWS_ENDPOINT_URL_S3: 'not a url' }).variable, 'AWS_ENDPOINT_URL_S3');
    assert.equal(configError({ LOG_LEVEL: 'loud' }).variable, 'LOG_LEVEL');
    assert.match(
      configError({ LOG_FORMAT: 'text' }).message,
      /^LOG_FORMAT: 'text' is not one of json, pretty$/,
    );
    assert.equal(configError({ MAX_CONCURRENT_FILES: '0' }).variable, 'MAX_CONCURRENT_FILES');
    assert.match(configError({ RESCAN_INTERVAL_SECONDS: '9999999' }).message, /above the maximum/);
    assert.equal(
      configError({ MULTIPART_THRESHOLD_BYTES: String(6 * 1024 * MiB) }).variable,
      'MULTIPART_THRESHOLD_BYTES',
    );
  });

  it('refuses a MAX_BUFFER_BYTES that cannot hold one streamed part or one file below the multipart threshold', () => {
    assert.equal(loadConfig({ MAX_BUFFER_BYTES: String(64 * MiB) }).transfer.maxBufferBytes, 64 * MiB);
    assert.match(
      configError({ MAX_BUFFER_BYTES: String(8 * MiB) }).message,
      /^MAX_BUFFER_BYTES: 8388608 is below STREAM_PART_SIZE_BYTES \(16777216\): raise it, or lower STREAM_PART_SIZE_BYTES/,
    );
    const threshold = {
      MULTIPART_THRESHOLD_BYTES: String(512 * MiB),
      STREAM_PART_SIZE_BYTES: String(8 * MiB),
    };
    assert.match(
      configError({ ...threshold, MAX_BUFFER_BYTES: String(256 * MiB) }).message,
      /below MULTIPART_THRESHOLD_BYTES/,
    );
    assert.equal(configError({ MAX_BUFFER_BYTES: '0' }).variable, 'MAX_BUFFER_BYTES');
    // A part of a settled file larger than the pool is sent in pieces.
    const larger = { MAX_BUFFER_BYTES: String(16 * MiB), PART_SIZE_BYTES: String(64 * MiB) };
    assert.equal(loadConfig(larger).transfer.partSizeBytes, 64 * MiB);
  });

  it('takes a PostgreSQL URL, with its pool size and schema, and never repeats its password', () => {
    for (const url of [
      'postgres://app:pw@db.internal:5432/uploads',
      'postgresql://app@db/uploads?schema=q1',
    ]) {
      const config = loadConfig({ DATABASE_URL: url }, '/srv/app');
      assert.equal(config.databaseUrl, url);
      assert.equal(config.sqlitePath, undefined);
      assert.equal(config.databasePoolSize, 10);
    }
    assert.equal(loadConfig({ DATABASE_POOL_SIZE: '3' }).databasePoolSize, 3);
    assert.equal(configError({ DATABASE_POOL_SIZE: '0' }).variable, 'DATABASE_POOL_SIZE');
    const badSchema = configError({ DATABASE_URL: 'postgres://app:s3cret-pw@db/uploads?schema=Bad-Name' });
    assert.equal(badSchema.variable, 'DATABASE_URL');
    assert.match(
      badSchema.message,
      /postgres:\/\/app:\*\*\*@db\/uploads\?schema=Bad-Name.*the schema 'Bad-Name' is not supported/,
    );
    const unknown = configError({ DATABASE_URL: 'mysql://app:s3cret-pw@db/uploads' });
    assert.match(
      unknown.message,
      /'mysql:\/\/app:\*\*\*@db\/uploads' is not supported: .*sqlite:.*postgres:\/\//,
    );
    for (const error of [badSchema, unknown]) assert.doesNotMatch(error.message, /s3cret-pw/);
  });

  it('resolves SQLite paths against the working folder', () => {
    assert.equal(sqlitePathOf('sqlite:./data/x.db', '/w'), '/w/data/x.db');
    assert.equal(sqlitePathOf('sqlite:/abs/x.db', '/w'), '/abs/x.db');
    assert.equal(sqlitePathOf('sqlite:///abs/x.db', '/w'), '/abs/x.db');
  });

  it('refuses an in-memory database and SQLite URI forms, which used to become odd file names', () => {
    for (const url of [
      'sqlite::memory:',
      'sqlite::MEMORY:',
      'sqlite::memory:?cache=shared',
      'sqlite://:memory:',
    ]) {
      const error = configError({ DATABASE_URL: url });
      assert.equal(error.variable, 'DATABASE_URL', url);
      assert.match(error.message, /in-memory database is not supported: .*across restarts/, url);
      assert.match(error.message, /give the path of the database file/, url);
    }
    for (const url of [
      'sqlite:file::memory:?cache=shared',
      'sqlite:file:uploads.db?mode=memory',
      'sqlite:file:/var/lib/uploads.db',
      'sqlite:./uploads.db?mode=ro',
      'sqlite:./uploads.db#x',
    ]) {
      const error = configError({ DATABASE_URL: url });
      assert.equal(error.variable, 'DATABASE_URL', url);
      assert.match(error.message, /URI file names and options .* are not supported/, url);
    }
    // A file whose name merely holds "memory" is a file.
    assert.equal(sqlitePathOf('sqlite:./memory.db', '/w'), '/w/memory.db');
    assert.equal(sqlitePathOf('sqlite:./data/:memory:x', '/w'), '/w/data/:memory:x');
  });

  it('raises the part size so that a file needs at most 10,000 parts', () => {
    assert.equal(partSizeFor(1024 * MiB, 8 * MiB), 8 * MiB);
    const huge = 200 * 1024 * MiB; // 200 GiB
    const size = partSizeFor(huge, 8 * MiB);
    assert.ok(Math.ceil(huge / size) <= 10_000);
    assert.equal(size % MiB, 0);
  });
});
