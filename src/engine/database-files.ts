// The service's own database files are never uploaded, whatever the pattern: a database inside a
// watched folder changes with every write (its WAL never settles), so it would be uploaded again
// and again, and a copy of it taken mid-write is of no use anyway.
import path from 'node:path';
import type { PathFilter } from '../watch/types.js';

/**
 * The paths, relative to `folder` and '/' separated, of those of `databaseFiles` that lie inside
 * it. Both are real paths: the scan and the watch never follow links, so a file they reach has
 * exactly this relative path.
 */
export function databaseFilesInside(folder: string, databaseFiles: readonly string[]): Set<string> {
  const inside = new Set<string>();
  for (const file of databaseFiles) {
    const relative = path.relative(folder, file);
    if (
      relative === '' ||
      relative === '..' ||
      relative.startsWith(`..${path.sep}`) ||
      path.isAbsolute(relative)
    )
      continue;
    inside.add(relative.split(path.sep).join('/'));
  }
  return inside;
}

/** `filter`, refusing the given relative paths too. */
export function excluding(filter: PathFilter, refused: ReadonlySet<string>): PathFilter {
  if (refused.size === 0) return filter;
  return (relativePath) => !refused.has(relativePath) && filter(relativePath);
}
