// The pieces the multipart engine and its part sources share: an async source pulled by bounded
// workers, a content hash that starts after a copied prefix and forgets a last part, the parts S3
// holds sorted against the saved ones, and a read that stops where the file ends.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runBounded } from '../../src/transfer/bounded-pool.js';
import { OrderedHash } from '../../src/transfer/content-hash.js';
import { readUpTo } from '../../src/transfer/file-version.js';
import { HeldParts } from '../../src/transfer/multipart-resume.js';

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('runBounded over an async source', () => {
  it('pulls the next item only for a free worker, and waits for the source as it waits for items', async () => {
    let pulled = 0;
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    async function* source(): AsyncGenerator<number> {
      for (let item = 1; item <= 5; item++) {
        await new Promise((resolve) => setImmediate(resolve));
        pulled++;
        assert.ok(pulled - done.length <= 2, 'never more items taken than workers');
        yield item;
      }
    }
    await runBounded(source(), 2, async (item) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      done.push(item);
    });
    assert.equal(peak, 2);
    assert.deepEqual(done.sort(), [1, 2, 3, 4, 5]);
  });

  it('rethrows the source failure once the items in flight have settled', async () => {
    let inFlightFinished = false;
    async function* source(): AsyncGenerator<number> {
      yield 1;
      throw new Error('the file was rewritten');
    }
    await assert.rejects(
      runBounded(source(), 2, async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        inFlightFinished = true;
      }),
      /rewritten/,
    );
    assert.ok(inFlightFinished);
  });
});

describe('OrderedHash', () => {
  it('goes on from a prefix hashed apart, and forgets the chunks fed since a mark', async () => {
    const prefix = createHash('sha256').update('copied-');
    const content = new OrderedHash(prefix, 3); // chunks 1 and 2 were the copied prefix
    await content.update(3, Buffer.from('kept-'));
    const beforeTail = content.mark();
    await content.update(4, Buffer.from('short'));
    assert.equal(content.digestSoFar(), sha256('copied-kept-short'));
    content.rewind(beforeTail);
    await content.update(4, Buffer.from('longer'));
    assert.equal(content.digestSoFar(), sha256('copied-kept-longer'));
  });
});

describe('HeldParts', () => {
  const saved = [
    { partNumber: 1, etag: '"AA"', size: 5 },
    { partNumber: 2, etag: 'bb', size: 5 },
  ];
  const listed = [
    { partNumber: 1, etag: 'aa', size: 5, checksum: 'c1' },
    { partNumber: 2, etag: 'xx', size: 5 },
    { partNumber: 3, etag: 'cc', size: 5 },
  ];
  const held = new HeldParts(saved, listed);

  it('finds a part S3 holds at the expected size, saved when both sides agree on its ETag', () => {
    assert.deepEqual(held.find(1, 5), {
      part: { partNumber: 1, etag: 'aa', size: 5, checksum: 'c1' },
      saved: true,
    });
    assert.deepEqual(held.find(2, 5), { part: { partNumber: 2, etag: 'xx', size: 5 }, saved: false });
    assert.deepEqual(held.find(3, 5), { part: { partNumber: 3, etag: 'cc', size: 5 }, saved: false });
  });

  it('does not find a part of another size, or one S3 does not hold', () => {
    assert.equal(held.find(1, 4), undefined);
    assert.equal(held.find(4, 5), undefined);
  });
});

describe('readUpTo', () => {
  it('fills the buffer, or says how many bytes the file held from there', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'read-up-to-'));
    try {
      const filePath = path.join(folder, 'ten.bin');
      await writeFile(filePath, '0123456789');
      const handle = await open(filePath);
      try {
        const buffer = Buffer.alloc(4);
        assert.equal(await readUpTo(handle, buffer, 2), 4);
        assert.equal(buffer.toString(), '2345');
        assert.equal(await readUpTo(handle, buffer, 8), 2);
        assert.equal(await readUpTo(handle, buffer, 10), 0);
      } finally {
        await handle.close();
      }
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
