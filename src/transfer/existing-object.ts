// The first time an upload sends a file, an object may already be at its key (another client put
// it, an earlier upload, a service on another host). With if_exists 'skip_identical' the file is
// read once, hashed, and not sent when the object holds the same bytes:
// - its SHA-256, when this service stored one in the object's metadata, against the file's;
// - else a single-part ETag (an MD5) against the file's MD5;
// - else a multipart ETag ('<md5 of part md5s>-<parts>') against the file's, cut into the same
//   parts: S3 does not say the part size, so every size that cuts the file into that many parts
//   among the configured ones and those common clients use is tried, all in the same read.
// An object listed (not HEAD'ed) whose ETag does not match is asked once more with a HEAD, for the
// SHA-256 in its metadata (an ETag that is no MD5: SSE-KMS, an unknown part size). A file read
// while it changes fails as an upload would (FileChangedError). The bytes pass through leased
// buffers, so MAX_BUFFER_BYTES bounds this memory too.
import { createHash, type Hash } from 'node:crypto';
import type { ExistingObject, IfExists } from '../domain/model.js';
import { multipartEtag } from './checksums.js';
import { readThrough } from './content-hash.js';
import { assertUnchanged, openVersion } from './file-version.js';
import { headObject } from './object-audit.js';
import { MAX_PARTS, MIN_PART_SIZE, partSizeFor } from './part-plan.js';
import type { TransferContext } from './s3-request.js';
import type { FileTransfer, UploadResult } from './types.js';

const MiB = 1024 * 1024;
/**
 * Part sizes of common clients: 5 MiB (rclone, the SDKs' managed uploads), 8 MiB (the AWS CLI,
 * boto3), 15 MiB (s3cmd), 16 MiB (mc) and the round sizes people configure.
 */
const COMMON_PART_SIZES = [5, 8, 15, 16, 32, 64, 100, 128, 256, 512, 1024].map((size) => size * MiB);

/** What the caller found at the key, and what to do about it. */
export interface ExistingAtKey {
  object: ExistingObject;
  /** From a listing: it carries no metadata, and may be older than a HEAD now would say. */
  listed: boolean;
  ifExists: Exclude<IfExists, 'overwrite'>;
}

/** Why a skipped file was not sent, as its record and the API show it. */
const SKIPPED_IDENTICAL = 'already in S3';
const SKIPPED_ANY = 'already in S3 (if_exists skip: not compared)';

/**
 * Resolves the result of an upload that sends nothing when the file need not be sent; otherwise
 * undefined, and the file is uploaded as usual (over the object).
 */
export async function skipIfExisting(
  context: TransferContext,
  transfer: FileTransfer,
  existing: ExistingAtKey,
): Promise<UploadResult | undefined> {
  const { object } = existing;
  if (existing.ifExists === 'skip') return skipped(transfer, object, object.sha256 ?? null, SKIPPED_ANY);
  if (object.size !== transfer.size) return undefined;
  const sums = await hashFile(context, transfer, partSizesFor(object, transfer.size, context));
  if (matches(object, sums)) return skipped(transfer, object, sums.sha256, SKIPPED_IDENTICAL);
  if (!existing.listed || object.sha256 !== undefined) return undefined;
  // The listing has no metadata: the SHA-256 this service may have stored there decides.
  const headed = await headObject(context, transfer.bucket, transfer.key, transfer.signal);
  if (headed?.sha256 === undefined || headed.size !== transfer.size) return undefined;
  return headed.sha256 === sums.sha256
    ? skipped(transfer, headed, sums.sha256, SKIPPED_IDENTICAL)
    : undefined;
}

function skipped(
  transfer: FileTransfer,
  object: ExistingObject,
  sha256: string | null,
  reason: string,
): UploadResult {
  const { size, mtimeMs, ino, ctimeMs } = transfer;
  return {
    etag: object.etag,
    validation: null,
    sha256,
    ...{ size, mtimeMs, ino, ctimeMs },
    method: 'skipped',
    skipped: reason,
    bytesSent: 0,
    bytesCopied: 0,
    partsReused: 0,
  };
}

interface FileSums {
  sha256: string;
  md5: string;
  /** The multipart ETag of the file cut into parts of each size tried. */
  multipartEtags: string[];
}

function matches(object: ExistingObject, sums: FileSums): boolean {
  if (object.sha256 !== undefined) return object.sha256 === sums.sha256;
  if (!object.etag.includes('-')) return object.etag === sums.md5;
  return sums.multipartEtags.includes(object.etag);
}

/** The part count of a multipart ETag, or undefined for another kind of ETag. */
function partCountOf(etag: string): number | undefined {
  const match = /^[0-9a-f]{32}-(\d+)$/.exec(etag);
  if (!match?.[1]) return undefined;
  const count = Number(match[1]);
  return count >= 1 && count <= MAX_PARTS ? count : undefined;
}

/**
 * The part sizes that cut a file of `size` bytes into as many parts as the object's ETag says:
 * this service's own, the even split rounded up to a MiB, and the common ones.
 */
function partSizesFor(object: ExistingObject, size: number, context: TransferContext): number[] {
  const parts = partCountOf(object.etag);
  if (object.sha256 !== undefined || parts === undefined) return [];
  const { partSizeBytes, streamPartSizeBytes } = context.settings;
  const even = Math.ceil(size / parts);
  const candidates = [
    partSizeFor(size, partSizeBytes),
    streamPartSizeBytes,
    Math.ceil(even / MiB) * MiB,
    even,
    ...COMMON_PART_SIZES,
  ];
  const cutsInto = (partSize: number) =>
    partSize >= MIN_PART_SIZE || parts === 1 ? Math.max(1, Math.ceil(size / partSize)) === parts : false;
  return [...new Set(candidates)].filter(cutsInto);
}

/** A file's MD5 as the parts of one size would have it. */
class PartMd5s {
  private readonly digests: string[] = [];
  private current: Hash = createHash('md5');
  private filled = 0;

  constructor(private readonly partSize: number) {}

  update(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(this.partSize - this.filled, chunk.length - offset);
      this.current.update(chunk.subarray(offset, offset + take));
      this.filled += take;
      offset += take;
      if (this.filled === this.partSize) this.endPart();
    }
  }

  etag(): string {
    if (this.filled > 0 || this.digests.length === 0) this.endPart();
    return multipartEtag(this.digests);
  }

  private endPart(): void {
    this.digests.push(this.current.digest('hex'));
    this.current = createHash('md5');
    this.filled = 0;
  }
}

async function hashFile(
  context: TransferContext,
  transfer: FileTransfer,
  partSizes: readonly number[],
): Promise<FileSums> {
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  const parts = partSizes.map((partSize) => new PartMd5s(partSize));
  const handle = await openVersion(transfer);
  try {
    await readThrough(context, handle, transfer, transfer.signal, (chunk) => {
      sha256.update(chunk);
      md5.update(chunk);
      for (const part of parts) part.update(chunk);
    });
  } finally {
    await handle.close();
  }
  // A file written while it was read is not what was hashed.
  await assertUnchanged(transfer);
  return {
    sha256: sha256.digest('hex'),
    md5: md5.digest('hex'),
    multipartEtags: parts.map((part) => part.etag()),
  };
}
