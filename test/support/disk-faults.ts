// Disks that fail on purpose, for the database's file: one that fills up and one that turns
// read-only under a running process. Both need root and the right to mount; each maker says why
// it cannot be made here instead, so that a test can fall back or skip with that reason.
import { execFile } from 'node:child_process';
import { open, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type Unavailable = { unavailable: string };

function reasonOf(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  return (typeof stderr === 'string' && stderr.trim()) || (error as Error).message;
}

/** A folder whose disk can be made full while a process (the service) writes in it. */
export interface FillableDisk {
  dir: string;
  /** How "full" is made, for the test's report. */
  method: string;
  /** From now on, writes of `pid` that grow files in `dir` fail. */
  fill(pid: number): Promise<void>;
  /** Space is back. */
  free(pid: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A small tmpfs when mounting is allowed (filled with a filler file: writes fail with ENOSPC, as on
 * a real full disk); otherwise the process's file-size limit (RLIMIT_FSIZE, set from outside with
 * prlimit) at the size of the database's write-ahead log, so that its writes fail with EFBIG.
 */
export async function makeFillableDisk(
  dir: string,
  sizeBytes = 8 * 1024 * 1024,
): Promise<FillableDisk | Unavailable> {
  await mkdir(dir, { recursive: true });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir]);
  } catch (mountError) {
    return fileSizeLimitDisk(dir, reasonOf(mountError));
  }
  const filler = path.join(dir, 'filler');
  return {
    dir,
    method: `a ${sizeBytes / 1024 / 1024} MiB tmpfs filled up with a filler file (ENOSPC)`,
    async fill() {
      const handle = await open(filler, 'w');
      const chunk = Buffer.alloc(64 * 1024);
      try {
        for (;;) await handle.write(chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        await handle.close();
      }
    },
    async free() {
      await rm(filler, { force: true });
    },
    async close() {
      await run('umount', [dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function fileSizeLimitDisk(dir: string, mountProblem: string): Promise<FillableDisk | Unavailable> {
  try {
    await run('prlimit', ['--version']);
  } catch (error) {
    return {
      unavailable: `cannot mount a tmpfs (${mountProblem}) and prlimit is missing (${reasonOf(error)})`,
    };
  }
  return {
    dir,
    method: `RLIMIT_FSIZE set with prlimit at the size of the write-ahead log (EFBIG; mounting a tmpfs was refused: ${mountProblem})`,
    async fill(pid) {
      const wal = await stat(path.join(dir, 'state.db-wal')).catch(() => undefined);
      // The soft limit only: raising it back needs no privilege (the hard limit would).
      await run('prlimit', [`--pid=${pid}`, `--fsize=${wal?.size ?? 0}:unlimited`]);
    },
    async free(pid) {
      await run('prlimit', [`--pid=${pid}`, '--fsize=unlimited:unlimited']);
    },
    async close() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A folder on an ext4 file system that can be made read-only under the processes that use it. */
export interface BreakableDisk {
  dir: string;
  /** As a disk error does with errors=remount-ro: from now on every write fails with EROFS. */
  turnReadOnly(): Promise<void>;
  /** What an operator does once no process uses it: unmount, check (e2fsck) and mount again. */
  repair(): Promise<void>;
  close(): Promise<void>;
}

/**
 * ext4 in an image file mounted through a loop device with errors=remount-ro; the kernel's
 * trigger_fs_error knob raises a file-system error, which turns the mount read-only at once, even
 * with files open for writing (a plain `mount -o remount,ro` refuses while they are).
 */
export async function makeBreakableDisk(
  dir: string,
  sizeBytes = 16 * 1024 * 1024,
): Promise<BreakableDisk | Unavailable> {
  const image = `${dir}.img`;
  await mkdir(dir, { recursive: true });
  const mountIt = () => run('mount', ['-o', 'loop,errors=remount-ro', image, dir]);
  try {
    await writeFile(image, '');
    await run('truncate', ['-s', String(sizeBytes), image]);
    await run('mkfs.ext4', ['-q', '-F', image]);
    await mountIt();
  } catch (error) {
    await rm(image, { force: true });
    return { unavailable: `cannot mount an ext4 image through a loop device: ${reasonOf(error)}` };
  }
  const { stdout } = await run('findmnt', ['-n', '-o', 'SOURCE', dir]);
  const trigger = `/sys/fs/ext4/${path.basename(stdout.trim())}/trigger_fs_error`;
  const close = async (): Promise<void> => {
    await run('umount', [dir]).catch(() => undefined);
    await rm(image, { force: true });
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await stat(trigger);
  } catch {
    await close();
    return { unavailable: `the kernel has no ${trigger} to raise a file-system error` };
  }
  return {
    dir,
    async turnReadOnly() {
      await writeFile(trigger, 'a disk error raised by a test');
    },
    async repair() {
      await run('umount', [dir]);
      // e2fsck exits 1 when it fixed something: that is the point.
      await run('e2fsck', ['-fy', image]).catch((error: { code?: number }) => {
        if (error.code !== 1) throw error;
      });
      await mountIt();
    },
    close,
  };
}
