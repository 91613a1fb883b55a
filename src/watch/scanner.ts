// A full scan of a source folder, streamed: one open directory handle per level of the current
// path and one batch of results, so memory is bounded by the deepest path, not the tree's size.
//
// Folders are read and files stat'ed synchronously. A promise lstat costs about 20 µs of CPU and
// a round trip through the I/O thread pool, a synchronous one about 4 µs; and each round trip waits
// for the event loop to come back to the scan, which while uploads run can take milliseconds: a
// scan of 200,000 files made of round trips took 30 s. Instead the scan works in slices of at most
// SYNC_SLICE_MS and gives the event loop back between them, so the API and the uploads go on (the
// database calls block it in the same way). A paced scan also rests after each slice, so that it
// uses at most a given share of a core however large the tree.
import { lstatSync, opendirSync, type Dir, type Stats } from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { versionOf } from '../domain/file-version.js';
import type { ObservedFile } from '../domain/model.js';
import type { PathFilter } from './types.js';
import { asError, errorCode, isVanished } from './fs-errors.js';

export const DEFAULT_SCAN_BATCH_SIZE = 500;

/** Longest stretch of synchronous file-system calls before the scan lets other work run. */
const SYNC_SLICE_MS = 10;
/** Directory entries read from the kernel at a time (Node's default is 32). */
const DIRECTORY_BUFFER_ENTRIES = 256;

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
  /** Stamps each file's observedAt, taken just before its stat (default Date.now). */
  observationClock?: () => number;
  /** Rests between slices so that the scan (and what its consumer does) uses at most this share. */
  pace?: ScanPace;
}

export interface ScanPace {
  /** Share of one core the scan may use, above 0 and at most 1. */
  busyShare: number;
  /** For tests: the clock slices are measured with (default performance.now), and the rest. */
  now?: () => number;
  rest?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/** How long to rest after `busyMs` of work to use at most `busyShare` of a core. */
export function restAfter(busyMs: number, busyShare: number): number {
  return Math.round((busyMs * (1 - busyShare)) / busyShare);
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

interface OpenFolder {
  dir: Dir;
  absolutePath: string;
  /** '' for the root, else 'a/b'. */
  relativePath: string;
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
  const rest =
    pace?.rest ?? ((ms: number, abort: AbortSignal | undefined) => sleep(ms, undefined, { signal: abort }));
  /** Ends a slice: lets other work run, and rests when paced. */
  const endSlice = async (busyMs: number): Promise<void> => {
    if (pace && pace.busyShare < 1) await rest(restAfter(busyMs, pace.busyShare), signal);
    else await nextTurn();
  };
  const open: OpenFolder[] = [];
  let batch: ObservedFile[] = [];
  let sliceStartedAt = clock();

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
      open.push({ dir: openFolder(root), absolutePath: root, relativePath: '' });
    } catch (error) {
      throw new FolderUnreadableError(root, errorCode(error), error);
    }

    for (let folder = open.at(-1); folder !== undefined; folder = open.at(-1)) {
      // The slice includes what the consumer did with the last batch (recording it).
      const busyMs = clock() - sliceStartedAt;
      if (busyMs >= SYNC_SLICE_MS) {
        await endSlice(busyMs);
        sliceStartedAt = clock();
      }
      signal?.throwIfAborted();
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
        continue;
      }

      const absolutePath = path.join(folder.absolutePath, entry.name);
      const relativePath = folder.relativePath === '' ? entry.name : `${folder.relativePath}/${entry.name}`;
      if (entry.isDirectory()) {
        try {
          open.push({ dir: openFolder(absolutePath), absolutePath, relativePath });
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

function openFolder(folder: string): Dir {
  return opendirSync(folder, { bufferSize: DIRECTORY_BUFFER_ENTRIES });
}

function closeFolder(dir: Dir): void {
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
