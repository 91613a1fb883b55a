// File names end to end: the service as a child process, a real S3. Every name lands under exactly
// prefix + '/' + its path relative to the source folder, byte for byte as the file system holds it
// (nothing is encoded, decoded or Unicode-normalised: 'café' in NFC and in NFD are two files and
// two keys). A path whose key would pass S3's 1024-byte limit fails for good with a clear message,
// is not requeued, and blocks nothing else.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { MAX_KEY_BYTES, objectKeyFor } from '../../src/domain/object-key.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, getObjectBytes, listKeys, testS3Client } from '../support/s3.js';
import { api, startService, type ServiceProcess } from '../support/service-process.js';
import {
  createUpload,
  fileItems,
  uploadDetails,
  waitForCompleted,
  type FileItem,
} from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile, writeTreeFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const NFC_CAFE = 'caf\u00e9';
const NFD_CAFE = 'cafe\u0301';

/** Names Linux allows that URLs, shells, globs or Unicode handle specially; each is a file's path. */
const AWKWARD_PATHS = [
  'plain.txt',
  'with space.txt',
  ' leading space.txt',
  'trailing space ',
  'a b',
  `${NFC_CAFE}.txt`,
  `${NFD_CAFE}.txt`,
  'a+b.txt',
  '100%.txt',
  '%20.txt',
  'x%2Fy.txt',
  '%E2%82%AC euro.txt',
  '#hash.txt',
  'what?.txt',
  'a&b=c.txt',
  '?&=#+%',
  "it's.txt",
  'say "hi".txt',
  'back\\slash.txt',
  '\\',
  'emoji 😀🎉.txt',
  'zwj 👩\u200d💻.txt',
  '-leading-dash.txt',
  '--',
  '...',
  '..hidden',
  '.env',
  'Case.txt',
  'case.txt',
  'CASE.txt',
  '~tilde',
  '[brackets] {braces} (parens).txt',
  '*star?*',
  '$HOME',
  '@at:colon;semi,comma!',
  '`tick` <lt> >gt |pipe ^caret',
  '日本語/ファイル.txt',
  'עברית.txt',
  'ελληνικά.txt',
  // The longest name a Linux file system allows: 255 bytes, 128 characters.
  `${'ü'.repeat(127)}x`,
  'dir with space/sub#dir/a?b/file&name=1.txt',
  `${NFC_CAFE}/nfc.txt`,
  `${NFD_CAFE}/nfd.txt`,
  '%/%25/+/file',
];

/** Large enough for a multipart upload (MULTIPART_THRESHOLD_BYTES below): the name reaches every multipart call. */
const MULTIPART_PATH = `${NFD_CAFE} #?%20+/multi "part" &= 😀 \\.bin`;

/** Written while the request is active, so that their paths come from file-system events. */
const LIVE_PATHS = [
  'with space.txt',
  `${NFC_CAFE}.txt`,
  `${NFD_CAFE}.txt`,
  'a+b.txt',
  '%20.txt',
  'x%2Fy.txt',
  '?&=#+%',
  'say "hi".txt',
  'back\\slash.txt',
  'zwj 👩\u200d💻.txt',
  '-leading-dash.txt',
  `${'ü'.repeat(127)}x`,
  'dir with space/sub#dir/a?b/file&name=1.txt',
  `${NFD_CAFE}/nfd.txt`,
];

let s3: S3Client;
let work: string;
let service: ServiceProcess;
const buckets: string[] = [];

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-file-names');
  service = await startService({
    databaseFile: path.join(work, 'db', 'uploads.db'),
    env: {
      // Files written while the request is active are found by their events alone, not by a rescan.
      RESCAN_INTERVAL_SECONDS: '600',
      FAILED_REQUEUE_INTERVAL_SECONDS: '1',
      STREAM_GROWING_FILES: 'false',
      MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
      PART_SIZE_BYTES: String(5 * MiB),
    },
  });
});

after(async () => {
  await service.stop();
  for (const bucket of buckets) await deleteBucket(s3, bucket).catch(() => undefined);
  await removeTempDir(work);
  s3.destroy();
});

