// The manifest: one JSON object listing every file of an upload in S3 (markers left out), so that
// a reader triggered by the marker can check the run without listing the bucket. It is streamed
// from the database a page at a time into the object, so its memory does not grow with the files:
//
//   {"upload_id":"run-7","bucket":"seq","prefix":"runs/run-7","written_at":"…","files":[
//   {"key":"runs/run-7/a.bcl","size":1024,"sha256":"…","etag":"…","modified_at":"…"},
//   …
//   ],"file_count":1204,"bytes":53687091200}
//
// One file per line, so that `grep` and line-oriented tools work on it too.
import type { EpochMs, ManifestEntry, ManifestRecord, Upload } from '../domain/model.js';
import type { Store } from '../store/store.js';
import type { Uploader } from '../transfer/types.js';

/** Files read from the database per query: a page of this many is a few hundred KiB of JSON. */
const PAGE_SIZE = 1000;

export interface ManifestWrite {
  store: Pick<Store, 'manifestEntries' | 'recordManifest'>;
  uploader: Pick<Uploader, 'writeObject'>;
  upload: Upload;
  /** Where it is written: the upload's manifestKey. */
  key: string;
  /** When the listing begins (ManifestRecord.writtenAt). */
  now: EpochMs;
  signal: AbortSignal;
}

/** Writes the upload's manifest at `key` and records it on the upload. */
export async function writeManifest(write: ManifestWrite): Promise<ManifestRecord> {
  const { store, uploader, upload, key, now, signal } = write;
  const totals = { files: 0, bytes: 0 };
  const written = await uploader.writeObject(
    { bucket: upload.destinationBucket, key, objectProperties: upload.objectProperties },
    manifestText(store, upload, now, totals),
    signal,
  );
  const record: ManifestRecord = { key, ...totals, sha256: written.sha256, writtenAt: now };
  await store.recordManifest(upload.uploadId, record);
  return record;
}

/** The manifest's text, in pieces of about a page; `totals` holds the counts once it has ended. */
async function* manifestText(
  store: Pick<Store, 'manifestEntries'>,
  upload: Upload,
  writtenAt: EpochMs,
  totals: { files: number; bytes: number },
): AsyncGenerator<string> {
  const head = {
    upload_id: upload.uploadId,
    bucket: upload.destinationBucket,
    prefix: upload.destinationPrefix,
    written_at: new Date(writtenAt).toISOString(),
  };
  yield `${JSON.stringify(head).slice(0, -1)},"files":[\n`;
  let afterTaskId = 0;
  for (;;) {
    const page = await store.manifestEntries(upload.uploadId, afterTaskId, PAGE_SIZE);
    if (page.length === 0) break;
    const lines = page.map((entry) => {
      totals.bytes += entry.size;
      return JSON.stringify(manifestLine(entry));
    });
    yield `${totals.files === 0 ? '' : ',\n'}${lines.join(',\n')}`;
    totals.files += page.length;
    afterTaskId = page[page.length - 1]!.taskId;
    if (page.length < PAGE_SIZE) break;
  }
  yield `\n],"file_count":${totals.files},"bytes":${totals.bytes}}\n`;
}

function manifestLine(entry: ManifestEntry) {
  return {
    key: entry.key,
    size: entry.size,
    sha256: entry.sha256,
    etag: entry.etag,
    modified_at: new Date(entry.mtimeMs).toISOString(),
  };
}
