import assert from 'node:assert/strict';
import { it } from 'node:test';
import { readyAtFor } from '../../src/engine/readiness.js';

it('a file is ready once its modification time is the settle time in the past, in whole milliseconds', () => {
  const now = 1_800_000_000_000;
  assert.equal(readyAtFor({ mtimeMs: now - 60_000 }, now, 2000), now - 58_000, 'long quiet: ready already');
  assert.equal(readyAtFor({ mtimeMs: now }, now, 2000), now + 2000, 'just written: after the settle time');
  assert.equal(readyAtFor({ mtimeMs: now + 3_600_000 }, now, 2000), now + 2000, 'a future time is capped');
  assert.equal(readyAtFor({ mtimeMs: now - 0.25 }, now, 1), now + 1, 'rounded up, never early');
  assert.ok(Number.isInteger(readyAtFor({ mtimeMs: now - 1000.123456 }, now, 500)));
});
