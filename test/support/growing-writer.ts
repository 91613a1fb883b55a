// A file that grows at a steady rate, as an instrument or a logger writes it: random bytes appended
// in chunks on a fixed schedule, with the digests of the whole file and the time of the last write.
//
//   const writer = startGrowingWrite(file, { totalBytes: 48 * MiB, chunkBytes: MiB, intervalMs: 125 });
//   ... watch the service while writer.writtenBytes grows ...
//   const { sha256, lastWriteAt } = await writer.done;
//
// The file is opened with O_APPEND: each chunk lands at the end of the file as it is then, so a test
// that truncates the file meanwhile gets a shorter file that keeps growing, as a log does. The digests
// describe what this writer wrote (after the existing content, with `append`); they hold only when
// nobody else changed the file: a test that does should hash the file itself (hashFile).
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FileDigests } from './temp-tree.js';

export interface GrowingWriteOptions {
  /** bytes this writer appends in all */
  totalBytes: number;
  /** bytes per write; the last write may be shorter */
  chunkBytes: number;
  /** time between the starts of two writes; the schedule does not drift when a write is slow */
  intervalMs: number;
  /** keep the file's content and append after it; default: start from an empty file */
  append?: boolean;
  /** stops the writer after the write in progress; `done` then rejects */
  signal?: AbortSignal;
}

export interface GrowingWriteResult extends FileDigests {
  /** bytes this writer appended */
  written: number;
  /** Date.now() just before the first write */
  startedAt: number;
  /** Date.now() just after the last write returned */
  lastWriteAt: number;
  /** how late the slowest write started against its schedule, ms: a sign of a loaded machine */
  maxLagMs: number;
}

export interface GrowingWriter {
  /** bytes appended so far */
  readonly writtenBytes: number;
  /** Date.now() after the latest write, undefined before the first */
  readonly lastWriteAt: number | undefined;
  /** resolves after the last write, with the file's digests; rejects on a write error or an abort */
  readonly done: Promise<GrowingWriteResult>;
  /** ends the file early, after the write in progress: for a test whose steps take as long as they take */
  finish(): void;
}

export function startGrowingWrite(filePath: string, options: GrowingWriteOptions): GrowingWriter {
  const { totalBytes, chunkBytes, intervalMs } = options;
  if (!Number.isSafeInteger(totalBytes) || totalBytes < 0)
    throw new Error(`invalid total size ${totalBytes} for ${filePath}`);
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0)
    throw new Error(`invalid chunk size ${chunkBytes} for ${filePath}`);
  if (!(intervalMs >= 0)) throw new Error(`invalid interval ${intervalMs} ms for ${filePath}`);

  const progress = { written: 0, lastWriteAt: undefined as number | undefined, finished: false };
  const done = (async (): Promise<GrowingWriteResult> => {
    await mkdir(path.dirname(filePath), { recursive: true });
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    let existing = 0;
    if (options.append) existing = await hashInto(filePath, [md5, sha256], { missingIsEmpty: true });
    else await writeFile(filePath, ''); // a fresh, empty file
    const file = await open(filePath, 'a');
    try {
      const startedAt = Date.now();
      const maxLagMs = await writeOnSchedule(
        file,
        options,
        startedAt,
        () => progress.finished,
        (chunk) => {
          md5.update(chunk);
          sha256.update(chunk);
          progress.written += chunk.length;
          progress.lastWriteAt = Date.now();
        },
      );
      return {
        bytes: existing + progress.written,
        md5: md5.digest('hex'),
        sha256: sha256.digest('hex'),
        written: progress.written,
        startedAt,
        lastWriteAt: progress.lastWriteAt ?? startedAt,
        maxLagMs,
      };
    } finally {
      await file.close();
    }
  })();
  done.catch(() => undefined); // the caller awaits it; an early failure must not be unhandled meanwhile
  return {
    get writtenBytes() {
      return progress.written;
    },
    get lastWriteAt() {
      return progress.lastWriteAt;
    },
    done,
    finish() {
      progress.finished = true;
    },
  };
}

/** Writes chunk i at startedAt + i × interval (or at once when late); returns the worst lateness. */
async function writeOnSchedule(
  file: FileHandle,
  options: GrowingWriteOptions,
  startedAt: number,
  finished: () => boolean,
  onWritten: (chunk: Buffer) => void,
): Promise<number> {
  let maxLagMs = 0;
  for (let index = 0, written = 0; written < options.totalBytes; index++) {
    const dueAt = startedAt + index * options.intervalMs;
    const waitMs = dueAt - Date.now();
    if (waitMs > 0) await sleep(waitMs, undefined, { signal: options.signal });
    options.signal?.throwIfAborted();
    if (finished()) break;
    maxLagMs = Math.max(maxLagMs, Date.now() - dueAt);
    const chunk = randomBytes(Math.min(options.chunkBytes, options.totalBytes - written));
    await writeAll(file, chunk);
    written += chunk.length;
    onWritten(chunk);
  }
  return maxLagMs;
}

async function writeAll(file: FileHandle, chunk: Buffer): Promise<void> {
  for (let offset = 0; offset < chunk.length;) {
    const { bytesWritten } = await file.write(chunk, offset);
    offset += bytesWritten;
  }
}

/** Feeds the file's bytes to the hashes; returns how many there were. */
async function hashInto(
  filePath: string,
  hashes: Hash[],
  { missingIsEmpty }: { missingIsEmpty: boolean },
): Promise<number> {
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(filePath) as AsyncIterable<Buffer>) {
      for (const hash of hashes) hash.update(chunk);
      bytes += chunk.length;
    }
  } catch (error) {
    if (missingIsEmpty && (error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  return bytes;
}

/** The digests of a file as it is now. */
export async function hashFile(filePath: string): Promise<FileDigests> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const bytes = await hashInto(filePath, [md5, sha256], { missingIsEmpty: false });
  return { bytes, md5: md5.digest('hex'), sha256: sha256.digest('hex') };
}
