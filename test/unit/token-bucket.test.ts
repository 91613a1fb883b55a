// The bandwidth limit's token bucket on a clock the test moves: what it lets go, when, and in
// which order, and what a change of rate or an abort does to the bytes already waiting.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket, type Clock } from '../../src/transfer/token-bucket.js';

/** A clock that stands still until advance() moves it, firing the timers that fall due. */
class ManualClock implements Clock {
  private time = 0;
  private nextId = 0;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward by `ms`, firing each due timer at its own time, then lets promises settle. */
  async advance(ms: number): Promise<void> {
    await settle(); // what is already let go is let go now
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()]
        .filter(([, timer]) => timer.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].callback();
      await settle();
    }
    this.time = end;
    await settle();
  }

  get pendingTimers(): number {
    return this.timers.size;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

const KiB = 1024;

/** Takes `bytes` and records when (on the manual clock) it was let go. */
function track(bucket: TokenBucket, clock: ManualClock, bytes: number, signal?: AbortSignal) {
  const record: { at: number | undefined; error: unknown } = { at: undefined, error: undefined };
  bucket.take(bytes, signal).then(
    () => (record.at = clock.now()),
    (error: unknown) => (record.error = error),
  );
  return record;
}

describe('token bucket', () => {
  it('with no limit, lets every request go at once and sets no timer', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(0, clock);
    const taken = track(bucket, clock, 10 * 1024 * KiB);
    await settle();
    assert.equal(taken.at, 0);
    assert.equal(clock.pendingTimers, 0);
  });

  it('lets a full bucket go at once, then meters the bytes at the rate', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(64 * KiB, clock, 0); // 64 KiB/s: one slice a second
    const slices = Array.from({ length: 4 }, () => track(bucket, clock, 64 * KiB));
    await clock.advance(3000);
    assert.deepEqual(
      slices.map((slice) => slice.at),
      [0, 1000, 2000, 3000],
    );
  });

  it('holds the rate over a long run, whatever the slice sizes', async () => {
    const clock = new ManualClock();
    const rate = 1000 * KiB;
    const bucket = new TokenBucket(rate, clock, 0);
    const sizes = Array.from({ length: 200 }, (_, i) => [64 * KiB, 17 * KiB, 1, 40 * KiB][i % 4]!);
    const records = sizes.map((size) => track(bucket, clock, size));
    const total = sizes.reduce((sum, size) => sum + size, 0);
    await clock.advance(60_000);
    const last = Math.max(...records.map((record) => record.at ?? Infinity));
    // Everything but the first full bucket is paid for at the rate, to within a millisecond a slice.
    const expectedMs = ((total - 64 * KiB) * 1000) / rate;
    assert.ok(Math.abs(last - expectedMs) <= sizes.length, `${last} ms, expected about ${expectedMs} ms`);
  });

  it('serves waiters first come, first served', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(64 * KiB, clock, 0);
    const first = track(bucket, clock, 64 * KiB);
    const big = track(bucket, clock, 64 * KiB);
    const small = track(bucket, clock, 1);
    await clock.advance(1000);
    assert.equal(first.at, 0);
    assert.equal(big.at, 1000);
    assert.equal(small.at, undefined, 'a small request does not overtake a larger one ahead of it');
    await clock.advance(1);
    assert.equal(small.at, 1001);
  });

  it('lets a request larger than the bucket go once it is full, and makes it pay afterwards', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(64 * KiB, clock, 0);
    const large = track(bucket, clock, 256 * KiB);
    const after = track(bucket, clock, 64 * KiB);
    await clock.advance(10_000);
    assert.equal(large.at, 0);
    assert.equal(after.at, 4000, 'the 192 KiB of debt, then its own 64 KiB');
  });

  it('applies a new rate to the bytes already waiting', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(64 * KiB, clock, 0);
    track(bucket, clock, 64 * KiB); // empties the bucket
    const waiting = track(bucket, clock, 64 * KiB); // due at 1000 ms at 64 KiB/s
    await clock.advance(500); // half refilled
    bucket.setBytesPerSecond(128 * KiB); // the other half now takes 250 ms
    await clock.advance(249);
    assert.equal(waiting.at, undefined);
    await clock.advance(1);
    assert.equal(waiting.at, 750);
    assert.equal(bucket.bytesPerSecond, 128 * KiB);
  });

  it('lets every waiter go when the limit is lifted, and meters again from a full bucket when set', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(KiB, clock, 0);
    const waiters = Array.from({ length: 3 }, () => track(bucket, clock, 64 * KiB));
    await clock.advance(10);
    assert.deepEqual(
      waiters.map((waiter) => waiter.at),
      [0, undefined, undefined],
    );
    bucket.setBytesPerSecond(0);
    await settle();
    assert.deepEqual(
      waiters.map((waiter) => waiter.at),
      [0, 10, 10],
    );
    assert.equal(clock.pendingTimers, 0);
    bucket.setBytesPerSecond(64 * KiB);
    const next = [track(bucket, clock, 64 * KiB), track(bucket, clock, 64 * KiB)];
    await clock.advance(1000);
    assert.deepEqual(
      next.map((waiter) => waiter.at),
      [10, 1010],
    );
  });

  it('drops an aborted waiter, rejects it with the reason, and does not count its bytes', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(64 * KiB, clock, 0);
    track(bucket, clock, 64 * KiB);
    const stopper = new AbortController();
    const aborted = track(bucket, clock, 64 * KiB, stopper.signal);
    const behind = track(bucket, clock, 64 * KiB);
    await clock.advance(100);
    const reason = new Error('request over');
    stopper.abort(reason);
    await clock.advance(900);
    assert.equal(aborted.error, reason);
    assert.equal(aborted.at, undefined);
    assert.equal(behind.at, 1000, 'the next waiter takes its place');
    assert.equal(bucket.waiting, 0);
  });

  it('holds a quarter of a second of sending, so a late timer is caught up but a burst stays short', async () => {
    const clock = new ManualClock();
    const rate = 1024 * KiB;
    const bucket = new TokenBucket(rate, clock);
    const first = track(bucket, clock, 256 * KiB); // the full bucket: a quarter of a second
    const second = track(bucket, clock, 64 * KiB);
    await clock.advance(1);
    assert.equal(first.at, 0);
    assert.equal(second.at, undefined);
    await clock.advance(10_000); // idle: the bucket fills up to its burst, no further
    const burst = Array.from({ length: 6 }, () => track(bucket, clock, 64 * KiB));
    await clock.advance(0);
    assert.equal(
      burst.filter((waiter) => waiter.at !== undefined).length,
      4,
      'a quarter of a second at once',
    );
  });

  it('refuses a rate that is not a whole number of bytes per second', () => {
    assert.throws(() => new TokenBucket(-1), RangeError);
    assert.throws(() => new TokenBucket(1.5), RangeError);
    assert.throws(() => new TokenBucket(0).setBytesPerSecond(Number.NaN), RangeError);
  });
});
