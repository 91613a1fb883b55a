import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool, type BufferLease } from '../../src/transfer/buffer-pool.js';
import { seededRandom } from '../support/seeded-random.js';

const MiB = 1024 * 1024;

/** Whether a promise has settled, without waiting for it. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

test('a lease gets a buffer of exactly the bytes asked for', async () => {
  const pool = new BufferPool(4 * MiB);
  const lease = await pool.lease(3 * MiB + 7);
  assert.equal(lease.buffer.length, 3 * MiB + 7);
  assert.equal(pool.leasedBytes, 3 * MiB + 7);
  lease.release();
  lease.release(); // twice is harmless
  assert.equal(pool.leasedBytes, 0);
});

test('a lease that does not fit waits until enough is released', async () => {
  const pool = new BufferPool(4 * MiB);
  const first = await pool.lease(3 * MiB);
  const second = pool.lease(2 * MiB);
  assert.equal(await settled(second), false);
  first.release();
  assert.equal((await second).buffer.length, 2 * MiB);
  assert.equal(pool.leasedBytes, 2 * MiB);
});

test('leases are granted in the order they were asked for: a large one is not starved by small ones', async () => {
  const pool = new BufferPool(4 * MiB);
  const held = await pool.lease(2 * MiB);
  const order: string[] = [];
  const large = pool.lease(4 * MiB).then((lease) => (order.push('large'), lease));
  // Fits now, but must not overtake the large lease waiting before it.
  const small = pool.lease(1 * MiB).then((lease) => (order.push('small'), lease));
  assert.equal(await settled(small), false);
  held.release();
  (await large).release();
  (await small).release();
  assert.deepEqual(order, ['large', 'small']);
});

test('a lease larger than the pool is granted alone, once nothing else is leased', async () => {
  const pool = new BufferPool(4 * MiB);
  const small = await pool.lease(1 * MiB);
  const huge = pool.lease(6 * MiB);
  assert.equal(await settled(huge), false);
  small.release();
  const lease = await huge;
  assert.equal(lease.buffer.length, 6 * MiB);
  const next = pool.lease(1);
  assert.equal(await settled(next), false);
  lease.release();
  (await next).release();
});

test('an aborted wait rejects, leaves the queue, and no longer holds back the leases behind it', async () => {
  const pool = new BufferPool(4 * MiB);
  const held = await pool.lease(3 * MiB);
  const abort = new AbortController();
  const blocked = pool.lease(4 * MiB, abort.signal);
  const behind = pool.lease(1 * MiB);
  assert.equal(await settled(behind), false);
  abort.abort(new Error('stopped'));
  await assert.rejects(blocked, { name: 'AbortError' });
  (await behind).release();
  held.release();
  assert.equal(pool.leasedBytes, 0);
  await assert.rejects(pool.lease(1, abort.signal), { name: 'AbortError' });
});

test('released part-sized buffers are reused instead of allocated again', async () => {
  const pool = new BufferPool(64 * MiB);
  const first = await pool.lease(16 * MiB);
  const memory = first.buffer.buffer;
  first.release();
  const second = await pool.lease(16 * MiB);
  assert.equal(second.buffer.buffer, memory);
  second.release();
});

test('under random concurrent use the leased bytes never exceed the capacity, and every lease is granted', async () => {
  const random = seededRandom(7);
  const capacity = 64 * MiB;
  const pool = new BufferPool(capacity);
  let peak = 0;
  const worker = async (): Promise<void> => {
    for (let i = 0; i < 50; i++) {
      const bytes = 1 + Math.floor(random() * 20 * MiB);
      const lease: BufferLease = await pool.lease(bytes);
      peak = Math.max(peak, pool.leasedBytes);
      assert.equal(lease.buffer.length, bytes);
      await new Promise((resolve) => setImmediate(resolve));
      lease.release();
    }
  };
  await Promise.all(Array.from({ length: 12 }, worker));
  assert.ok(peak <= capacity, `peak ${peak} > ${capacity}`);
  assert.ok(peak > capacity / 2, `the pool was used (peak ${peak})`);
  assert.equal(pool.leasedBytes, 0);
});
