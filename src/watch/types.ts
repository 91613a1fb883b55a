import type { ObservedFile } from '../domain/model.js';

/** Decides whether a relative path ('/' separated) belongs to the request. */
export type PathFilter = (relativePath: string) => boolean;

export interface FolderWatch {
  close(): Promise<void>;
}

export interface WatchHandlers {
  /** Files that were created or changed, already stat'ed and filtered; coalesced into batches. */
  filesChanged(files: ObservedFile[]): void;
  /** The watch itself failed (folder deleted, too many watches...); the periodic rescan remains. */
  error(error: Error): void;
}