afterEach(() => {
  assert.ok(service.child.exitCode === null, 'the service process died during the test');
});

async function newBucket(label: string): Promise<string> {
  const bucket = await createTestBucket(s3, label);
  buckets.push(bucket);
  return bucket;
}

const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8');
const hex = (text: string): string => Buffer.from(text, 'utf8').toString('hex');
const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/** Distinct content for each file, so that a file landing under another's key is caught. */
async function writeSmallFile(source: string, relativePath: string): Promise<Buffer> {
  const content = Buffer.concat([Buffer.from(`${relativePath}\n`, 'utf8'), randomBytes(64)]);
  await writeTreeFile(path.join(source, ...relativePath.split('/')), content);
  return content;
}

/**
 * Every key of the bucket as the raw bytes S3 holds, hex. Listed with encoding-type=url, so that
 * no character is lost or changed by XML on the way (a CR would become a LF); S3 encodes a space
 * as '+' or '%20', and '+' itself as '%2B'.
 */
async function listKeyBytes(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, EncodingType: 'url', ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) if (object.Key) keys.push(urlDecodedBytes(object.Key));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

function urlDecodedBytes(encoded: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const char = encoded[i]!;
    if (char === '%') {
      bytes.push(Number.parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (char === '+') {
      bytes.push(0x20);
    } else {
      bytes.push(...Buffer.from(char, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('hex');
}

/** The bucket holds exactly these keys (compared as UTF-8 bytes and as strings) with exactly this content. */
async function assertBucketHolds(bucket: string, expected: Map<string, Buffer>): Promise<void> {
  const wanted = [...expected.keys()];
  assert.deepEqual(await listKeyBytes(bucket), wanted.map(hex).sort(), 'the keys, as UTF-8 bytes');
  assert.deepEqual(await listKeys(s3, bucket), [...wanted].sort(), 'the keys, as strings');
  for (const [key, content] of expected) {
    assert.equal(md5(await getObjectBytes(s3, bucket, key)), md5(content), `the content of ${key}`);
  }
}

/**
 * A relative path whose key under `prefix` is exactly `keyBytes` bytes of UTF-8 and ends with
 * `last`: folders of 100 'é' (200 bytes), then a name of 'n's and `last`. The folder unit, not
 * the name, is what varies the paths of two calls with different `last`.
 */
function pathForKeyBytes(prefix: string, keyBytes: number, last: string, folderChar = 'é'): string {
  const folder = folderChar.repeat(200 / utf8Bytes(folderChar));
  let remaining = keyBytes - utf8Bytes(prefix) - (prefix === '' ? 0 : 1);
  const segments: string[] = [];
  while (remaining > 255) {
    segments.push(folder);
    remaining -= utf8Bytes(folder) + 1;
  }
  segments.push(`${'n'.repeat(remaining - utf8Bytes(last))}${last}`);
  const relativePath = segments.join('/');
  assert.equal(utf8Bytes(objectKeyFor(prefix, relativePath)), keyBytes);
  return relativePath;
}

function itemAt(items: FileItem[], relativePath: string): FileItem {
  const item = items.find((candidate) => candidate.relative_path === relativePath);
  assert.ok(item, `a task for ${JSON.stringify(relativePath)}`);
  return item;
}

interface FailedForGood extends FileItem {
  ready_at: string | null;
  failed_at: string | null;
}

function assertFailedForGood(item: FileItem, keyBytes: number): void {
  const failed = item as FailedForGood;
  assert.equal(failed.status, 'failed', failed.relative_path);
  assert.equal(
    failed.last_error,
    `the object key is ${keyBytes} bytes of UTF-8; S3 allows at most ${MAX_KEY_BYTES}: ` +
      "rename the file or shorten the upload's destination_prefix; it is not retried automatically",
  );
  assert.equal(failed.ready_at, null, 'no automatic requeue');
  assert.equal(failed.bytes_uploaded, 0);
}

describe('awkward file names', () => {
  it('land under exactly prefix/path, byte for byte, whether scanned or seen by events', async () => {
    const bucket = await newBucket('names');
    const source = path.join(work, 'awkward');
    const prefix = 'file names/ü+%20';
    const expected = new Map<string, Buffer>();
    for (const relativePath of AWKWARD_PATHS) {
      expected.set(`${prefix}/${relativePath}`, await writeSmallFile(source, relativePath));
    }
    const multipartFile = path.join(source, ...MULTIPART_PATH.split('/'));
    await writeRandomFile(multipartFile, 6 * MiB);
    expected.set(`${prefix}/${MULTIPART_PATH}`, await readFile(multipartFile));
    // The file system keeps both forms: two files, not one.
    const names = await readdir(source);
    assert.ok(names.includes(`${NFC_CAFE}.txt`) && names.includes(`${NFD_CAFE}.txt`));
    assert.notEqual(hex(`${NFC_CAFE}.txt`), hex(`${NFD_CAFE}.txt`));

    const uploadId = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: prefix,
    });
    await waitForCompleted(service, uploadId, expected.size, 60_000);

    // The same names again, written while the request is active: found by file-system events.
    for (const relativePath of LIVE_PATHS) {
      const live = `live ${NFD_CAFE}/${relativePath}`;
      expected.set(`${prefix}/${live}`, await writeSmallFile(source, live));
    }
    const done = await waitForCompleted(service, uploadId, expected.size, 60_000);
    assert.equal(done.last_error, null);

    await assertBucketHolds(bucket, expected);
    const items = await fileItems(service, uploadId);
    const recorded = new Map(items.map((item) => [item.object_key, item.relative_path]));
    for (const key of expected.keys()) {
      assert.equal(recorded.get(key), key.slice(prefix.length + 1), `the task of ${key}`);
    }
    assert.match(itemAt(items, MULTIPART_PATH).etag ?? '', /-2$/, 'uploaded in two parts');
    // HEAD of every key (what verify asks S3) finds each object as uploaded.
    const verified = await api<{ checked: number; mismatched: number }>(
      service,
      'POST',
      `/uploads/${uploadId}/verify`,
    );
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    assert.deepEqual(verified.body, { ...verified.body, checked: expected.size, mismatched: 0 });
  });

  it('control characters in names are kept too (a listing shows them only URL-encoded)', async () => {
    const bucket = await newBucket('control');
    const source = path.join(work, 'control');
    const names = [
      'tab\there',
      'new\nline',
      'carriage\rreturn',
      'bell\u0007',
      'escape\u001b[0m',
      'del\u007f',
    ];
    const expected = new Map<string, Buffer>();
    for (const name of names) {
      const relativePath = `dir\t1/${name}`;
      expected.set(`c/${relativePath}`, await writeSmallFile(source, relativePath));
    }
    const uploadId = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: 'c',
    });
    await waitForCompleted(service, uploadId, names.length);
    assert.deepEqual(await listKeyBytes(bucket), [...expected.keys()].map(hex).sort());
    for (const [key, content] of expected) {
      assert.equal(md5(await getObjectBytes(s3, bucket, key)), md5(content), JSON.stringify(key));
    }
    // Emptied here: the clean-up's plain listing cannot show these keys on every S3.
    for (const Key of expected.keys()) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
  });

  it('a name that is not UTF-8 is skipped and noted: it blocks nothing and never becomes a mangled key', async () => {
    const bucket = await newBucket('non-utf8');
    const source = path.join(work, 'non-utf8');
    await mkdir(source, { recursive: true });
    const good = await writeSmallFile(source, 'good.txt');
    // 'bad\xff.txt': a byte that is no UTF-8; S3 keys are UTF-8, so no key can name this file.
    const badName = Buffer.concat([Buffer.from(`${source}/bad`), Buffer.from([0xff]), Buffer.from('.txt')]);
    await writeFile(badName, 'not uploadable');
    const uploadId = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: 'p',
    });
    await waitForCompleted(service, uploadId, 1);
    await assertBucketHolds(bucket, new Map([['p/good.txt', good]]));
    // Skipped, but not unseen: the request says which, and how to fix it.
    const note =
      "1 file was skipped because its name, or a folder's name above it, is not valid UTF-8 ('bad\\xff.txt'): S3 keys must be UTF-8; rename it to upload it";
    await waitFor(async () => (await uploadDetails(service, uploadId)).last_error === note, {
      message: 'the note on the request',
    });
  });
});

