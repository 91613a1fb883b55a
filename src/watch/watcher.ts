// File-system events for one source folder, turned into batches of observed files: events are
// coalesced, each path is stat'ed once (links, folders and vanished paths are dropped), new
// folders are scanned, and what the filter accepts is handed to the engine. Deletions are not
// reported: nothing is ever removed from S3 because a local file went away.
import type { Stats } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { versionOf } from '../domain/file-version.js';
import type { ObservedFile } from '../domain/model.js';
import { ChangeBuffer } from './change-buffer.js';
import { asError, errorCode, isVanished } from '../fs-errors.js';
import { FolderUnreadableError, scanFolder } from './scanner.js';
import { REPLACEMENT_CHARACTER } from './names.js';
import { FolderSubscriptions, type WatchEvent } from './subscriptions.js';
import type { FolderWatch, PathFilter, WatchHandlers, WatchObserver } from './types.js';

export interface WatchOptions {
  /** How long events gather before their paths are examined (default 100 ms). */
  coalesceMs?: number;
  /** Distinct pending paths that trigger an early hand-over (default 10,000). */
  maxPendingPaths?: number;
  /** Files per filesChanged() call (default 500). */
  batchSize?: number;
  /** Stamps each file's observedAt, taken just before its stat (default Date.now). */
  observationClock?: () => number;
  /** Told how many events arrive, by kind (the metrics). */
  observer?: WatchObserver;
}

/**
 * Reported through WatchHandlers.error when some changes were not, or will not be, reported.
 * A rescan finds them. watchLost: the watch no longer works at all (its folder was deleted or
 * moved); close it and watch again once the folder is back.
 */
export class MissedChangesError extends Error {
  constructor(
    message: string,
    readonly watchLost: boolean,
  ) {
    super(message);
    this.name = 'MissedChangesError';
  }
}

const STAT_CONCURRENCY = 32;

/** Starts watching `root` recursively. Rejects when the folder cannot be watched. */
export async function watchFolder(
  root: string,
  filter: PathFilter,
  handlers: WatchHandlers,
  options: WatchOptions = {},
): Promise<FolderWatch> {
  const folder = path.resolve(root);
  let stats: Stats;
  try {
    stats = await stat(folder);
  } catch (error) {
    throw new FolderUnreadableError(folder, errorCode(error), error);
  }
  if (!stats.isDirectory()) throw new FolderUnreadableError(folder, 'ENOTDIR', new Error('not a folder'));
  const watch = new FolderWatcher(folder, filter, handlers, options);
  await watch.start();
  return watch;
}

class FolderWatcher implements FolderWatch {
  private readonly buffer: ChangeBuffer;
  private readonly batchSize: number;
  private readonly observationClock: () => number;
  private readonly observer: WatchObserver | undefined;
  private readonly stopScans = new AbortController();
  private subscriptions: FolderSubscriptions | undefined;
  private closed = false;

  constructor(
    private readonly root: string,
    private readonly filter: PathFilter,
    private readonly handlers: WatchHandlers,
    options: WatchOptions,
  ) {
    this.batchSize = options.batchSize ?? 500;
    this.observationClock = options.observationClock ?? Date.now;
    this.observer = options.observer;
    this.buffer = new ChangeBuffer({
      windowMs: options.coalesceMs ?? 100,
      maxPending: options.maxPendingPaths ?? 10_000,
      flush: (changes) => this.examine(changes),
      overflowed: () =>
        this.report(
          new MissedChangesError(
            `too many changes at once under ${this.root}: some were dropped, the next rescan finds them`,
            false,
          ),
        ),
      failed: (error) => this.report(asError(error)),
    });
  }

