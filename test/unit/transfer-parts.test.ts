import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BufferPool } from '../../src/transfer/buffer-pool.js';
import { OrderedHash } from '../../src/transfer/content-hash.js';
import { runBounded } from '../../src/transfer/bounded-pool.js';
import { matchListedParts } from '../../src/transfer/multipart-resume.js';
import { PIECE_BYTES, piecesLeaseBytes } from '../../src/transfer/part-pieces.js';
import {
  bufferBytesOf,
  MAX_OBJECT_SIZE,
  MAX_PARTS,
  MAX_PART_SIZE,
  partLength,
  partSizeFor,
  partNumbers,
  partOffset,
  planParts,
} from '../../src/transfer/part-plan.js';

const MiB = 1024 * 1024;

describe('planParts', () => {
  it('cuts a file into full parts and a shorter last one', () => {
    const plan = planParts(12 * MiB + 3, 5 * MiB);
    assert.equal(plan.partCount, 3);
    assert.deepEqual([...partNumbers(plan)], [1, 2, 3]);
    assert.deepEqual(
      [1, 2, 3].map((n) => partOffset(plan, n)),
      [0, 5 * MiB, 10 * MiB],
    );
    assert.deepEqual(
      [1, 2, 3].map((n) => partLength(plan, n)),
      [5 * MiB, 5 * MiB, 2 * MiB + 3],
    );
  });

  it('has no empty last part when the size is a multiple of the part size', () => {
    const plan = planParts(10 * MiB, 5 * MiB);
    assert.equal(plan.partCount, 2);
    assert.equal(partLength(plan, 2), 5 * MiB);
  });
});

describe('matchListedParts', () => {
  const plan = planParts(12 * MiB, 5 * MiB); // parts of 5, 5 and 2 MiB

  it('trusts parts that S3 lists exactly as they were saved', () => {
    const saved = [{ partNumber: 1, etag: 'aa', size: 5 * MiB }];
    const listed = [{ partNumber: 1, etag: 'aa', size: 5 * MiB }];
    assert.deepEqual(matchListedParts(saved, listed, plan), { trusted: saved, unconfirmed: new Map() });
  });

  it('leaves parts only S3 knows, or knows differently, to be checked against the local bytes', () => {
    const saved = [{ partNumber: 1, etag: 'aa', size: 5 * MiB }];
    const listed = [
      { partNumber: 1, etag: 'bb', size: 5 * MiB },
      { partNumber: 3, etag: 'cc', size: 2 * MiB },
    ];
    const { trusted, unconfirmed } = matchListedParts(saved, listed, plan);
    assert.deepEqual(trusted, []);
    assert.deepEqual(
      [...unconfirmed],
      [
        [1, 'bb'],
        [3, 'cc'],
      ],
    );
  });

  it('ignores listed parts of the wrong size or beyond the last part', () => {
    const saved = [{ partNumber: 2, etag: 'aa', size: 5 * MiB }];
    const listed = [
      { partNumber: 2, etag: 'aa', size: 4 * MiB },
      { partNumber: 4, etag: 'dd', size: 1 },
    ];
    assert.deepEqual(matchListedParts(saved, listed, plan), { trusted: [], unconfirmed: new Map() });
  });

  it('does not trust a saved part that S3 does not list', () => {
    const saved = [{ partNumber: 1, etag: 'aa', size: 5 * MiB }];
    assert.deepEqual(matchListedParts(saved, [], plan).trusted, []);
  });
});

/** A promise with its resolve function, to let the test decide when work finishes. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('runBounded', () => {
  it('keeps at most `concurrency` items in progress and processes them all', async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    await runBounded([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      done.push(item);
    });
    assert.equal(peak, 3);
    assert.deepEqual(done.sort(), [1, 2, 3, 4, 5, 6, 7]);
  });

  it('starts no new item after a failure and waits for the items in flight before rethrowing', async () => {
    const slow = gate();
    const started: number[] = [];
    let slowFinished = false;
    const pool = runBounded([1, 2, 3, 4], 2, async (item) => {
      started.push(item);
      if (item === 1) {
        await slow.promise;
        slowFinished = true;
        return;
      }
      throw new Error(`item ${item} failed`);
    });
    let settled = false;
    void pool.catch(() => undefined).finally(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, 'the pool waits for item 1, still in flight');
    slow.open();
    await assert.rejects(pool, /item 2 failed/);
    assert.ok(slowFinished);
    assert.deepEqual(started, [1, 2]);
  });

  it('gives each worker its own index', async () => {
    const seen = new Set<number>();
    await runBounded([1, 2, 3, 4], 2, async (_item, worker) => {
      seen.add(worker);
      await new Promise((resolve) => setImmediate(resolve));
    });
    assert.deepEqual([...seen].sort(), [0, 1]);
  });
});

describe('parts of the largest files', () => {
  it('fit in 10,000 parts of at most 5 GiB up to 5 TiB, and take two pieces of at most half the pool each', () => {
    const plan = planParts(MAX_OBJECT_SIZE, partSizeFor(MAX_OBJECT_SIZE, 8 * MiB));
    assert.ok(plan.partCount <= MAX_PARTS && plan.partSize <= MAX_PART_SIZE, JSON.stringify(plan));
    // Above the default MAX_BUFFER_BYTES: such parts go in pieces.
    assert.ok(plan.partSize > 256 * MiB);
    assert.equal(piecesLeaseBytes(new BufferPool(256 * MiB)), 2 * PIECE_BYTES);
    assert.equal(piecesLeaseBytes(new BufferPool(8 * MiB)), 8 * MiB);
    assert.equal(piecesLeaseBytes(new BufferPool(5 * MiB + 1)), 5 * MiB);
  });
});

describe('OrderedHash', () => {
  it('hashes a chunk fed in pieces on its turn, in chunk order', async () => {
    const content = new OrderedHash();
    const order: string[] = [];
    const second = content.update(2, Buffer.from('cd'));
    const first = content.updateFrom(1, async (hash) => {
      for (const piece of ['a', 'b']) {
        await new Promise((resolve) => setImmediate(resolve));
        hash.update(piece);
        order.push(piece);
      }
      return 'fed';
    });
    void second.then(() => order.push('cd'));
    assert.equal(await first, 'fed');
    await second;
    assert.deepEqual(order, ['a', 'b', 'cd']);
    assert.equal(content.hash.digest('hex'), createHash('sha256').update('abcd').digest('hex'));
  });

  it('fails every later chunk when feeding one fails', async () => {
    const content = new OrderedHash();
    const later = content.update(2, Buffer.from('x'));
    const failing = content.updateFrom(1, () => Promise.reject(new Error('read failed')));
    await assert.rejects(failing, /read failed/);
    await assert.rejects(later, /read failed/);
  });
});

describe('bufferBytesOf', () => {
  const settings = { multipartThresholdBytes: 16 * MiB, partSizeBytes: 8 * MiB, maxConcurrentParts: 4 };
  it('weighs a small file by its size, and a multipart one by its parts in flight', () => {
    assert.equal(bufferBytesOf(16 * 1024, settings), 16 * 1024);
    assert.equal(bufferBytesOf(0, settings), 1);
    assert.equal(bufferBytesOf(20 * MiB, settings), 20 * MiB);
    assert.equal(bufferBytesOf(1024 * MiB, settings), 32 * MiB);
    // 200 GiB needs parts of 21 MiB to stay within 10,000.
    assert.equal(bufferBytesOf(200 * 1024 * MiB, settings), 4 * 21 * MiB);
  });
});
