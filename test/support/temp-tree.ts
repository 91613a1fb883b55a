// Temporary folders and files of known content for tests.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const CHUNK_BYTES = 1024 * 1024;

export interface FileDigests {
  bytes: number;
  /** hex */
  md5: string;
  /** hex */
  sha256: string;
}

/** A new empty folder under the system's temp folder; remove it with removeTempDir. */
export async function makeTempDir(label: string): Promise<string> {
  const safeLabel = label.replace(/[^A-Za-z0-9._-]+/g, '-');
  return mkdtemp(path.join(tmpdir(), `${safeLabel}-`));
}

/** Removes a folder made by makeTempDir: it must be directly inside the system's temp folder. */
export async function removeTempDir(dir: string): Promise<void> {
  const relative = path.relative(tmpdir(), path.resolve(dir));
  // A guard against a bad argument turning clean-up into rm -rf of something else.
  if (
    relative === '' ||
    relative.startsWith('..') ||
    path.isAbsolute(relative) ||
    relative.includes(path.sep)
  ) {
    throw new Error(
      `refusing to remove ${dir}: not a folder made by makeTempDir (directly inside ${tmpdir()})`,
    );
  }
  await rm(dir, { recursive: true, force: true });
}

/** Writes `bytes` random bytes, 1 MiB at a time, creating parent folders; returns the file's digests. */
export async function writeRandomFile(filePath: string, bytes: number): Promise<FileDigests> {
  if (!Number.isSafeInteger(bytes) || bytes < 0)
    throw new Error(`invalid file size ${bytes} for ${filePath}`);
  await mkdir(path.dirname(filePath), { recursive: true });
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const file = await open(filePath, 'w');
  try {
    for (let written = 0; written < bytes;) {
      const chunk = randomBytes(Math.min(CHUNK_BYTES, bytes - written));
      await file.write(chunk);
      md5.update(chunk);
      sha256.update(chunk);
      written += chunk.length;
    }
  } finally {
    await file.close();
  }
  return { bytes, md5: md5.digest('hex'), sha256: sha256.digest('hex') };
}

/** Writes a file of given content, creating parent folders. */
export async function writeTreeFile(filePath: string, content: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(filePath), { recursive: true });
  await writeFile(filePath, content);
}

/** The file's md5, hex. */
export async function md5OfFile(filePath: string): Promise<string> {
  const md5 = createHash('md5');
  await pipeline(createReadStream(filePath), md5);
  return md5.digest('hex');
}