describe('keys at and over the 1024-byte limit', () => {
  it('up to 1024 bytes land; longer ones fail for good with a clear message and block nothing', async () => {
    const bucket = await newBucket('limits');
    const source = path.join(work, 'limits');
    const prefix = 'limits/ü';
    // Multibyte characters at the boundary: a 4-byte emoji ends the 1024th byte in one path, and
    // straddles it (bytes 1023 to 1026) in another; character counts are far below 1024 in all.
    const atLimit = [
      pathForKeyBytes(prefix, MAX_KEY_BYTES, 'é'),
      pathForKeyBytes(prefix, MAX_KEY_BYTES, '😀'),
      pathForKeyBytes(prefix, MAX_KEY_BYTES, 'a', 'z'),
    ];
    const overLimit = new Map([
      [pathForKeyBytes(prefix, MAX_KEY_BYTES + 1, 'x'), MAX_KEY_BYTES + 1],
      [pathForKeyBytes(prefix, MAX_KEY_BYTES + 2, '😀'), MAX_KEY_BYTES + 2],
    ]);
    const expected = new Map<string, Buffer>();
    for (const relativePath of [...atLimit, 'small.txt']) {
      expected.set(objectKeyFor(prefix, relativePath), await writeSmallFile(source, relativePath));
    }
    for (const relativePath of overLimit.keys()) await writeSmallFile(source, relativePath);

    const uploadId = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: prefix,
    });
    const settled = await waitFor(
      async () => {
        const details = await uploadDetails(service, uploadId);
        const { completed, failed, total } = details.files;
        return completed === expected.size && failed === overLimit.size && total === completed + failed
          ? details
          : undefined;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        message: 'the paths at the limit completed, the longer ones failed',
      },
    );
    assert.match(
      settled.last_error ?? '',
      /the object key is 102[56] bytes of UTF-8; S3 allows at most 1024/,
    );
    await assertBucketHolds(bucket, expected);
    let items = await fileItems(service, uploadId);
    for (const [relativePath, keyBytes] of overLimit) {
      const item = itemAt(items, relativePath);
      assertFailedForGood(item, keyBytes);
      assert.equal(item.object_key, objectKeyFor(prefix, relativePath), 'the key it would have had');
      assert.equal(item.attempts, 1);
    }

    // Not requeued: three requeue intervals (1 s) after the failures, and after a file written since
    // has been uploaded, each over-long path was still tried once.
    const failedAt = Math.max(...items.map((item) => Date.parse((item as FailedForGood).failed_at ?? '0')));
    expected.set(objectKeyFor(prefix, 'later.txt'), await writeSmallFile(source, 'later.txt'));
    await waitFor(
      async () =>
        Date.now() > failedAt + 3_000 &&
        (await uploadDetails(service, uploadId)).files.completed === expected.size,
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        message: 'later.txt uploaded and three requeue intervals passed',
      },
    );
    items = await fileItems(service, uploadId);
    for (const [relativePath, keyBytes] of overLimit) {
      const item = itemAt(items, relativePath);
      assertFailedForGood(item, keyBytes);
      assert.equal(item.attempts, 1, 'never retried on its own');
    }

    // The way out: rename the file. Its new path uploads; a retry drops the old path's task (its
    // file is gone) and fails the other again at once, without a request to S3.
    const [renamedPath, stillLong] = [...overLimit.keys()] as [string, string];
    await rename(path.join(source, ...renamedPath.split('/')), path.join(source, 'renamed.txt'));
    expected.set(objectKeyFor(prefix, 'renamed.txt'), await readFile(path.join(source, 'renamed.txt')));
    await waitFor(async () => (await uploadDetails(service, uploadId)).files.completed === expected.size, {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: 'renamed.txt uploaded',
    });
    const retried = await api<{ requeued: number }>(service, 'POST', `/uploads/${uploadId}/retry`);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.requeued, 2);
    items = await waitFor(
      async () => {
        const current = await fileItems(service, uploadId);
        const again = current.find((item) => item.relative_path === stillLong);
        const gone = current.every((item) => item.relative_path !== renamedPath);
        return gone && again?.status === 'failed' && again.attempts === 2 ? current : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'the renamed path dropped, the other failed again' },
    );
    assertFailedForGood(itemAt(items, stillLong), overLimit.get(stillLong)!);
    assert.equal(items.length, expected.size + 1);
    await assertBucketHolds(bucket, expected);
  });

  it('without a prefix, the path alone is the key, up to 1024 bytes', async () => {
    const bucket = await newBucket('no-prefix');
    const source = path.join(work, 'no-prefix');
    const atLimit = pathForKeyBytes('', MAX_KEY_BYTES, '😀');
    const overLimit = pathForKeyBytes('', MAX_KEY_BYTES + 1, 'é');
    const expected = new Map([[atLimit, await writeSmallFile(source, atLimit)]]);
    await writeSmallFile(source, overLimit);
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    const items = await waitFor(
      async () => {
        const current = await fileItems(service, uploadId);
        const statuses = current.map((item) => item.status).sort();
        return statuses.join() === 'completed,failed' ? current : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'one path completed, the longer one failed' },
    );
    assertFailedForGood(itemAt(items, overLimit), MAX_KEY_BYTES + 1);
    await assertBucketHolds(bucket, expected);
  });
});

