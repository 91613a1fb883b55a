// The service's own database inside a watched folder: its file and its -wal, -shm and -journal
// companions change with every write and would be uploaded again and again. The service as a
// child process, a real S3: whatever the pattern, they are never uploaded, even when DATABASE_URL
// reaches the folder through a symbolic link; the other files are, and the upload goes idle.
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, listKeys, testS3Client } from '../support/s3.js';
import { api, startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, fileItems, uploadDetails, waitForCompleted } from '../support/upload-api.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

interface ScanReply {
  kind: string;
  started_at: string;
  finished_at: string | null;
}

let s3: S3Client;
let work: string;
let service: ServiceProcess | undefined;
let bucket: string;

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-database-inside');
  bucket = await createTestBucket(s3, 'db-inside');
});

after(async () => {
  await service?.stop();
  await deleteBucket(s3, bucket).catch(() => undefined);
  await removeTempDir(work);
  s3.destroy();
});

/** Asks for a rescan and waits until a scan that started after the request has finished. */
async function rescanAndWait(running: ServiceProcess, uploadId: string): Promise<void> {
  const askedAt = Date.now();
  const asked = await api(running, 'POST', `/uploads/${uploadId}/rescan`);
  assert.equal(asked.status, 202, JSON.stringify(asked.body));
  await waitFor(
    async () => {
      const details = await api<{ last_scan: ScanReply | null }>(running, 'GET', `/uploads/${uploadId}`);
      const scan = details.body.last_scan;
      return scan?.finished_at != null && Date.parse(scan.started_at) >= askedAt;
    },
    { timeoutMs: 20_000, message: 'the requested rescan finished' },
  );
}

describe('the database inside a watched folder', () => {
  it('is never uploaded, reached through a link too; the other files are, and the upload goes idle', async () => {
    const watched = path.join(work, 'watched');
    await mkdir(path.join(watched, 'state'), { recursive: true });
    await mkdir(path.join(watched, 'sub'));
    await writeFile(path.join(watched, 'a.txt'), 'a');
    await writeFile(path.join(watched, 'sub', 'b.db'), 'not the service database');
    // DATABASE_URL names the folder through a link: only real paths tell that it lies inside.
    const link = path.join(work, 'link');
    await symlink(watched, link);
    service = await startService({
      databaseFile: path.join(link, 'state', 'uploads.db'),
      env: { RESCAN_INTERVAL_SECONDS: '0.5' },
    });

    const uploadId = await createUpload(service, {
      source_folder: watched,
      destination_bucket: bucket,
      destination_prefix: 'p',
    });
    await waitForCompleted(service, uploadId, 2);
    await writeFile(path.join(watched, 'c.txt'), 'c'); // written while the database is busy
    await waitForCompleted(service, uploadId, 3);
    // Every write to the database since then changed its files; each rescan would have seen them.
    for (let rescan = 0; rescan < 3; rescan += 1) await rescanAndWait(service, uploadId);

    const details = await uploadDetails(service, uploadId);
    assert.deepEqual(details.files, { pending: 0, in_progress: 0, completed: 3, failed: 0, total: 3 });
    const paths = (await fileItems(service, uploadId)).map((file) => file.relative_path).sort();
    assert.deepEqual(paths, ['a.txt', 'c.txt', 'sub/b.db'], 'no task for the database files');
    assert.deepEqual((await listKeys(s3, bucket)).sort(), ['p/a.txt', 'p/c.txt', 'p/sub/b.db']);
    const notes = service.logs.filter(
      (line) => line.msg === "the service's own database is inside this folder; it is never uploaded",
    );
    assert.equal(notes.length, 1, 'said once, when watching started');
    assert.deepEqual(notes[0]?.files, [
      'state/uploads.db',
      'state/uploads.db-wal',
      'state/uploads.db-shm',
      'state/uploads.db-journal',
    ]);
  });
});
