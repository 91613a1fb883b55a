// A full scan of a source folder, streamed: one open directory handle per level of the current
// path and one batch of results, so memory is bounded by the deepest path, not the tree's size.
//
// Folders are read and files stat'ed synchronously. A promise lstat costs about 20 µs of CPU and
// a round trip through the I/O thread pool, a synchronous one about 4 µs; and each round trip waits
// for the event loop to come back to the scan, which while uploads run can take milliseconds: a
// scan of 200,000 files made of round trips took 30 s. Instead the scan works in slices of at most
// SYNC_SLICE_MS and gives the event loop back between them, so the API and the uploads go on (the
// database calls block it in the same way). A paced scan also rests after each slice, so that it
// uses at most a given share of a core however large the tree. The share is of the process's CPU,
// every thread counted: the garbage a scan leaves is collected during its rests, partly on other
// threads, and at a million files that cost as much as the slices themselves.
//
// Names are read as strings. A folder where one holds U+FFFD is read a second time, as bytes, for
// its names that are not UTF-8 (see names.ts), which are counted rather than uploaded; reading
// every folder as bytes would double the cost of reading folders.
import { isUtf8 } from 'node:buffer';
import { lstatSync, opendirSync, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { versionOf } from '../domain/file-version.js';
import type { ObservedFile } from '../domain/model.js';
import type { PathFilter } from './types.js';
import { asError, errorCode, isVanished } from '../fs-errors.js';
import { escapeNotUtf8, REPLACEMENT_CHARACTER, type NamesNotUtf8 } from './names.js';

export const DEFAULT_SCAN_BATCH_SIZE = 500;

/** Longest stretch of synchronous file-system calls before the scan lets other work run. */
const SYNC_SLICE_MS = 10;
/** Directory entries read from the kernel at a time (Node's default is 32). */
const DIRECTORY_BUFFER_ENTRIES = 256;
/**
 * The longest rest after a slice. A slice normally costs about SYNC_SLICE_MS of CPU, which at 0.5%
 * of a core earns a rest of about 2 s; twice that is enough to pay back a slice of up to 20 ms.
 * More means the machine stalled, or the rest of the service was busy (uploading), not that the
 * scan used that much: resting 200 times as long (400 s after 2 s) would only delay the safety net.
 */
export const MAX_REST_MS = 4000;

export interface ScanOptions {
  /** Files per yielded batch (default 500). */
  batchSize?: number;
  /** Stops the scan: the generator throws the signal's reason. */
  signal?: AbortSignal;
  /**
   * A subfolder or file that exists but cannot be read (EACCES...). The scan goes on without it.
   * Without this option such an error ends the scan: a silently partial scan would look complete.
   */
  onError?: (path: string, error: Error) => void;
  /**
   * Files skipped because their name, or a folder's name above them, is not valid UTF-8: once per
   * folder holding such names, after it was read. Without this option they are skipped unseen.
   */
  onNamesNotUtf8?: (names: NamesNotUtf8) => void;
  /** Stamps each file's observedAt, taken just before its stat (default Date.now). */
  observationClock?: () => number;
  /** Rests between slices so that the scan (and what its consumer does) uses at most this share. */
  pace?: ScanPace;
}

export interface ScanPace {
  /** Share of one core the scan may use, above 0 and at most 1. */
  busyShare: number;
  /** Once aborted, the scan goes on at full speed: a rest in progress ends at once. */
  hurried?: AbortSignal;
  /** For tests: the clock slices are measured with (default performance.now), and the rest. */
  now?: () => number;
  /** For tests: the process's CPU time in ms, every thread (default process.cpuUsage). */
  cpuNow?: () => number;
  rest?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/** How long to rest after `busyMs` of CPU to use at most `busyShare` of a core (at most MAX_REST_MS). */
export function restAfter(busyMs: number, busyShare: number): number {
  return Math.min(MAX_REST_MS, Math.round((busyMs * (1 - busyShare)) / busyShare));
}

/** The source folder itself is missing, not a folder, or unreadable. */
export class FolderUnreadableError extends Error {
  constructor(
    readonly folder: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    super(`source folder ${folder} ${describe(code, cause)}`, { cause });
    this.name = 'FolderUnreadableError';
  }
}

/** A folder being read with its names as strings. */
interface OpenFolder {
  kind: 'names';
  dir: FolderReader<string>;
  absolutePath: string;
  /** '' for the root, else 'a/b'. */
  relativePath: string;
  /** One of its names holds U+FFFD: it is read again for names that are not UTF-8. */
  suspect: boolean;
}

/** A folder being read with its names as bytes, for the files whose path is not UTF-8. */
interface OpenFolderBytes {
  kind: 'bytes';
  dir: FolderReader<Buffer>;
  absolutePath: Buffer;
  /** Decoded with U+FFFD for the bad bytes: what the pattern is matched against. */
  relativePath: string;
  /** Under a folder whose name is not UTF-8: every entry counts, not only the bad names. */
  underBadName: boolean;
  /** The count for the nearest folder whose path is UTF-8, reported once its second read ends. */
  tally: NamesNotUtf8;
}

/** fs.Dir, whose names are Buffers when it is opened with encoding 'buffer' (@types/node says string). */
interface FolderReader<Name extends string | Buffer> {
  readSync(): Dirent<Name> | null;
  closeSync(): void;
}

/**
 * Every regular file under `root` that `filter` accepts, in batches. Symbolic links are never
 * followed (files and folders alike), so nothing outside the folder is reached. A file or folder
 * that vanishes during the scan is skipped silently: that is what folders do.
 */
export async function* scanFolder(
  root: string,
  filter: PathFilter,
  options: ScanOptions = {},
): AsyncGenerator<ObservedFile[]> {
  const batchSize = options.batchSize ?? DEFAULT_SCAN_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, not ${batchSize}`);
  }
  const { signal } = options;
  const observationClock = options.observationClock ?? Date.now;
  const { pace } = options;
  if (pace && !(pace.busyShare > 0 && pace.busyShare <= 1)) {
    throw new RangeError(`busyShare must be above 0 and at most 1, not ${pace.busyShare}`);
  }
  const clock = pace?.now ?? (() => performance.now());
  const cpuClock = pace?.cpuNow ?? processCpuMs;
  const rest =
    pace?.rest ?? ((ms: number, abort: AbortSignal | undefined) => sleep(ms, undefined, { signal: abort }));
  /** The process's CPU when the last slice ended: what it used since, its rest included, is paid for. */
  let cpuAtSliceEnd = pace ? cpuClock() : 0;
  /** Ends a slice: lets other work run, and rests when paced (until hurried). */
  const endSlice = async (): Promise<void> => {
    if (!pace || pace.busyShare >= 1 || pace.hurried?.aborted) return void (await nextTurn());
    const { hurried } = pace;
    const restSignal = hurried && signal ? AbortSignal.any([signal, hurried]) : (hurried ?? signal);
    const cpuNow = cpuClock();
    const busyMs = cpuNow - cpuAtSliceEnd;
    cpuAtSliceEnd = cpuNow;
    try {
      await rest(restAfter(busyMs, pace.busyShare), restSignal);
    } catch (error) {
      // Hurried during the rest: go on. Stopped: the caller sees the stop's reason.
      if (!hurried?.aborted || signal?.aborted) throw error;
    }
  };
  const open: (OpenFolder | OpenFolderBytes)[] = [];
  let batch: ObservedFile[] = [];
  let sliceStartedAt = clock();

  /** Reads one entry of a folder read as bytes: counts the files whose path is not UTF-8. */
  const readBytes = (folder: OpenFolderBytes): void => {
    let entry;
    try {
      entry = folder.dir.readSync();
    } catch (error) {
      problem(folder.absolutePath.toString(), error);
      entry = null;
    }
    if (entry === null) {
      open.pop();
      closeFolder(folder.dir);
      const { tally } = folder;
      if (!folder.underBadName && tally.files > 0) options.onNamesNotUtf8?.(tally);
      return;
    }
    if (!folder.underBadName && isUtf8(entry.name)) return; // read as a string already
    const relativePath = joinRelative(folder.relativePath, entry.name.toString());
    const isFolder = entry.isDirectory();
    if (!isFolder && !(entry.isFile() && filter(relativePath))) return;
    const { tally } = folder;
    // The example is a bad name this folder holds (a folder so named is met before what it holds).
    if (!folder.underBadName && tally.example === '')
      tally.example = joinRelative(tally.folder, escapeNotUtf8(entry.name));
    if (isFolder)
      pushBytes(Buffer.concat([folder.absolutePath, SEPARATOR, entry.name]), relativePath, true, tally);
    else tally.files += 1;
  };

  const pushBytes = (
    absolutePath: Buffer,
    relativePath: string,
    underBadName: boolean,
    tally: NamesNotUtf8,
  ) => {
    try {
      open.push({
        kind: 'bytes',
        dir: openFolder(absolutePath, 'buffer'),
        absolutePath,
        relativePath,
        underBadName,
        tally,
      });
    } catch (error) {
      problem(absolutePath.toString(), error);
    }
  };

  /** Vanished paths are skipped; anything else goes to onError, or ends the scan without it. */
  const problem = (absolutePath: string, error: unknown): void => {
    if (isVanished(error)) return;
    if (!options.onError) {
      const message = `cannot read ${absolutePath} while scanning ${root}: ${asError(error).message}`;
      throw new Error(message, { cause: error });
    }
    options.onError(absolutePath, asError(error));
  };

  try {
    signal?.throwIfAborted();
    try {
      open.push(namesOf(root, ''));
    } catch (error) {
      throw new FolderUnreadableError(root, errorCode(error), error);
    }

    for (let folder = open.at(-1); folder !== undefined; folder = open.at(-1)) {
      // The slice includes what the consumer did with the last batch (recording it).
      if (clock() - sliceStartedAt >= SYNC_SLICE_MS) {
        await endSlice();
        sliceStartedAt = clock();
      }
      signal?.throwIfAborted();
      if (folder.kind === 'bytes') {
        readBytes(folder);
        continue;
      }
      let entry;
      try {
        entry = folder.dir.readSync();
      } catch (error) {
        problem(folder.absolutePath, error);
        entry = null; // give up on this folder, keep the rest
      }
      if (entry === null) {
        open.pop();
        closeFolder(folder.dir);
        if (folder.suspect && options.onNamesNotUtf8) {
          const tally = { folder: folder.relativePath, files: 0, example: '' };
          pushBytes(Buffer.from(folder.absolutePath), folder.relativePath, false, tally);
        }
        continue;
      }

      if (entry.name.includes(REPLACEMENT_CHARACTER)) folder.suspect = true;
      const absolutePath = path.join(folder.absolutePath, entry.name);
      const relativePath = joinRelative(folder.relativePath, entry.name);
      if (entry.isDirectory()) {
        try {
          open.push(namesOf(absolutePath, relativePath));
        } catch (error) {
          problem(absolutePath, error);
        }
      } else if (entry.isFile() && filter(relativePath)) {
        let stats: Stats;
        const observedAt = observationClock();
        try {
          stats = lstatSync(absolutePath);
        } catch (error) {
          problem(absolutePath, error);
          continue;
        }
        // Replaced by a link or a folder since the directory was read: not a file we take.
        if (!stats.isFile()) continue;
        batch.push({ relativePath, ...versionOf(stats), observedAt });
        if (batch.length >= batchSize) {
          const full = batch;
          batch = [];
          yield full;
        }
      }
      // Symbolic links, sockets, FIFOs and devices are never uploaded.
    }
    if (batch.length > 0) yield batch;
  } finally {
    // Reached on completion, on error, and when the consumer stops early (break, return).
    for (const folder of open) closeFolder(folder.dir);
  }
}

const SEPARATOR = Buffer.from(path.sep);

function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function joinRelative(folder: string, name: string): string {
  return folder === '' ? name : `${folder}/${name}`;
}

function namesOf(absolutePath: string, relativePath: string): OpenFolder {
  return { kind: 'names', dir: openFolder(absolutePath, 'utf8'), absolutePath, relativePath, suspect: false };
}

function openFolder(folder: string, encoding: 'utf8'): FolderReader<string>;
function openFolder(folder: Buffer, encoding: 'buffer'): FolderReader<Buffer>;
function openFolder(folder: string | Buffer, encoding: 'utf8' | 'buffer'): FolderReader<string | Buffer> {
  // 'buffer' is not a BufferEncoding to @types/node, but opendir takes it: names come as bytes.
  return opendirSync(folder, { bufferSize: DIRECTORY_BUFFER_ENTRIES, encoding: encoding as BufferEncoding });
}

function closeFolder(dir: { closeSync(): void }): void {
  try {
    dir.closeSync();
  } catch {
    // already closed, or the folder is gone: nothing is held any more
  }
}

function describe(code: string | undefined, cause: unknown): string {
  switch (code) {
    case 'ENOENT':
      return 'does not exist';
    case 'ENOTDIR':
      return 'is not a folder';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read: permission denied';
    default:
      return `cannot be read: ${cause instanceof Error ? cause.message : String(cause)}`;
  }
}
