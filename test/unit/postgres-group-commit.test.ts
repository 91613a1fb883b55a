import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from '../../src/store/postgres/group-commit.js';

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

describe('GroupCommit (PostgreSQL)', () => {
  it('writes one batch at a time: what comes while one is written goes in the next, together', async () => {
    const batches: number[][] = [];
    const firstHeld = deferred();
    const commits = new GroupCommit<number, number>(
      async (inputs) => {
        batches.push([...inputs]);
        if (batches.length === 1) await firstHeld.promise;
        return inputs.map((input) => input * 10);
      },
      () => assert.fail('no batch failed'),
    );
    const first = Promise.all([commits.write(1), commits.write(2)]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(batches, [[1, 2]]);
    const second = Promise.all([commits.write(3), commits.write(4), commits.write(5)]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(batches, [[1, 2]], 'nothing more is written while the first batch is');
    firstHeld.resolve();
    assert.deepEqual(await first, [10, 20]);
    assert.deepEqual(await second, [30, 40, 50]);
    assert.deepEqual(batches, [
      [1, 2],
      [3, 4, 5],
    ]);
  });

  it('writes each alone when its batch fails, so that one bad write fails only its caller', async () => {
    const alone: number[] = [];
    const commits = new GroupCommit<number, number>(
      () => Promise.reject(new Error('the batch failed')),
      async (input) => {
        alone.push(input);
        if (input === 2) throw new Error('2 is refused');
        return input;
      },
    );
    const results = await Promise.allSettled([commits.write(1), commits.write(2), commits.write(3)]);
    assert.deepEqual(
      results.map((result) =>
        result.status === 'fulfilled' ? result.value : (result.reason as Error).message,
      ),
      [1, '2 is refused', 3],
    );
    assert.deepEqual(alone, [1, 2, 3]);
  });

  it('settles every write queued, in flight or not, before flush resolves (before the pool closes)', async () => {
    const written: number[] = [];
    const commits = new GroupCommit<number, void>(
      async (inputs) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return inputs.map((input) => void written.push(input));
      },
      async () => undefined,
    );
    void commits.write(1);
    await new Promise((resolve) => setImmediate(resolve));
    void commits.write(2);
    await commits.flush();
    assert.deepEqual(written, [1, 2]);
  });
});
