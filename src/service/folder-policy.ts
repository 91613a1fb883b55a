// Which source folders an upload may name: an absolute path to a folder the service can read,
// inside ALLOWED_SOURCE_ROOTS when they are set, with links and '..' resolved first.
import { constants as fsConstants } from 'node:fs';
import { access, opendir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { DomainError, invalidSourceFolder, sourceFolderNotAllowed } from '../domain/errors.js';
import { isUnderRoots } from '../domain/instance.js';
import { errorCode } from '../fs-errors.js';

/**
 * The real path of a folder the service can list, without a trailing slash. Checked with both
 * access(R_OK | X_OK) and an actual opendir: the first explains a refusal clearly, the second
 * catches what access() misses (ACLs, some network file systems). A process running as root
 * passes both whatever the mode bits say, as the kernel lets it.
 *
 * With allowed roots, the real path must be inside one of them, so that neither '..' nor a link
 * leads out. A path outside them is refused before anything else is said about it: whether it
 * exists or can be read is not for the client to learn.
 */
export async function readableFolder(
  folder: string,
  allowedRoots: readonly string[] | undefined,
): Promise<string> {
  if (folder === '') throw invalidSourceFolder(folder, 'is empty: give the absolute path of a folder');
  if (!path.isAbsolute(folder)) {
    throw invalidSourceFolder(folder, 'is a relative path: give an absolute path, such as /data/incoming');
  }
  const assertAllowed = (candidate: string): void => {
    if (allowedRoots && !isUnderRoots(candidate, allowedRoots)) {
      throw sourceFolderNotAllowed(folder, allowedRoots);
    }
  };
  let real: string;
  try {
    real = await realpath(folder).catch(async (error: unknown) => {
      if (allowedRoots) assertAllowed(await resolvedAsFarAsPossible(folder));
      throw error;
    });
    assertAllowed(real);
    const stats = await stat(real);
    if (!stats.isDirectory()) {
      throw invalidSourceFolder(folder, stats.isFile() ? 'is a file, not a folder' : 'is not a folder');
    }
    await access(real, fsConstants.R_OK | fsConstants.X_OK);
    const dir = await opendir(real);
    await dir.close();
  } catch (error) {
    throw folderError(folder, error);
  }
  return real.length > 1 ? real.replace(/\/+$/, '') : real;
}

/**
 * Where a path that cannot be resolved would be: resolved step by step as the kernel would (a
 * link, then a '..' from where it leads), up to the first step that does not exist; the rest as
 * written. So a link inside a root that leads out is followed even when the folder at its end is
 * missing, and the answer never tells whether something outside the roots exists.
 */
async function resolvedAsFarAsPossible(folder: string): Promise<string> {
  const steps = folder.split('/').filter((step) => step !== '' && step !== '.');
  let current = '/';
  for (const [index, step] of steps.entries()) {
    const next = step === '..' ? path.dirname(current) : path.join(current, step);
    try {
      current = await realpath(next);
    } catch {
      return path.resolve(next, ...steps.slice(index + 1));
    }
  }
  return current;
}

function folderError(folder: string, error: unknown): unknown {
  const code = errorCode(error);
  if (error instanceof DomainError || code === undefined) return error;
  switch (code) {
    case 'ENOENT':
      return invalidSourceFolder(folder, 'does not exist');
    case 'ENOTDIR':
      return invalidSourceFolder(folder, 'does not exist: a part of the path is a file');
    case 'EACCES':
    case 'EPERM':
      return invalidSourceFolder(folder, 'cannot be read: permission denied');
    case 'ELOOP':
      return invalidSourceFolder(folder, 'cannot be resolved: too many levels of symbolic links');
    case 'ENAMETOOLONG':
      return invalidSourceFolder(folder, 'is too long a path');
    default:
      return invalidSourceFolder(folder, `cannot be read (${code})`);
  }
}
