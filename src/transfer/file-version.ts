// The file must stay the version the transfer names from the first byte read to the last: it is checked
// when it is opened and again once everything has been read. Symbolic links are never followed, so
// that a link swapped in for a file, or for a folder on its path, cannot make the service read
// something outside the source folder: such a path counts as vanished.
import { constants, readlinkSync, type Stats } from 'node:fs';
import { lstat, open, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { sameVersion, versionOf } from '../domain/file-version.js';
import { errorCode, isVanished } from '../fs-errors.js';
import { FileChangedError, FileVanishedError, type FileCheckMoment, type FileVersion } from './errors.js';

export interface VersionedFile extends FileVersion {
  filePath: string;
}

function isMissing(error: unknown): boolean {
  // ELOOP: O_NOFOLLOW met a symbolic link where the file was.
  return isVanished(error) || errorCode(error) === 'ELOOP';
}

/**
 * The opened file must be the one at this very path, reached through real folders only. On Linux
 * the kernel says which file a descriptor holds (/proc/self/fd), which leaves no window for a
 * folder swapped for a link around the open; elsewhere the folders' real path is compared.
 */
async function assertOpenedWithoutLinks(handle: FileHandle, filePath: string): Promise<void> {
  let opened: string;
  try {
    // Synchronous: /proc answers from the kernel's memory, never from the file's storage, so this
    // cannot block; a round trip to the I/O thread pool would cost more than the call itself.
    opened = readlinkSync(`/proc/self/fd/${handle.fd}`);
  } catch {
    opened = path.join(await realpath(path.dirname(filePath)), path.basename(filePath));
  }
  if (opened !== filePath) {
    throw new FileVanishedError(filePath, {
      cause: new Error(
        `${filePath} is reached through a symbolic link (to ${opened}), which is not followed`,
      ),
    });
  }
}

function checkVersion(file: VersionedFile, stats: Stats, moment: FileCheckMoment): void {
  if (!stats.isFile()) throw new FileVanishedError(file.filePath);
  // A rewrite that restored size and mtime, or another file moved to the path, shows in ctime or inode.
  const found = versionOf(stats);
  if (!sameVersion(file, found)) {
    throw new FileChangedError(file.filePath, versionOfFile(file), found, moment);
  }
}

/** Opens the file at this very path for reading, never through a symbolic link (it may be no regular file). */
async function openWithoutLinks(filePath: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO swapped in for the file would block the open until a writer came, holding
    // a thread of the I/O pool for ever; it opens at once and is refused as not a file. Regular
    // files ignore the flag.
    handle = await open(filePath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (isMissing(error)) throw new FileVanishedError(filePath, { cause: error });
    throw error;
  }
  try {
    await assertOpenedWithoutLinks(handle, filePath);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Opens the regular file at this very path for reading, never through a symbolic link; `check`
 * sees its stats before the handle is returned (and the handle is closed if it throws).
 */
export async function openRegularFile(
  filePath: string,
  check: (stats: Stats) => void = () => undefined,
): Promise<FileHandle> {
  const handle = await openWithoutLinks(filePath);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new FileVanishedError(filePath);
    check(stats);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Opens the file for reading, after checking it is still the expected version. */
export async function openVersion(file: VersionedFile): Promise<FileHandle> {
  return openRegularFile(file.filePath, (stats) => checkVersion(file, stats, 'before reading'));
}

/**
 * Fills `buffer` with the whole of a file (its version's size), for a file read in one go (a small
 * one). Its version is checked once, on the descriptor after the read, rather than before and after
 * at its path: a version that still holds after the last byte was read held during the read (a
 * write moves the mtime and ctime). A file replaced at its path meanwhile was read whole as the
 * version asked for; the new one is a change to upload next. Four calls to the file system.
 */
export async function readWholeVersion(file: VersionedFile, buffer: Buffer): Promise<void> {
  const handle = await openWithoutLinks(file.filePath);
  try {
    let failure: unknown;
    try {
      await readExactly(handle, buffer, 0, file);
    } catch (error) {
      failure = error;
    }
    const stats = await handle.stat();
    // A folder, a FIFO or a device swapped in for the file fails its read or reads wrong: it is gone.
    if (!stats.isFile()) throw new FileVanishedError(file.filePath);
    if (failure !== undefined) throw failure;
    checkVersion(file, stats, 'after reading');
  } finally {
    await handle.close();
  }
}

/** The path's current stats (not following a link), or FileVanishedError. */
export async function statPath(filePath: string): Promise<Stats> {
  try {
    return await lstat(filePath);
  } catch (error) {
    if (isMissing(error)) throw new FileVanishedError(filePath, { cause: error });
    throw error;
  }
}

/** After the last byte was read: the path must still name the same version (not rewritten, not replaced). */
export async function assertUnchanged(
  file: VersionedFile,
  moment: FileCheckMoment = 'after reading',
): Promise<void> {
  checkVersion(file, await statPath(file.filePath), moment);
}

/** Fills `buffer` from `position` as far as the file goes; returns how many bytes were read. */
export async function readUpTo(handle: FileHandle, buffer: Uint8Array, position: number): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/** Fills `buffer` from `position`; a file that ends early has changed since it was checked. */
export async function readExactly(
  handle: FileHandle,
  buffer: Buffer,
  position: number,
  file: VersionedFile,
): Promise<void> {
  if ((await readUpTo(handle, buffer, position)) < buffer.length) {
    throw new FileChangedError(file.filePath, versionOfFile(file), undefined, 'while reading');
  }
}

function versionOfFile(file: VersionedFile): FileVersion {
  return { size: file.size, mtimeMs: file.mtimeMs, ino: file.ino, ctimeMs: file.ctimeMs };
}
