import type { ObservedFile } from '../domain/model.js';

/** Decides whether a relative path ('/' separated) belongs to the upload. */
export type PathFilter = (relativePath: string) => boolean;

export interface FolderWatch {
  close(): Promise<void>;
}

export interface WatchHandlers {
  /** Files that were created or changed, already stat'ed and filtered; coalesced into batches. */
  filesChanged(files: ObservedFile[]): void;
  /**
   * A name that is not valid UTF-8 was seen under this folder (relative, '' for the root): its
   * file cannot be uploaded, nor those under it if it is a folder's. A scan counts them.
   */
  namesNotUtf8?(folder: string): void;
  /** The watch itself failed (folder deleted, too many watches...); the periodic rescan remains. */
  error(error: Error): void;
}

/** The kinds of file-system event a watch receives (Node's): a name appeared or went; content or attributes changed. */
export type WatchEventKind = 'rename' | 'change';

/** Told how many file-system events a watch received, once per batch the operating system delivers. */
export interface WatchObserver {
  eventsReceived(kind: WatchEventKind, count: number): void;
}
