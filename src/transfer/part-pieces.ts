// A part larger than the buffer pool can lend is read and sent in pieces. Parts of a file of about
// 2.5 TiB and more must be larger than MAX_BUFFER_BYTES (10,000 parts at most), and PART_SIZE_BYTES
// may be set above it too. Content-MD5 and the additional checksum go in the headers, before the
// body, so such a part is read twice: a first pass hashes it piece by piece (the file's SHA-256
// too), then the request body streams the same range from the file again, through the same leased
// pieces. Bytes that differ on the second read never complete the part: the second pass hashes
// them as well and abandons the request with FileChangedError, and S3 would refuse them anyway
// (BadDigest). Only such parts take this path; a part that fits is read once into one buffer.
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { BufferPool } from './buffer-pool.js';
import type { Md5, RunningChecksum } from './checksums.js';
import { FileChangedError } from './errors.js';
import { readExactly, type VersionedFile } from './file-version.js';
import type { PartStream, StreamedPart } from './multipart-api.js';

/** The most bytes read at a time from a part that does not fit in the pool. */
export const PIECE_BYTES = 8 * 1024 * 1024;

export interface PartRange {
  offset: number;
  size: number;
}

/**
 * What one oversized part leases for its whole life: two pieces, so that the next piece is read
 * while the last one is sent, and at most half the pool, so that every part can get it.
 */
export function piecesLeaseBytes(pool: BufferPool): number {
  return 2 * Math.min(PIECE_BYTES, Math.floor(pool.capacityBytes / 2));
}

function splitPieces(leased: Buffer): [Buffer, Buffer] {
  const half = Math.floor(leased.length / 2);
  return [leased.subarray(0, half), leased.subarray(half, 2 * half)];
}

/**
 * The first pass: reads the range piece by piece into `leased`, feeding the part's MD5, its
 * additional checksum and `content` (the file's running SHA-256); returns the part to send.
 */
export async function hashPart(
  handle: FileHandle,
  file: VersionedFile,
  range: PartRange,
  leased: Buffer,
  content: Hash,
  checksum: RunningChecksum | undefined,
): Promise<StreamedPart> {
  const [piece] = splitPieces(leased);
  const md5 = createHash('md5');
  for (let position = range.offset, end = range.offset + range.size; position < end;) {
    const chunk = piece.subarray(0, Math.min(piece.length, end - position));
    await readExactly(handle, chunk, position, file);
    md5.update(chunk);
    content.update(chunk);
    checksum?.update(chunk);
    position += chunk.length;
  }
  const digest = md5.digest();
  const partMd5: Md5 = { hex: digest.toString('hex'), base64: digest.toString('base64') };
  return {
    size: range.size,
    md5: partMd5,
    checksum: checksum && { field: checksum.field, base64: await checksum.digest() },
    open: (abortSignal) => new PieceStream(handle, file, range, leased, partMd5.hex, abortSignal).attempt(),
  };
}

/** The second pass, once per attempt: the range again, piece by piece, as a request body. */
class PieceStream extends Readable {
  private position: number;
  private readonly end: number;
  private readonly pieces: [Buffer, Buffer];
  private next = 0;
  private readonly md5 = createHash('md5');
  private readonly stopper = new AbortController();
  private failure: Error | undefined;
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly handle: FileHandle,
    private readonly file: VersionedFile,
    range: PartRange,
    leased: Buffer,
    private readonly expectedMd5: string,
    private readonly abortSignal: AbortSignal,
  ) {
    const pieces = splitPieces(leased);
    // One piece waits while the other is sent. A piece is read again only once the one after it
    // has been taken by the request, that is once the socket has drained the piece before: the
    // buffer is free again. (Were it not, S3 would refuse the part's Content-MD5.)
    super({ highWaterMark: pieces[0].length });
    this.pieces = pieces;
    // The request ends with the transfer, or when this stream gives up.
    if (abortSignal.aborted) this.stopper.abort(abortSignal.reason);
    else abortSignal.addEventListener('abort', this.onJobAbort, { once: true });
    this.position = range.offset;
    this.end = range.offset + range.size;
  }

  attempt(): PartStream {
    return {
      stream: this,
      failure: () => this.failure,
      signal: this.stopper.signal,
      close: async () => {
        this.abortSignal.removeEventListener('abort', this.onJobAbort);
        this.destroy();
        await this.reading;
      },
    };
  }

  private readonly onJobAbort = (): void => this.stopper.abort(this.abortSignal.reason);

  override _read(): void {
    this.reading = this.readPiece().catch((error: unknown) => this.giveUp(error));
  }

  private async readPiece(): Promise<void> {
    if (this.destroyed) return;
    if (this.position >= this.end) {
      this.push(null);
      return;
    }
    const piece = this.pieces[this.next++ % 2]!;
    const chunk = piece.subarray(0, Math.min(piece.length, this.end - this.position));
    await readExactly(this.handle, chunk, this.position, this.file);
    if (this.destroyed) return;
    this.md5.update(chunk);
    this.position += chunk.length;
    if (this.position === this.end && this.md5.digest('hex') !== this.expectedMd5) {
      const { filePath, size, mtimeMs, ino, ctimeMs } = this.file;
      const detail = 'read other bytes than the first read of the same part';
      const version = { size, mtimeMs, ino, ctimeMs };
      throw new FileChangedError(filePath, version, undefined, 'while reading', detail);
    }
    this.push(chunk);
  }

  /** A piped body cannot fail its request: the request is aborted, and the attempt says why. */
  private giveUp(error: unknown): void {
    this.failure = error instanceof Error ? error : new Error(String(error));
    this.stopper.abort(this.failure);
    this.destroy();
  }
}
