import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskCounts, Upload, UploadCounts } from '../../src/domain/model.js';
import { etaSecondsOf, phaseOf, progressOf } from '../../src/engine/progress.js';
import { THROUGHPUT_WINDOW_SECONDS, Throughput } from '../../src/engine/throughput.js';
import { NO_OBJECT_PROPERTIES } from '../../src/domain/object-properties.js';

function files(counts: Partial<TaskCounts>): TaskCounts {
  const all = { pending: 0, in_progress: 0, completed: 0, failed: 0, ...counts };
  return { ...all, total: all.pending + all.in_progress + all.completed + all.failed };
}

describe('phase', () => {
  it('is cancelled before anything else, then scanning, uploading, failed and idle', () => {
    const busy = files({ pending: 1, in_progress: 1, failed: 1, completed: 1 });
    assert.equal(phaseOf({ status: 'cancelled' }, true, busy), 'cancelled');
    assert.equal(phaseOf({ status: 'active' }, true, busy), 'scanning');
    assert.equal(phaseOf({ status: 'pending' }, true, files({})), 'scanning');
    assert.equal(phaseOf({ status: 'active' }, false, busy), 'uploading');
    assert.equal(phaseOf({ status: 'active' }, false, files({ in_progress: 1, failed: 2 })), 'uploading');
    assert.equal(phaseOf({ status: 'active' }, false, files({ pending: 1 })), 'uploading');
    assert.equal(phaseOf({ status: 'active' }, false, files({ failed: 1, completed: 3 })), 'failed');
    assert.equal(phaseOf({ status: 'active' }, false, files({ completed: 3 })), 'idle');
    assert.equal(phaseOf({ status: 'active' }, false, files({})), 'idle');
  });

  it('is completed for a completed one-shot upload, whatever else', () => {
    assert.equal(phaseOf({ status: 'completed' }, true, files({ completed: 3 })), 'completed');
    assert.equal(phaseOf({ status: 'completed' }, false, files({ completed: 3 })), 'completed');
  });
});

describe('eta', () => {
  it('is the backlog over the rate, rounded up; null with no rate or nothing left', () => {
    assert.equal(etaSecondsOf(1000, 100), 10);
    assert.equal(etaSecondsOf(1001, 100), 11);
    assert.equal(etaSecondsOf(1000, 0), null);
    assert.equal(etaSecondsOf(0, 100), null);
  });

  it('counts only pending and in-progress bytes, and a cancelled upload has neither rate nor eta', () => {
    const upload: Upload = {
      uploadId: 'u',
      sourceFolder: '/data',
      destinationBucket: 'b',
      destinationPrefix: '',
      pattern: '**',
      status: 'active',
      createdAt: 0,
      updatedAt: 0,
      lastError: null,
      lastCompletedAt: 5000,
      watch: true,
      completedAt: null,
      ifExists: 'overwrite',
      listedAt: null,
      objectProperties: NO_OBJECT_PROPERTIES,
      watchedBy: null,
      completeMarkers: [],
      manifestKey: null,
      notifyUrl: null,
      scannedAt: null,
      arrival: null,
      manifest: null,
      notification: null,
    };
    const counts: UploadCounts = {
      files: files({ pending: 1, failed: 1 }),
      bytes: { total: 3000, uploaded: 0 },
      backlogBytes: 2000,
    };
    assert.deepEqual(progressOf(upload, counts, { initialScanRunning: false, bytesPerSecond: 500 }), {
      phase: 'uploading',
      bytesPerSecond: 500,
      etaSeconds: 4,
      lastCompletedAt: 5000,
    });
    assert.deepEqual(
      progressOf({ ...upload, status: 'cancelled' }, counts, {
        initialScanRunning: false,
        bytesPerSecond: 500,
      }),
      { phase: 'cancelled', bytesPerSecond: 0, etaSeconds: null, lastCompletedAt: 5000 },
    );
  });
});

describe('throughput', () => {
  it('averages the bytes of the last window per second, and forgets what left the window', () => {
    let now = 1_000_000;
    const throughput = new Throughput(() => now);
    assert.equal(throughput.bytesPerSecond('u'), 0);
    throughput.add('u', 10_000);
    now += 500;
    throughput.add('u', 10_000); // the same second
    now += 1000;
    throughput.add('u', 20_000);
    throughput.add('other', 999_999);
    // 1.5 s since the bytes began to move: the rate is over those, not over the whole window.
    assert.equal(throughput.bytesPerSecond('u'), Math.floor(40_000 / 1.5));
    // The first second leaves the window once THROUGHPUT_WINDOW_SECONDS have passed since it.
    now = 1_000_000 + THROUGHPUT_WINDOW_SECONDS * 1000;
    assert.equal(throughput.bytesPerSecond('u'), 20_000 / THROUGHPUT_WINDOW_SECONDS);
    now += 1000;
    assert.equal(throughput.bytesPerSecond('u'), 0);
    assert.equal(throughput.bytesPerSecond('other'), 0);
  });

  it("reuses a slot of the ring for a new second, without the old second's bytes", () => {
    let now = 0;
    const throughput = new Throughput(() => now);
    throughput.add('u', 1_000_000);
    now = THROUGHPUT_WINDOW_SECONDS * 1000; // the same slot, one lap later
    throughput.add('u', 2000);
    now += 2000;
    assert.equal(throughput.bytesPerSecond('u'), 1000);
  });

  it('is over the time since bytes began to move when that is shorter than the window, a second at least', () => {
    let now = 5_000_000;
    const throughput = new Throughput(() => now);
    throughput.add('u', 4 * 1024 * 1024);
    assert.equal(throughput.bytesPerSecond('u'), 4 * 1024 * 1024); // not 1/20 of it
    now += 4000;
    throughput.add('u', 4 * 1024 * 1024);
    assert.equal(throughput.bytesPerSecond('u'), 2 * 1024 * 1024);
    // A stall keeps its age: the rate falls as the window empties.
    now += 12_000;
    assert.equal(throughput.bytesPerSecond('u'), Math.floor((8 * 1024 * 1024) / 16));
  });

  it('counts a young rate from when a file began to send, not from the first bytes confirmed', () => {
    let now = 7_000_000;
    const throughput = new Throughput(() => now);
    throughput.began('u');
    now += 1500;
    assert.equal(throughput.bytesPerSecond('u'), 0); // nothing confirmed yet, the start is kept
    now += 2500;
    throughput.add('u', 3 * 1024 * 1024); // a small file, confirmed whole after 4 s
    throughput.began('u'); // another file begins: the start stays
    assert.equal(throughput.bytesPerSecond('u'), Math.floor((3 * 1024 * 1024) / 4));
  });

  it('ignores nothing and negative amounts, and forgets a cancelled upload', () => {
    const throughput = new Throughput(() => 0);
    throughput.add('u', 0);
    throughput.add('u', -5);
    assert.equal(throughput.bytesPerSecond('u'), 0);
    throughput.add('u', 2000);
    throughput.forget('u');
    assert.equal(throughput.bytesPerSecond('u'), 0);
  });
});
