import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { backoffDelayMs, withRetry, type RetryNotice } from '../../src/transfer/retry.js';

function serviceError(name: string, status: number): S3ServiceException {
  return new S3ServiceException({
    name,
    message: name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
}

/** An operation that fails with the given errors in turn, then answers 'done'. */
function failingThen(errors: unknown[]): { operation: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    operation: async () => {
      const error = errors[calls++];
      if (error !== undefined) throw error;
      return 'done';
    },
    calls: () => calls,
  };
}

const never = new AbortController().signal;

describe('backoffDelayMs', () => {
  const policy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };

  it('doubles the ceiling with each attempt up to the cap', () => {
    const almostOne = () => 0.999999;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((attempt) => backoffDelayMs(attempt, policy, almostOne)),
      [99, 199, 399, 799, 999, 999],
    );
  });

  it('draws the delay anywhere between zero and the ceiling (full jitter)', () => {
    assert.equal(
      backoffDelayMs(3, policy, () => 0),
      0,
    );
    assert.equal(
      backoffDelayMs(3, policy, () => 0.5),
      200,
    );
  });
});

describe('withRetry', () => {
  it('retries transient errors with growing backoff until success', async () => {
    const { operation, calls } = failingThen([
      serviceError('SlowDown', 503),
      serviceError('InternalError', 500),
    ]);
    const notices: RetryNotice[] = [];
    const result = await withRetry(operation, { maxAttempts: 5, baseDelayMs: 4 }, never, (n) =>
      notices.push(n),
    );
    assert.equal(result, 'done');
    assert.equal(calls(), 3);
    assert.deepEqual(
      notices.map((n) => n.attempt),
      [1, 2],
    );
    assert.ok(notices[0]!.delayMs < 4 && notices[1]!.delayMs < 8, 'delays stay under base × 2^(attempt-1)');
  });

  it('does not retry a permanent error', async () => {
    const denied = serviceError('AccessDenied', 403);
    const { operation, calls } = failingThen([denied]);
    await assert.rejects(withRetry(operation, { maxAttempts: 5, baseDelayMs: 1 }, never), denied);
    assert.equal(calls(), 1);
  });

  it('gives up after maxAttempts with the last error', async () => {
    const errors = [1, 2, 3, 4].map(() => serviceError('SlowDown', 503));
    const { operation, calls } = failingThen(errors);
    await assert.rejects(withRetry(operation, { maxAttempts: 3, baseDelayMs: 1 }, never), errors[2]);
    assert.equal(calls(), 3);
  });

  it('does not start when the signal is already aborted', async () => {
    const { operation, calls } = failingThen([]);
    await assert.rejects(withRetry(operation, { maxAttempts: 3, baseDelayMs: 1 }, AbortSignal.abort()), {
      name: 'AbortError',
    });
    assert.equal(calls(), 0);
  });

  it('stops waiting at once when aborted during the backoff', async () => {
    const controller = new AbortController();
    const { operation, calls } = failingThen([serviceError('SlowDown', 503)]);
    const started = Date.now();
    const retrying = withRetry(
      operation,
      { maxAttempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 },
      controller.signal,
      () => controller.abort(),
    );
    await assert.rejects(retrying, { name: 'AbortError' });
    assert.equal(calls(), 1);
    assert.ok(Date.now() - started < 5_000, 'the backoff was cut short');
  });

  it('reports an abort rather than the error the aborted request failed with', async () => {
    const controller = new AbortController();
    const operation = async () => {
      controller.abort();
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    };
    await assert.rejects(withRetry(operation, { maxAttempts: 5, baseDelayMs: 1 }, controller.signal), {
      name: 'AbortError',
    });
  });
});
