// The @parcel/watcher subscriptions behind one folder watch.
//
// On Linux, @parcel/watcher adds an inotify watch to a new folder only after it sees the folder's
// creation, and only to that folder: folders made inside it before then (`mkdir -p a/b/c`, a tree
// moved or extracted in) are never watched, and later writes in them are never reported
// (parcel-bundler/watcher#97). So a new folder that already holds subfolders gets a subscription
// of its own, which watches its whole tree; it is dropped when that folder is deleted or moved
// (one under a folder that moves away stays until the watch closes: their number is capped).
import { lstat } from 'node:fs/promises';
import watcher from '@parcel/watcher';
import type { AsyncSubscription, Event } from '@parcel/watcher';
import { asError } from '../fs-errors.js';

/** More separate subtree subscriptions than this and new nested folders are left to the rescan. */
export const MAX_SUBTREE_SUBSCRIPTIONS = 256;

export interface SubscriptionHandlers {
  events(events: Event[]): void;
  error(error: Error): void;
}

// inotify on Linux even where Watchman is installed: no daemon to depend on, same behaviour everywhere.
const OPTIONS: watcher.Options = process.platform === 'linux' ? { backend: 'inotify' } : {};

export class FolderSubscriptions {
  private readonly subtrees = new Map<string, AsyncSubscription>();
  private root: AsyncSubscription | undefined;
  private closed = false;

  private constructor(private readonly handlers: SubscriptionHandlers) {}

  /** Subscribes to `root` recursively; rejects with a message that says what to do about it. */
  static async open(root: string, handlers: SubscriptionHandlers): Promise<FolderSubscriptions> {
    const subscriptions = new FolderSubscriptions(handlers);
    try {
      subscriptions.root = await watcher.subscribe(
        root,
        (error, events) => subscriptions.deliver(error, events),
        OPTIONS,
      );
    } catch (error) {
      throw new Error(`cannot watch ${root}: ${explain(asError(error))}`, { cause: error });
    }
    return subscriptions;
  }

  /**
   * Watches the tree under `folder` (absolute) with a subscription of its own.
   * false when the limit is reached: the caller reports that changes may be missed.
   */
  async addSubtree(folder: string): Promise<boolean> {
    if (this.closed) return true;
    const previous = this.subtrees.get(folder);
    if (previous === undefined && this.subtrees.size >= MAX_SUBTREE_SUBSCRIPTIONS) return false;
    // A folder of the same name seen again is a new folder: its old subscription watches nothing useful.
    if (previous !== undefined) {
      this.subtrees.delete(folder);
      await previous.unsubscribe().catch(() => undefined);
    }
    try {
      const subscription = await watcher.subscribe(
        folder,
        (error, events) => this.deliver(error, events),
        OPTIONS,
      );
      if (this.closed) await subscription.unsubscribe();
      else this.subtrees.set(folder, subscription);
    } catch (error) {
      // Gone again already: nothing to watch. Anything else is worth knowing (e.g. the watch limit).
      if (!(await exists(folder))) return true;
      this.handlers.error(
        new Error(`cannot watch new folder ${folder}: ${explain(asError(error))}`, { cause: error }),
      );
    }
    return true;
  }

  /** A deleted or moved path: if a subtree subscription was rooted there, it is released. */
  forget(folder: string): void {
    const subscription = this.subtrees.get(folder);
    if (subscription === undefined) return;
    this.subtrees.delete(folder);
    subscription.unsubscribe().catch((error: unknown) => this.handlers.error(asError(error)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [...(this.root ? [this.root] : []), ...this.subtrees.values()];
    this.subtrees.clear();
    const results = await Promise.allSettled(all.map((subscription) => subscription.unsubscribe()));
    const failure = results.find((result) => result.status === 'rejected');
    if (failure)
      throw new Error(`cannot stop watching: ${asError(failure.reason).message}`, { cause: failure.reason });
  }

  private deliver(error: Error | null, events: Event[]): void {
    if (this.closed) return;
    if (error) this.handlers.error(error);
    if (events.length > 0) this.handlers.events(events);
  }
}

/** @parcel/watcher passes on strerror() text; add what a person can do about the usual ones. */
function explain(error: Error): string {
  if (/no space left on device/i.test(error.message)) {
    return `${error.message} (the inotify watch limit is reached: raise fs.inotify.max_user_watches)`;
  }
  if (/too many open files/i.test(error.message)) {
    return `${error.message} (raise the open file limit or fs.inotify.max_user_instances)`;
  }
  return error.message;
}

function exists(folder: string): Promise<boolean> {
  return lstat(folder).then(
    () => true,
    () => false,
  );
}
