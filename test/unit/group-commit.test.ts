import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from '../../src/store/sqlite/group-commit.js';

describe('GroupCommit', () => {
  it('writes what comes in one turn of the event loop together, and settles each caller with its own result', async () => {
    const batches: number[][] = [];
    const commits = new GroupCommit<number, number>(
      (inputs) => {
        batches.push([...inputs]);
        return inputs.map((input) => input * 10);
      },
      () => assert.fail('no batch failed'),
    );
    const first = await Promise.all([commits.write(1), commits.write(2), commits.write(3)]);
    const second = await commits.write(4);
    assert.deepEqual(first, [10, 20, 30]);
    assert.equal(second, 40);
    assert.deepEqual(batches, [[1, 2, 3], [4]]);
  });

  it('writes each alone when its batch fails, so that one bad write fails only its caller', async () => {
    const alone: number[] = [];
    const commits = new GroupCommit<number, number>(
      () => {
        throw new Error('the batch failed');
      },
      (input) => {
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

  it('commits what is queued at once when flushed (before the database closes)', () => {
    const written: number[] = [];
    const commits = new GroupCommit<number, void>(
      (inputs) => inputs.map((input) => void written.push(input)),
      () => undefined,
    );
    void commits.write(7);
    commits.flush();
    assert.deepEqual(written, [7]);
  });
});
