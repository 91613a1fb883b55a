// The operating system's watches behind one folder watch.
//
// On Linux each folder of the tree gets an inotify watch of its own (Node's fs.watch, one handle
// per folder), and nothing else is kept: a million files in ten thousand folders cost ten thousand
// handles, about 10 MB. A recursive watcher library keeps a record of every file of the tree
// besides (215 MB for that tree, measured), which the service does not need: every path an event
// names is examined anyway (watcher.ts). Elsewhere, Node's recursive fs.watch, which the
// operating system provides there (FSEvents, ReadDirectoryChangesW), watches the whole tree.
//
// A folder is watched before it is read, so that a subfolder made meanwhile is either listed or
// reported. A folder made later is reported by its parent's watch as a `rename`; the watcher then
// asks for it to be watched (watchNewFolder) and scans it. A watched folder that is deleted or
// moved away is told by its own watch as a `rename` of its own name: its inode is checked, and if
// the path no longer leads to it, its watches and those under it are closed (folderGone).
//
// Like the kernel's queue, this gives no word when events are lost (inotify drops events past
// fs.inotify.max_queued_events): the periodic rescan is the safety net.
import { lstatSync, opendirSync, watch, type FSWatcher } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { asError, errorCode, isVanished } from '../fs-errors.js';
import type { WatchEventKind } from './types.js';

/** One file-system event: Node's kinds, `rename` (a name appeared or went) or `change`. */
export interface WatchEvent {
  /** Absolute. */
  path: string;
  kind: WatchEventKind;
}

export interface SubscriptionHandlers {
  /** The events since the last call, in order of arrival. */
  events(events: WatchEvent[]): void;
  /** A watched folder (absolute) no longer exists at its path: deleted, or moved away. */
  folderGone(folder: string): void;
  error(error: Error): void;
}

/** Longest stretch of synchronous folder reads before other work runs (as the scanner's). */
const SYNC_SLICE_MS = 10;
/** Directory entries read from the kernel at a time (Node's default is 32). */
const DIRECTORY_BUFFER_ENTRIES = 256;

interface WatchedFolder {
  watcher: FSWatcher;
  /** Tells the folder from another one later made at the same path. */
  inode: number;
}

export class FolderSubscriptions {
  /** By absolute path. */
  private readonly folders = new Map<string, WatchedFolder>();
  private recursive: FSWatcher | undefined;
  private pending: WatchEvent[] = [];
  private deliveryScheduled = false;
  private closed = false;

  private constructor(private readonly handlers: SubscriptionHandlers) {}

  /** Watches `root` (absolute) and every folder under it; rejects with what to do about a failure. */
  static async open(root: string, handlers: SubscriptionHandlers): Promise<FolderSubscriptions> {
    const subscriptions = new FolderSubscriptions(handlers);
    try {
      if (process.platform === 'linux') {
        subscriptions.watchFolder(root);
        await subscriptions.watchTree(root);
      } else {
        subscriptions.recursive = subscriptions.watchRecursively(root);
      }
    } catch (error) {
      await subscriptions.close();
      throw new Error(`cannot watch ${root}: ${explain(asError(error))}`, { cause: error });
    }
    return subscriptions;
  }

  /** Number of folders watched (for tests). */
  get watchedFolders(): number {
    return this.recursive ? 1 : this.folders.size;
  }

  /**
   * Watches a folder that appeared under the root (absolute), and every folder in it. Resolves once
   * they are all watched: what is written in them from then on is reported.
   */
  async watchNewFolder(folder: string): Promise<void> {
    if (this.closed || this.recursive) return;
    try {
      this.watchFolder(folder);
      await this.watchTree(folder);
    } catch (error) {
      this.handlers.error(
        new Error(`cannot watch new folder ${folder}: ${explain(asError(error))}`, { cause: error }),
      );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.recursive?.close();
    for (const { watcher } of this.folders.values()) watcher.close();
    this.folders.clear();
    this.pending = [];
  }

  /**
   * Reads the folders under `top` (watched), watching each before reading it; a folder watched
   * already is not read again. Folders that vanish meanwhile are skipped; a watch that cannot be
   * added (the limit) throws.
   */
  private async watchTree(top: string): Promise<void> {
    const stack = [top];
    let sliceStartedAt = performance.now();
    for (let folder = stack.pop(); folder !== undefined && !this.closed; folder = stack.pop()) {
      if (performance.now() - sliceStartedAt >= SYNC_SLICE_MS) {
        await nextTurn();
        sliceStartedAt = performance.now();
      }
      let dir;
      try {
        dir = opendirSync(folder, { bufferSize: DIRECTORY_BUFFER_ENTRIES });
      } catch (error) {
        if (isVanished(error)) continue;
        throw error;
      }
      try {
        for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
          if (!entry.isDirectory()) continue;
          const inner = path.join(folder, entry.name);
          if (this.watchFolder(inner)) stack.push(inner);
        }
      } catch (error) {
        if (!isVanished(error)) throw error;
      } finally {
        dir.closeSync();
      }
    }
  }

