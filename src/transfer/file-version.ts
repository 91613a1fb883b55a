// The file must stay the version the job names from the first byte read to the last: it is checked
// when it is opened and again once everything has been read.
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { FileChangedError, FileVanishedError, type FileCheckMoment, type FileVersion } from './errors.js';

export interface VersionedFile extends FileVersion {
  filePath: string;
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function checkVersion(file: VersionedFile, stats: Stats, moment: FileCheckMoment): void {
  if (!stats.isFile()) throw new FileVanishedError(file.filePath);
  if (stats.size !== file.size || stats.mtimeMs !== file.mtimeMs) {
    const expected = { size: file.size, mtimeMs: file.mtimeMs };
    throw new FileChangedError(file.filePath, expected, { size: stats.size, mtimeMs: stats.mtimeMs }, moment);
  }
}

/** Opens the file for reading, after checking it is still the expected version. */
export async function openVersion(file: VersionedFile): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(file.filePath, 'r');
  } catch (error) {
    if (isMissing(error)) throw new FileVanishedError(file.filePath, { cause: error });
    throw error;
  }
  try {
    checkVersion(file, await handle.stat(), 'before reading');
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** After the last byte was read: the path must still name the same version (not rewritten, not replaced). */
export async function assertUnchanged(file: VersionedFile): Promise<void> {
  let stats: Stats;
  try {
    stats = await stat(file.filePath);
  } catch (error) {
    if (isMissing(error)) throw new FileVanishedError(file.filePath, { cause: error });
    throw error;
  }
  checkVersion(file, stats, 'after reading');
}

/** Fills `buffer` from `position`; a file that ends early has changed since it was checked. */
export async function readExactly(
  handle: FileHandle,
  buffer: Buffer,
  position: number,
  file: VersionedFile,
): Promise<void> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) {
      throw new FileChangedError(
        file.filePath,
        { size: file.size, mtimeMs: file.mtimeMs },
        undefined,
        'while reading',
      );
    }
    filled += bytesRead;
  }
}