  async start(): Promise<void> {
    this.subscriptions = await FolderSubscriptions.open(this.root, {
      events: (events) => this.received(events),
      folderGone: (folder) => {
        if (folder !== this.root) return;
        const message = `source folder ${this.root} was deleted or moved: its changes are no longer watched`;
        this.report(new MissedChangesError(message, true));
      },
      error: (error) =>
        this.report(new Error(`watching ${this.root} failed: ${error.message}`, { cause: error })),
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopScans.abort();
    await Promise.all([this.buffer.close(), this.subscriptions?.close()]);
  }

  private received(events: WatchEvent[]): void {
    if (this.observer) countEvents(events, this.observer);
    for (const event of events) {
      const relativePath = this.relativePathOf(event.path);
      // A rename may be a creation: of a folder, perhaps, to be watched and scanned.
      if (relativePath !== null) this.buffer.add(relativePath, event.kind === 'rename');
    }
  }

  /** Stats the coalesced paths and reports the files among them; scans the new folders. */
  private async examine(changes: Map<string, boolean>): Promise<void> {
    const files: ObservedFile[] = [];
    const newFolders: string[] = [];
    const foldersWithBadNames = new Set<string>();
    const entries = [...changes];
    for (let start = 0; start < entries.length && !this.closed; start += STAT_CONCURRENCY) {
      const chunk = entries.slice(start, start + STAT_CONCURRENCY);
      await Promise.all(
        chunk.map(async ([relativePath, renamed]) => {
          // Only a rename can be a new folder; a change of a path the filter refuses is of no interest.
          const wanted = this.filter(relativePath);
          if (!renamed && !wanted) return;
          const observedAt = this.observationClock();
          const stats = await this.lstatOrNull(relativePath);
          // A name that is not UTF-8 reaches us decoded with U+FFFD, a path that leads nowhere.
          if (stats === null && relativePath.includes(REPLACEMENT_CHARACTER)) {
            foldersWithBadNames.add(folderHoldingBadName(relativePath));
          }
          if (stats?.isDirectory() && renamed) newFolders.push(relativePath);
          else if (stats?.isFile() && wanted) {
            files.push({ relativePath, ...versionOf(stats), observedAt });
          }
        }),
      );
      while (files.length >= this.batchSize) this.emit(files.splice(0, this.batchSize));
    }
    if (files.length > 0) this.emit(files);
    for (const folder of foldersWithBadNames) this.badNames(folder);
    for (const folder of outermost(newFolders)) await this.examineNewFolder(folder);
  }

  /** Files written before the folder's watch existed are found by scanning it, after watching it. */
  private async examineNewFolder(relativePath: string): Promise<void> {
    const absolutePath = path.join(this.root, relativePath);
    if (this.closed || !this.subscriptions) return;
    await this.subscriptions.watchNewFolder(absolutePath);
    try {
      const scan = scanFolder(absolutePath, (inner) => this.filter(`${relativePath}/${inner}`), {
        batchSize: this.batchSize,
        observationClock: this.observationClock,
        signal: this.stopScans.signal,
        onError: (_path, error) => this.report(error),
        onNamesNotUtf8: ({ folder }) =>
          this.badNames(folder === '' ? relativePath : `${relativePath}/${folder}`),
      });
      for await (const batch of scan) {
        this.emit(batch.map((file) => ({ ...file, relativePath: `${relativePath}/${file.relativePath}` })));
      }
    } catch (error) {
      if (this.closed || isVanished(error)) return; // the folder went away again
      this.report(asError(error));
    }
  }

  private async lstatOrNull(relativePath: string): Promise<Stats | null> {
    try {
      return await lstat(path.join(this.root, relativePath));
    } catch (error) {
      if (!isVanished(error)) this.report(asError(error));
      return null;
    }
  }

  /** The path relative to the root, '/' separated; null for the root itself or anything outside it. */
  private relativePathOf(absolutePath: string): string | null {
    const relative = path.relative(this.root, absolutePath);
    if (
      relative === '' ||
      relative === '..' ||
      relative.startsWith(`..${path.sep}`) ||
      path.isAbsolute(relative)
    ) {
      return null;
    }
    return relative.split(path.sep).join('/');
  }

  private emit(files: ObservedFile[]): void {
    if (this.closed || files.length === 0) return;
    try {
      this.handlers.filesChanged(files);
    } catch (error) {
      this.report(new Error(`the filesChanged handler failed: ${asError(error).message}`, { cause: error }));
    }
  }

  private badNames(folder: string): void {
    if (this.closed) return;
    try {
      this.handlers.namesNotUtf8?.(folder);
    } catch (error) {
      this.report(new Error(`the namesNotUtf8 handler failed: ${asError(error).message}`, { cause: error }));
    }
  }

  private report(error: Error): void {
    if (this.closed) return;
    try {
      this.handlers.error(error);
    } catch {
      // An error handler that throws has nowhere left to report to; the watch must go on.
    }
  }
}

/** Tells `observer` the events of one delivery, one call per kind present. */
function countEvents(events: readonly WatchEvent[], observer: WatchObserver): void {
  let renamed = 0;
  for (const event of events) if (event.kind === 'rename') renamed++;
  const changed = events.length - renamed;
  if (renamed > 0) observer.eventsReceived('rename', renamed);
  if (changed > 0) observer.eventsReceived('change', changed);
}

/** The folder holding the first name of the path that holds U+FFFD ('' for the root). */
function folderHoldingBadName(relativePath: string): string {
  const segments = relativePath.split('/');
  const bad = segments.findIndex((segment) => segment.includes(REPLACEMENT_CHARACTER));
  return segments.slice(0, bad).join('/');
}

/** Drops folders that lie inside another one of the list: scanning the outer one covers them. */
function outermost(folders: string[]): string[] {
  const kept = new Set<string>();
  const byDepth = [...folders].sort((a, b) => a.split('/').length - b.split('/').length);
  for (const folder of byDepth) {
    const segments = folder.split('/');
    const ancestors = segments.slice(1).map((_, i) => segments.slice(0, i + 1).join('/'));
    if (!ancestors.some((ancestor) => kept.has(ancestor))) kept.add(folder);
  }
  return [...kept];
}
