// The SHA-256 of the content uploaded, recorded with every completed task. Parts are read by
// several workers at once, so their bytes reach the hash through OrderedHash, in file order.
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { abortErrorFrom } from './errors.js';
import { readExactly, readUpTo, type VersionedFile } from './file-version.js';
import type { TransferContext } from './s3-request.js';

/** Reads of this size when a range is hashed without being sent. */
const HASH_READ_BYTES = 4 * 1024 * 1024;

/**
 * Reads the whole of `file` (its version's size) from `handle` through one buffer leased from the
 * pool, so that MAX_BUFFER_BYTES bounds this memory too, and hands each chunk to `take`, in order.
 * A file shorter than its version throws as readExactly does.
 */
export async function readThrough(
  context: TransferContext,
  handle: FileHandle,
  file: VersionedFile,
  signal: AbortSignal,
  take: (chunk: Buffer) => void,
): Promise<void> {
  const lease = await context.buffers.lease(Math.max(1, Math.min(HASH_READ_BYTES, file.size)), signal);
  try {
    for (let position = 0; position < file.size; position += lease.buffer.length) {
      if (signal.aborted) throw abortErrorFrom(signal);
      const chunk = lease.buffer.subarray(0, Math.min(lease.buffer.length, file.size - position));
      await readExactly(handle, chunk, position, file);
      take(chunk);
    }
  } finally {
    lease.release();
  }
}

/** Hex SHA-256 of a hash's content so far, leaving the hash usable. */
export function hexDigestSoFar(hash: Hash): string {
  return hash.copy().digest('hex');
}

/** Where an OrderedHash stood, to go back to when the chunks fed since are forgotten. */
export interface HashMark {
  hash: Hash;
  next: number;
}

/** Feeds numbered chunks (from 1) into one SHA-256 in number order, whatever order they come in. */
export class OrderedHash {
  private readonly waiting = new Map<number, { resume: () => void; fail: (error: unknown) => void }>();
  private failure: { error: unknown } | undefined;

  /** `hash` holds the chunks before `next` already (a prefix hashed apart). */
  constructor(
    private current: Hash = createHash('sha256'),
    private next = 1,
  ) {}

  /** The SHA-256 being fed (digest it only once every chunk is in). */
  get hash(): Hash {
    return this.current;
  }

  /** Hex SHA-256 of the chunks fed so far. */
  digestSoFar(): string {
    return hexDigestSoFar(this.current);
  }

  /** Where the hash stands, between chunks. */
  mark(): HashMark {
    return { hash: this.current.copy(), next: this.next };
  }

  /** Forgets the chunks fed since `mark`. */
  rewind(mark: HashMark): void {
    this.current = mark.hash.copy();
    this.next = mark.next;
  }

  /** Resolves once `data` is hashed, after every chunk numbered before it. */
  async update(index: number, data: Uint8Array): Promise<void> {
    await this.updateFrom(index, (hash) => {
      hash.update(data);
      return Promise.resolve();
    });
  }

  /**
   * For a chunk too large to hold at once: on chunk `index`'s turn, `feed` adds its bytes to the
   * hash in pieces; the next chunk's turn comes when it resolves. If it rejects, so does every
   * chunk after it.
   */
  async updateFrom<T>(index: number, feed: (hash: Hash) => Promise<T>): Promise<T> {
    while (index !== this.next) {
      if (this.failure) throw this.failure.error;
      await new Promise<void>((resume, fail) => this.waiting.set(index, { resume, fail }));
    }
    let fed: T;
    try {
      fed = await feed(this.current);
    } catch (error) {
      this.abandon(error);
      throw error;
    }
    this.next++;
    const turn = this.waiting.get(this.next);
    this.waiting.delete(this.next);
    turn?.resume();
    return fed;
  }

  /** A chunk will never come (its read failed): every chunk waiting for it fails too. */
  abandon(error: unknown): void {
    this.failure ??= { error };
    for (const waiter of this.waiting.values()) waiter.fail(error);
    this.waiting.clear();
  }
}

/** Adds bytes [start, end) of the file to `hash`; false when the file ends before `end`. */
export async function hashRange(
  handle: FileHandle,
  hash: Hash,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const buffer = Buffer.allocUnsafe(Math.min(HASH_READ_BYTES, Math.max(1, end - start)));
  for (let position = start; position < end; position += buffer.length) {
    if (signal?.aborted) throw abortErrorFrom(signal);
    const chunk = buffer.subarray(0, Math.min(buffer.length, end - position));
    const read = await readUpTo(handle, chunk, position);
    hash.update(chunk.subarray(0, read));
    if (read < chunk.length) return false;
  }
  return true;
}

/** Hex SHA-256 of bytes [0, size) of the file, or undefined when it holds fewer bytes. */
export async function sha256OfFile(
  handle: FileHandle,
  size: number,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const hash = createHash('sha256');
  return (await hashRange(handle, hash, 0, size, signal)) ? hash.digest('hex') : undefined;
}