  /**
   * Adds the watch of one folder. false when it needs no reading: vanished, or watched already (the
   * same folder). A different folder at a path watched before replaces the old one's watch.
   */
  private watchFolder(folder: string): boolean {
    let inode: number;
    try {
      const stats = lstatSync(folder);
      if (!stats.isDirectory()) return false;
      inode = stats.ino;
    } catch (error) {
      if (isVanished(error)) return false;
      throw error;
    }
    const previous = this.folders.get(folder);
    if (previous?.inode === inode) return false;
    previous?.watcher.close();
    let watcher: FSWatcher;
    try {
      watcher = watch(folder, { persistent: false }, (kind, name) => this.received(folder, kind, name));
    } catch (error) {
      this.folders.delete(folder);
      if (isVanished(error)) return false;
      throw error;
    }
    watcher.on('error', (error) => this.failed(folder, error));
    this.folders.set(folder, { watcher, inode });
    return true;
  }

  private watchRecursively(root: string): FSWatcher {
    const watcher = watch(root, { persistent: false, recursive: true }, (kind, name) =>
      this.received(root, kind, name),
    );
    watcher.on('error', (error) => this.failed(root, error));
    return watcher;
  }

  private received(folder: string, kind: string, name: string | Buffer | null): void {
    if (this.closed || name === null) return;
    const eventKind: WatchEventKind = kind === 'change' ? 'change' : 'rename';
    const relative = name.toString();
    this.pending.push({ path: path.join(folder, relative), kind: eventKind });
    // A folder's own deletion or move is told under its own name, as a child's would be.
    if (!this.recursive && eventKind === 'rename' && relative === path.basename(folder)) {
      void this.checkStillThere(folder);
    }
    if (!this.deliveryScheduled) {
      this.deliveryScheduled = true;
      setImmediate(() => this.deliver());
    }
  }

  /** Events arrive one by one: they are handed over together, once per turn of the event loop. */
  private deliver(): void {
    this.deliveryScheduled = false;
    if (this.closed || this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    this.handlers.events(events);
  }

  private async checkStillThere(folder: string): Promise<void> {
    const watched = this.folders.get(folder);
    if (watched === undefined) return;
    let gone: boolean;
    try {
      const stats = await lstat(folder);
      gone = !stats.isDirectory() || stats.ino !== watched.inode;
    } catch (error) {
      if (!isVanished(error)) return this.handlers.error(asError(error));
      gone = true;
    }
    if (gone && !this.closed) this.forget(folder);
  }

  /** Closes the watches of a folder that is gone and of every folder under it, and says so. */
  private forget(folder: string): void {
    const under = folder + path.sep;
    for (const [watchedPath, { watcher }] of this.folders) {
      if (watchedPath === folder || watchedPath.startsWith(under)) {
        watcher.close();
        this.folders.delete(watchedPath);
      }
    }
    this.handlers.folderGone(folder);
  }

  private failed(folder: string, error: Error): void {
    if (this.closed) return;
    if (isVanished(error) || errorCode(error) === 'EPERM') return this.forget(folder);
    this.handlers.error(new Error(`watching ${folder} failed: ${error.message}`, { cause: error }));
  }
}

/** The usual failures, with what a person can do about them. */
function explain(error: Error): string {
  const code = errorCode(error);
  if (code === 'ENOSPC' || /no space left on device/i.test(error.message)) {
    return `${error.message} (the inotify watch limit is reached: raise fs.inotify.max_user_watches)`;
  }
  if (code === 'EMFILE' || /too many open files/i.test(error.message)) {
    return `${error.message} (raise the open file limit or fs.inotify.max_user_instances)`;
  }
  return error.message;
}
