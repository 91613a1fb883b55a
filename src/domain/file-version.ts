// Telling file versions apart (see FileVersion): the one comparison the watcher's observations,
// the store, the uploader's checks and verify all make.
import type { FileVersion } from './model.js';

/** The fields of a stat result that make a version (inode numbers above 2^53 are rounded, alike every time). */
export function versionOf(stats: Pick<FileVersion, 'size' | 'mtimeMs'> & { ino: number; ctimeMs: number }): {
  size: number;
  mtimeMs: number;
  ino: number;
  ctimeMs: number;
} {
  return { size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, ctimeMs: stats.ctimeMs };
}

/** Whether `found` is the version `recorded` names; a field recorded as null matches any value. */
export function sameVersion(recorded: FileVersion, found: FileVersion): boolean {
  return (
    recorded.size === found.size &&
    recorded.mtimeMs === found.mtimeMs &&
    sameOrUnknown(recorded.ino, found.ino) &&
    sameOrUnknown(recorded.ctimeMs, found.ctimeMs)
  );
}

function sameOrUnknown(recorded: number | null, found: number | null): boolean {
  return recorded === null || found === null || recorded === found;
}
