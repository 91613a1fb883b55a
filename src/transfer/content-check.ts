// A file whose ctime alone changed since its last upload (chmod, chown, a new hard link) most
// likely holds the same bytes: hashing it costs one read, sending it again a read and the whole
// upload, so the hash decides. A rewrite that restored size and mtime hashes differently and is
// sent. The bytes pass through leased buffers, so MAX_BUFFER_BYTES bounds this memory too.
import { createHash } from 'node:crypto';
import { versionOf } from '../domain/file-version.js';
import { readThrough } from './content-hash.js';
import { assertUnchanged, openVersion } from './file-version.js';
import type { TransferContext } from './s3-request.js';
import type { UploadedContent, FileTransfer, UploadResult } from './types.js';

/**
 * Hashes the file, which must still have the transfer's size, mtime and inode (its ctime is what is
 * known to differ). Resolves the result of an upload that sends nothing when the content is
 * `known`'s; otherwise the transfer to upload, naming the version just read (with its ctime).
 * Throws FileChangedError or FileVanishedError as an upload does.
 */
export async function checkContent(
  context: TransferContext,
  transfer: FileTransfer,
  known: UploadedContent,
): Promise<{ unchanged: UploadResult } | { changed: FileTransfer }> {
  const handle = await openVersion({ ...transfer, ctimeMs: null });
  let version;
  const hash = createHash('sha256');
  try {
    version = { filePath: transfer.filePath, ...versionOf(await handle.stat()) };
    await readThrough(context, handle, version, transfer.signal, (chunk) => hash.update(chunk));
  } finally {
    await handle.close();
  }
  // Whatever happened while it was read shows in its ctime.
  await assertUnchanged(version);
  const sha256 = hash.digest('hex');
  const { size, mtimeMs, ino, ctimeMs } = version;
  if (sha256 !== known.sha256)
    return { changed: { ...transfer, size, mtimeMs, ino, ctimeMs, hashFirst: undefined } };
  const { etag, validation } = known;
  return {
    unchanged: {
      etag,
      validation,
      sha256,
      ...{ size, mtimeMs, ino, ctimeMs },
      method: 'unchanged',
      bytesSent: 0,
      bytesCopied: 0,
      partsReused: 0,
    },
  };
}
