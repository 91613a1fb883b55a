// Which files on disk make up a SQLite database, so that the service never uploads its own.
import { realpath } from 'node:fs/promises';
import path from 'node:path';

/** What SQLite writes beside the database file, named after it. */
const COMPANION_SUFFIXES = ['-wal', '-shm', '-journal'];

/**
 * The database file and its companions, by real path (the file, or its folder, may be reached
 * through a symbolic link; SQLite puts the companions beside the file the link leads to). A
 * companion need not exist yet.
 */
export async function sqliteFilesOf(databaseFile: string): Promise<string[]> {
  const absolute = path.resolve(databaseFile);
  const real = await realpath(absolute).catch(async () => {
    // Not created (yet): its folder may still be a link.
    const folder = await realpath(path.dirname(absolute)).catch(() => path.dirname(absolute));
    return path.join(folder, path.basename(absolute));
  });
  return [real, ...COMPANION_SUFFIXES.map((suffix) => `${real}${suffix}`)];
}
