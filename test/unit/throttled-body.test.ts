// A request body under the bandwidth limit: the same bytes, in slices that suit the rate. The
// bucket here holds far more than the bodies, so nothing waits on real time.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { ThrottledBody } from '../../src/transfer/throttled-body.js';
import { waitFor } from '../support/poll.js';
import { SYSTEM_CLOCK, TokenBucket, sliceBytesAt } from '../../src/transfer/token-bucket.js';

const KiB = 1024;

async function chunksOf(body: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return chunks;
}

/** A bucket at `rate` whose burst (1,000 s of sending) lets every test body go at once. */
function roomyBucket(rate: number): TokenBucket {
  return new TokenBucket(rate, SYSTEM_CLOCK, 1000);
}

describe('throttled request body', () => {
  it('sends a Buffer unchanged, in slices of 64 KiB', async () => {
    const content = randomBytes(300 * KiB);
    const chunks = await chunksOf(new ThrottledBody(content, roomyBucket(8 * 1024 * KiB)));
    assert.ok(Buffer.concat(chunks).equals(content));
    assert.deepEqual(
      chunks.map((chunk) => chunk.length),
      [64, 64, 64, 64, 44].map((k) => k * KiB),
    );
  });

  it('sends a stream unchanged, each slice a copy of its bytes', async () => {
    const pieces = [randomBytes(100 * KiB), randomBytes(30 * KiB)];
    const content = Buffer.concat(pieces);
    const body = new ThrottledBody(Readable.from(pieces), roomyBucket(8 * 1024 * KiB));
    const chunks = await chunksOf(body);
    assert.ok(Buffer.concat(chunks).equals(content));
    assert.ok(
      chunks.every((chunk) => chunk.buffer !== pieces[0]!.buffer && chunk.buffer !== pieces[1]!.buffer),
    );
  });

  it('takes smaller slices at a low rate, so a connection never goes quiet for long', async () => {
    assert.equal(sliceBytesAt(0), 64 * KiB);
    assert.equal(sliceBytesAt(4 * 1024 * KiB), 64 * KiB);
    assert.equal(sliceBytesAt(80 * KiB), 10 * KiB);
    assert.equal(sliceBytesAt(100), KiB);
    const chunks = await chunksOf(new ThrottledBody(randomBytes(25 * KiB), roomyBucket(80 * KiB)));
    assert.deepEqual(
      chunks.map((chunk) => chunk.length),
      [10, 10, 5].map((k) => k * KiB),
    );
  });

  it('stops waiting on the bucket when it is destroyed', async () => {
    const bucket = new TokenBucket(KiB, SYSTEM_CLOCK, 0); // 1 KiB slices, once the first 64 KiB are gone
    const body = new ThrottledBody(randomBytes(200 * KiB), bucket);
    body.resume();
    await waitFor(() => bucket.waiting > 0, { message: 'a slice waits on the bucket' });
    body.destroy();
    await new Promise((resolve) => body.once('close', resolve));
    assert.equal(bucket.waiting, 0);
  });
});
