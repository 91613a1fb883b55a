// The manifest's text, streamed page by page from the store, and when a manifest is stale.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { writeManifest } from '../../src/arrival/manifest.js';
import type { ManifestEntry, ManifestRecord, Upload } from '../../src/domain/model.js';
import { NO_OBJECT_PROPERTIES } from '../../src/domain/object-properties.js';
import { manifestStale } from '../../src/engine/arrivals.js';
import type { ObjectChunk, ObjectTarget } from '../../src/transfer/stream-object.js';

const UPLOAD: Upload = {
  uploadId: 'run-7',
  sourceFolder: '/data/run-7',
  destinationBucket: 'seq',
  destinationPrefix: 'runs/run-7',
  pattern: '**',
  status: 'active',
  createdAt: 0,
  updatedAt: 0,
  lastError: null,
  lastCompletedAt: null,
  watch: true,
  completedAt: null,
  ifExists: 'overwrite',
  listedAt: null,
  objectProperties: NO_OBJECT_PROPERTIES,
  watchedBy: null,
  completeMarkers: ['RTAComplete.txt'],
  manifestKey: 'runs/run-7/_manifest.json',
  notifyUrl: null,
  scannedAt: null,
  arrival: null,
  manifest: null,
  notification: null,
};

function entries(count: number): ManifestEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    taskId: 10 + 3 * i,
    key: `runs/run-7/"quoted"\\${i}.bcl`,
    size: i,
    sha256: i % 5 === 0 ? null : createHash('sha256').update(String(i)).digest('hex'),
    etag: `${i}`.padStart(32, '0'),
    mtimeMs: Date.UTC(2026, 11, 5) + i,
  }));
}

/** Writes the manifest of `all` through a store that pages them and an uploader that keeps the bytes. */
async function written(all: ManifestEntry[]) {
  const pages: number[] = [];
  let text = '';
  let target: ObjectTarget | undefined;
  let recorded: ManifestRecord | undefined;
  const record = await writeManifest({
    store: {
      async manifestEntries(uploadId, afterTaskId, limit) {
        assert.equal(uploadId, 'run-7');
        const page = all.filter((entry) => entry.taskId > afterTaskId).slice(0, limit);
        pages.push(page.length);
        return page;
      },
      async recordManifest(_uploadId, manifest) {
        recorded = manifest;
      },
    },
    uploader: {
      async writeObject(to: ObjectTarget, chunks: AsyncIterable<ObjectChunk>) {
        target = to;
        for await (const chunk of chunks) text += chunk.toString();
        const sha256 = createHash('sha256').update(text).digest('hex');
        return { etag: 'e', validation: 'etag', sha256, size: Buffer.byteLength(text), parts: 0 };
      },
    },
    upload: UPLOAD,
    key: 'runs/run-7/_manifest.json',
    now: Date.UTC(2026, 11, 5, 14),
    signal: new AbortController().signal,
  });
  return { record, recorded, text, pages, target };
}

describe('the manifest', () => {
  it('lists every entry in order, a page at a time, as one JSON document with one file per line', async () => {
    const all = entries(2_345);
    const { record, recorded, text, pages, target } = await written(all);
    assert.deepEqual(pages, [1000, 1000, 345]);
    const manifest = JSON.parse(text) as { files: { key: string; sha256: string | null }[] } & Record<
      string,
      unknown
    >;
    assert.equal(manifest.upload_id, 'run-7');
    assert.equal(manifest.bucket, 'seq');
    assert.equal(manifest.prefix, 'runs/run-7');
    assert.equal(manifest.written_at, '2026-12-05T14:00:00.000Z');
    assert.equal(manifest.file_count, 2_345);
    assert.equal(manifest.bytes, (2_344 * 2_345) / 2);
    assert.deepEqual(
      manifest.files.map((line) => line.key),
      all.map((entry) => entry.key),
    );
    assert.deepEqual(manifest.files[1], {
      key: all[1]!.key,
      size: 1,
      sha256: all[1]!.sha256,
      etag: all[1]!.etag,
      modified_at: new Date(all[1]!.mtimeMs).toISOString(),
    });
    assert.equal(text.split('\n').length, 2_345 + 3, 'a line per file, the head and the tail');
    assert.deepEqual(target, {
      bucket: 'seq',
      key: 'runs/run-7/_manifest.json',
      objectProperties: NO_OBJECT_PROPERTIES,
    });
    assert.deepEqual(record, recorded);
    assert.equal(record.sha256, createHash('sha256').update(text).digest('hex'));
    assert.equal(record.files, 2_345);
  });

  it('of an upload with no files is an empty list', async () => {
    const { text, record } = await written([]);
    const manifest = JSON.parse(text) as { files: unknown[]; file_count: number; bytes: number };
    assert.deepEqual([manifest.files, manifest.file_count, manifest.bytes, record.files], [[], 0, 0, 0]);
  });

  it('of exactly a page asks once more and finds nothing', async () => {
    const { pages, record } = await written(entries(1000));
    assert.deepEqual(pages, [1000, 0]);
    assert.equal(record.files, 1000);
  });
});

describe('manifestStale', () => {
  const manifest: ManifestRecord = {
    key: UPLOAD.manifestKey!,
    files: 3,
    bytes: 3,
    sha256: 'a'.repeat(64),
    writtenAt: 1000,
  };
  it('is false for an upload that writes none', () => {
    assert.equal(manifestStale({ ...UPLOAD, manifestKey: null }), false);
  });
  it('is true before the first, or when the key changed', () => {
    assert.equal(manifestStale(UPLOAD), true);
    assert.equal(manifestStale({ ...UPLOAD, manifest: { ...manifest, key: 'elsewhere.json' } }), true);
  });
  it('is true once a file completed after it, and after the arrival that followed it', () => {
    const arrival = { at: 1500, files: 3, bytes: 3, markerKey: 'runs/run-7/RTAComplete.txt' };
    assert.equal(manifestStale({ ...UPLOAD, manifest, lastCompletedAt: 900 }), false);
    assert.equal(manifestStale({ ...UPLOAD, manifest, lastCompletedAt: 1200 }), true);
    assert.equal(
      manifestStale({ ...UPLOAD, manifest, arrival, lastCompletedAt: 1500 }),
      false,
      'the marker itself',
    );
    assert.equal(manifestStale({ ...UPLOAD, manifest, arrival, lastCompletedAt: 1501 }), true);
  });
});
