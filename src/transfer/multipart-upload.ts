// The life of one multipart upload, whatever feeds it: created and recorded (or aborted at once
// when the record fails), or reopened from its saved state; its parts sent from a buffer, in
// pieces, or copied on the server, each recorded once S3 has stored it, or kept when S3 holds them
// already; the SHA-256 of the content, fed in part order; Complete with its ETag check; abort.
// Which bytes go in which part, and when, is the part sources' business (part-sources/).
import type { Hash } from 'node:crypto';
import type { UploadedPart } from '../domain/model.js';
import { multipartEtag, type Md5 } from './checksums.js';
import { OrderedHash } from './content-hash.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listUploadedParts,
  uploadPart,
  uploadPartCopy,
  uploadPartStreamed,
  type CompletedObject,
  type CopySource,
  type ListedPart,
  type PartReceipt,
  type StreamedPart,
  type UploadTarget,
} from './multipart-api.js';
import type { TransferContext } from './s3-request.js';
import { objectHeadersOf } from './object-headers.js';
import type { FileTransfer, NewMultipartUpload, UploadProgressListener, UploadResult } from './types.js';

/** What is saved with an upload besides its id: how its parts are cut, and what it copied. */
export type MultipartShape = Omit<NewMultipartUpload, 's3UploadId'>;

/** A part S3 holds, with what Complete must name it by. */
export type StoredPart = UploadedPart & PartReceipt;

/**
 * How a part S3 already holds is kept: `saved`, the saved state has it; `unsaved`, only S3 has it,
 * so it is recorded now; `copied`, copied on the server by an earlier call (neither sent nor reused).
 */
export type KeptAs = 'saved' | 'unsaved' | 'copied';

/** The bytes an upload moved: what its result reports. */
export type UploadTally = Pick<UploadResult, 'bytesSent' | 'bytesCopied' | 'partsReused'>;

type TransferTarget = Pick<FileTransfer, 'bucket' | 'key' | 'signal'>;
/** What a new upload is created for: the target, and what its object will carry. */
type NewTransferTarget = TransferTarget & Pick<FileTransfer, 'objectProperties'>;

export class MultipartUpload {
  private readonly parts = new Map<number, StoredPart>();
  private confirmed = 0;
  private contentHash = new OrderedHash();
  private readonly counts: UploadTally = { bytesSent: 0, bytesCopied: 0, partsReused: 0 };

  private constructor(
    private readonly context: TransferContext,
    readonly target: UploadTarget,
    private readonly signal: AbortSignal,
    private readonly progress: UploadProgressListener,
  ) {}

  /** Creates an upload and records it before any part is sent; one that cannot be recorded is aborted. */
  static async create(
    context: TransferContext,
    transfer: NewTransferTarget,
    progress: UploadProgressListener,
    shape: MultipartShape,
  ): Promise<MultipartUpload> {
    const at = { bucket: transfer.bucket, key: transfer.key };
    const headers = objectHeadersOf(transfer.key, transfer.objectProperties);
    const s3UploadId = await createMultipartUpload(context, at, headers, transfer.signal);
    try {
      await progress.multipartCreated({ s3UploadId, ...shape });
    } catch (error) {
      // Not saved means nobody could resume or abort it later: abort it now.
      const target = { ...at, s3UploadId };
      await abortMultipartUpload(context, target, new AbortController().signal).catch((abortError: unknown) =>
        context.logger.warn({ ...target, err: abortError }, 'could not abort an unsaved multipart upload'),
      );
      throw error;
    }
    return new MultipartUpload(context, { ...at, s3UploadId }, transfer.signal, progress);
  }

  /** The saved upload `s3UploadId`: to go on with once its parts are listed and kept, or to abort. */
  static saved(
    context: TransferContext,
    transfer: TransferTarget,
    progress: UploadProgressListener,
    s3UploadId: string,
  ): MultipartUpload {
    const target = { bucket: transfer.bucket, key: transfer.key, s3UploadId };
    return new MultipartUpload(context, target, transfer.signal, progress);
  }

