// One running instance per database path. SQLite's exclusive lock is taken on the open file (its
// inode): once the file is deleted under a running instance, a second one started on the same path
// creates a new file and takes that one's lock, and both run. This lock is held on the path instead.
import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { DatabaseInUseError } from '../store.js';

export interface PathLock {
  release(): Promise<void>;
}

/**
 * Holds the path of the database for this process, or throws DatabaseInUseError when another
 * process holds it. Creates the database's folder (so that its real path can be named).
 *
 * On Linux: a unix socket bound in the abstract namespace under a name made from the file's real
 * path. No file is left behind and no stale lock can outlive its process: the kernel frees the
 * name when the process ends, even by SIGKILL, and no file-system change can take it away while
 * the process runs. (A lock file would be deleted along with the database, and a PID file can be
 * stale.) The namespace belongs to the network namespace, so two containers that share the
 * database's folder but not their network are kept apart by SQLite's lock alone, as before.
 * Elsewhere (macOS has no abstract namespace) the SQLite lock is the only one.
 */
export async function lockDatabasePath(filePath: string): Promise<PathLock> {
  if (process.platform !== 'linux') return { release: async () => undefined };
  const folder = path.dirname(filePath);
  mkdirSync(folder, { recursive: true });
  const realFile = path.join(realpathSync(folder), path.basename(filePath));
  const name = `\0s3-folder-uploader:${createHash('sha256').update(realFile).digest('hex')}`;
  // Anyone may connect to the name; no one has anything to say to us.
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(name, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new DatabaseInUseError(filePath);
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot lock the database ${filePath} for this process: ${reason}`, { cause: error });
  });
  // The lock must not keep the process alive on its own.
  server.unref();
  return { release: () => close(server) };
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