describe('the start-up orphan sweep', () => {
  it('maps multipart uploads left at awkward keys back to their tasks, and aborts them', async () => {
    const bucket = await newBucket('orphans');
    const source = path.join(work, 'orphans');
    const relativePaths = ['a+b %20\tc\r\nd.bin', `${NFD_CAFE} #?&=/"x" %2B+😀.bin`];
    for (const relativePath of relativePaths) await writeSmallFile(source, relativePath);
    const uploadId = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: 'o',
    });
    await waitForCompleted(service, uploadId, relativePaths.length);
    // As if a run had died between CreateMultipartUpload and recording it: no task knows these uploads.
    const keys = relativePaths.map((relativePath) => `o/${relativePath}`);
    for (const Key of keys) await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
    const openUploads = async (): Promise<{ key: string; s3UploadId: string }[]> => {
      const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, EncodingType: 'url' }));
      return (listed.Uploads ?? []).map((upload) => ({
        key: urlDecodedBytes(upload.Key ?? ''),
        s3UploadId: upload.UploadId ?? '',
      }));
    };
    const orphans = await openUploads();
    assert.deepEqual(orphans.map((upload) => upload.key).sort(), keys.map(hex).sort());

    await service.stop();
    service = await startService({ databaseFile: path.join(work, 'db', 'uploads.db') });
    const summary = await waitFor(() => service.logs.find((entry) => entry.msg === 'orphan sweep done'), {
      timeoutMs: 30_000,
      message: 'the orphan sweep finished',
    });
    assert.equal(summary.bucketsFailed, 0, JSON.stringify(summary));
    const aborted = service.logs.filter(
      (entry) =>
        entry.bucket === bucket &&
        typeof entry.msg === 'string' &&
        entry.msg.startsWith('orphan sweep: aborted'),
    );
    assert.deepEqual(
      aborted
        .map((entry) => ({ key: hex(String(entry.key)), s3UploadId: entry.s3UploadId }))
        .sort(byS3UploadId),
      [...orphans].sort(byS3UploadId),
    );
    assert.deepEqual(await openUploads(), []);
  });
});

function byS3UploadId(a: { s3UploadId: unknown }, b: { s3UploadId: unknown }): number {
  return String(a.s3UploadId).localeCompare(String(b.s3UploadId));
}
