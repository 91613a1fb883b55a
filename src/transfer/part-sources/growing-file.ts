// A file looked at while it is still written. Only appends are followed: at each look the file must
// still be the same file (inode), no shorter than what was read, with the same first bytes and the
// same bytes at the end of what was read (fingerprints, which catch a rewrite early); anything else
// is a FileRewrittenError. It has settled once unchanged for settleMs.
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { FileRewrittenError, ObjectTooLargeError } from '../errors.js';
import { readUpTo, statPath } from '../file-version.js';
import { MAX_OBJECT_SIZE } from '../part-plan.js';

/** Bytes compared at the start of the file and at the end of what was read, to notice a rewrite early. */
const FINGERPRINT_BYTES = 4096;

/** Two windows of the file: its first bytes and the last bytes before `end`. */
async function fingerprintAt(handle: FileHandle, end: number): Promise<string | undefined> {
  const head = Buffer.allocUnsafe(Math.min(FINGERPRINT_BYTES, end));
  const tail = Buffer.allocUnsafe(Math.min(FINGERPRINT_BYTES, end));
  const [headRead, tailRead] = await Promise.all([
    readUpTo(handle, head, 0),
    readUpTo(handle, tail, end - tail.length),
  ]);
  if (headRead < head.length || tailRead < tail.length) return undefined;
  return createHash('sha256').update(head).update(tail).digest('hex');
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}

export class GrowingFile {
  /** The fingerprint at the end of what was read. */
  private fingerprint: string | undefined;
  /** The version last seen, and when (this clock) it was first seen: the settle check. */
  private seen: { size: number; mtimeMs: number; since: number } | undefined;

  constructor(
    readonly handle: FileHandle,
    readonly filePath: string,
    private readonly settleMs: number,
    /** The file when it was opened: a modification time unchanged at the end means nothing moved. */
    readonly opened: Stats,
  ) {}

  /** Fills `buffer` from `position` as far as the file goes; returns how many bytes were read. */
  read(buffer: Buffer, position: number): Promise<number> {
    return readUpTo(this.handle, buffer, position);
  }

  /** The first `end` bytes have been read: later looks check that they stay as they were. */
  async markRead(end: number): Promise<void> {
    this.fingerprint = await fingerprintAt(this.handle, end);
  }

  /** The file as it is now, after checking that it was only appended to since `end` bytes were read. */
  async look(end: number): Promise<Stats> {
    const stats = await this.handle.stat();
    const atPath = await statPath(this.filePath);
    if (!sameFile(atPath, stats)) throw new FileRewrittenError(this.filePath, 'replaced');
    if (stats.size < end) throw new FileRewrittenError(this.filePath, 'truncated');
    // Parts of a large STREAM_PART_SIZE_BYTES could carry it past what one object may hold.
    if (stats.size > MAX_OBJECT_SIZE) throw new ObjectTooLargeError(this.filePath, stats.size);
    const changed = stats.size !== this.seen?.size || stats.mtimeMs !== this.seen.mtimeMs;
    if (changed) {
      if ((await fingerprintAt(this.handle, end)) !== this.fingerprint)
        throw new FileRewrittenError(this.filePath, 'rewritten');
      this.seen = { size: stats.size, mtimeMs: stats.mtimeMs, since: Date.now() };
    }
    return stats;
  }

  /**
   * Settled: unchanged for settleMs, counted from its modification time or, when that is in the
   * future (another clock, a network share), from when this version was first seen.
   */
  settled(stats: Stats): boolean {
    const since = Math.min(stats.mtimeMs, this.seen?.since ?? Date.now());
    return Date.now() >= since + this.settleMs;
  }

  /** Whether the file at the path is still exactly as `stats` saw it. */
  async unchangedSince(stats: Stats): Promise<boolean> {
    const now = await this.handle.stat();
    const atPath = await statPath(this.filePath);
    return sameFile(atPath, stats) && now.size === stats.size && now.mtimeMs === stats.mtimeMs;
  }
}
