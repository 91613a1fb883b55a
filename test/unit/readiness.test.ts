import assert from 'node:assert/strict';
import { it } from 'node:test';
import { readyAtFor, streamsNow, type Readiness } from '../../src/engine/readiness.js';

const settleOnly = (settleMs: number): Readiness => ({ settleMs, stream: undefined });

it('a file is ready once its modification time is the settle time in the past, in whole milliseconds', () => {
  const now = 1_800_000_000_000;
  const size = 10;
  const ready = (mtimeMs: number, settleMs: number) =>
    readyAtFor({ size, mtimeMs }, now, settleOnly(settleMs));
  assert.equal(ready(now - 60_000, 2000), now - 58_000, 'long quiet: ready already');
  assert.equal(ready(now, 2000), now + 2000, 'just written: after the settle time');
  assert.equal(ready(now + 3_600_000, 2000), now + 2000, 'a future time is capped');
  assert.equal(ready(now - 0.25, 1), now + 1, 'rounded up, never early');
  assert.ok(Number.isInteger(ready(now - 1000.123456, 500)));
});

it('a large file still being written is ready at once, to be uploaded as it grows', () => {
  const now = 1_800_000_000_000;
  const readiness: Readiness = { settleMs: 2000, stream: { fromBytes: 100, belowBytes: 1000 } };
  const cases = [
    { file: { size: 500, mtimeMs: now - 10 }, streams: true, readyAt: now },
    { file: { size: 99, mtimeMs: now - 10 }, streams: false, readyAt: now + 1990 },
    { file: { size: 1000, mtimeMs: now - 10 }, streams: false, readyAt: now + 1990 },
    { file: { size: 500, mtimeMs: now - 5000 }, streams: false, readyAt: now - 3000 },
  ];
  for (const { file, streams, readyAt } of cases) {
    assert.equal(streamsNow(file, now, readiness), streams, JSON.stringify(file));
    assert.equal(readyAtFor(file, now, readiness), readyAt, JSON.stringify(file));
    assert.equal(streamsNow(file, now, { ...readiness, stream: undefined }), false, 'streaming off');
  }
});