  /** The SHA-256 of the content, fed in part order by the part source. */
  get content(): OrderedHash {
    return this.contentHash;
  }

  /** Bytes in the parts stored or kept so far. */
  get confirmedBytes(): number {
    return this.confirmed;
  }

  /** Parts stored or kept so far. */
  get partCount(): number {
    return this.parts.size;
  }

  get tally(): UploadTally {
    return { ...this.counts };
  }

  /** The first `partCount` parts' bytes were hashed apart, into `hash` (a copied prefix read in one go). */
  contentStartsWith(hash: Hash, partCount: number): void {
    this.contentHash = new OrderedHash(hash, partCount + 1);
  }

  /** Every part S3 holds for the upload, or undefined when S3 no longer knows it. */
  listParts(): Promise<ListedPart[] | undefined> {
    return listUploadedParts(this.context, this.target, this.signal);
  }

  has(partNumber: number): boolean {
    return this.parts.has(partNumber);
  }

  /** Sends a part from a buffer and records it. */
  async send(partNumber: number, body: Buffer, md5: Md5): Promise<void> {
    const receipt = await uploadPart(this.context, this.target, partNumber, body, md5, this.signal);
    this.counts.bytesSent += body.length;
    await this.record({ partNumber, size: body.length, ...receipt });
  }

  /** Sends a part too large for one buffer, read in pieces (part-pieces.ts), and records it. */
  async sendInPieces(partNumber: number, part: StreamedPart): Promise<void> {
    const receipt = await uploadPartStreamed(this.context, this.target, partNumber, part, this.signal);
    this.counts.bytesSent += part.size;
    await this.record({ partNumber, size: part.size, ...receipt });
  }

  /** Copies a range of the object at the key into a part, on the server, and records it. */
  async copy(partNumber: number, source: CopySource): Promise<void> {
    const receipt = await uploadPartCopy(this.context, this.target, partNumber, source, this.signal);
    const size = source.last - source.first + 1;
    await this.record({ partNumber, size, ...receipt });
    this.counts.bytesCopied += size;
  }

  /** Keeps a part S3 holds already (see KeptAs): nothing is sent. */
  async keep(part: StoredPart, as: KeptAs): Promise<void> {
    if (as === 'unsaved') await this.progress.partUploaded(recordOf(part));
    if (as !== 'copied') this.counts.partsReused++;
    this.store(part);
  }

  /** Forgets a stored part (a last part that will be sent again, longer). */
  forget(partNumber: number): void {
    const part = this.parts.get(partNumber);
    if (part === undefined) return;
    this.parts.delete(partNumber);
    this.confirmed -= part.size;
  }

  /** Completes the upload from parts 1 to `partCount`, and checks the object's ETag. */
  async complete(partCount: number): Promise<CompletedObject> {
    const parts = Array.from({ length: partCount }, (_, index) => {
      const part = this.parts.get(index + 1);
      if (part === undefined) throw new Error(`part ${index + 1} of ${partCount} is missing before Complete`);
      return part;
    });
    const expectedEtag = multipartEtag(parts.map((part) => part.etag));
    return completeMultipartUpload(this.context, this.target, parts, expectedEtag, this.signal);
  }

  /** Aborts the upload on S3 (one S3 no longer knows counts as aborted) and forgets its record. */
  async abort(): Promise<void> {
    await abortMultipartUpload(this.context, this.target, this.signal);
    await this.progress.multipartAborted();
  }

  /** A part counts as stored only once its record is written (progress.partUploaded has returned). */
  private async record(part: StoredPart): Promise<void> {
    await this.progress.partUploaded(recordOf(part));
    this.store(part);
  }

  private store(part: StoredPart): void {
    this.parts.set(part.partNumber, part);
    this.confirmed += part.size;
  }
}

function recordOf(part: StoredPart): UploadedPart {
  return { partNumber: part.partNumber, etag: part.etag, size: part.size };
}
