// The dashboard's pure helpers: how a file read twice while the list was being read is listed,
// and how numbers and times are written.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FileTask } from '../../ui/api-types.js';
import { latestOfEach } from '../../ui/file-reads.js';
import { formatBytes, formatEta, formatRate, objectPropertyPhrases, percent } from '../../ui/format.js';

function file(taskId: number, status: FileTask['status']): FileTask {
  return { task_id: taskId, status, relative_path: `f${taskId}` } as FileTask;
}

describe('the dashboard', () => {
  test('lists a file once, where its last read put it', () => {
    // Read in progress, then (a request later) completed: listed as completed only.
    const read = [file(1, 'failed'), file(2, 'in_progress'), file(3, 'pending'), file(2, 'completed')];
    assert.deepEqual(
      latestOfEach(read).map((item) => [item.task_id, item.status]),
      [
        [1, 'failed'],
        [3, 'pending'],
        [2, 'completed'],
      ],
    );
    assert.deepEqual(latestOfEach([]), []);
  });

  test('writes sizes, speeds, times left and shares as people read them', () => {
    assert.deepEqual([0, 1023, 1536, 5 * 1024 ** 3].map(formatBytes), [
      '0 B',
      '1023 B',
      '1.5 KiB',
      '5.0 GiB',
    ]);
    assert.deepEqual([0, 50 * 1024, 52_428_800].map(formatRate), ['—', '50.0 KiB/s', '50.0 MiB/s']);
    assert.deepEqual([null, 42, 125, 4000].map(formatEta), ['—', '42 s', '2 min 05 s', '1 h 06 min']);
    assert.deepEqual(
      [percent(0, 0), percent(999, 1000), percent(1000, 1000)],
      [0, 99, 100],
      '100% only when done',
    );
  });

  test('says which object properties an upload sets, and only those', () => {
    const none = { storage_class: null, sse: null, sse_kms_key_id: null, metadata: {}, tags: {} };
    assert.deepEqual(objectPropertyPhrases(none), []);
    assert.deepEqual(
      objectPropertyPhrases({
        storage_class: 'GLACIER_IR',
        sse: 'aws:kms',
        sse_kms_key_id: 'alias/lab',
        metadata: { project: 'genomics', run: '42' },
        tags: { lab: 'seq' },
      }),
      [
        'storage class GLACIER_IR',
        'encryption aws:kms (key alias/lab)',
        'metadata project=genomics, run=42',
        'tags lab=seq',
      ],
    );
    assert.deepEqual(objectPropertyPhrases({ ...none, sse: 'AES256' }), ['encryption AES256']);
  });
});
