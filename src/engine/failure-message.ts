// What a failed upload's task says: S3's errors are described by the transfer layer; errors of the
// local file system (a file that cannot be read) are named here, in words, with the path.
import type { FailureKind } from '../domain/status.js';
import { DatabaseUnavailableError } from '../domain/errors.js';
import { ExistingObjectUnknownError } from './existing-objects.js';
import { classifyS3Error, describeS3Error, isS3ConfigurationError } from '../transfer/errors.js';

const LOCAL_REASONS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'an input/output error (the disk or file system failed)',
  EISDIR: 'it is a folder',
  EMFILE: 'too many open files in the service',
  ENFILE: 'too many open files on the system',
};

/** Local errors that pass with time: the service or the system ran out of file descriptors. */
const TRANSIENT_LOCAL_CODES = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY']);

/** The calls that read a file; network errors carry a syscall too (connect, read on a socket has none). */
const FILE_SYSCALLS = new Set(['open', 'read', 'fstat', 'stat', 'lstat', 'readlink', 'realpath', 'close']);

/** A local file-system error: Node sets `syscall` (and usually `path`) on those. */
function isLocalFileError(error: unknown): error is NodeJS.ErrnoException {
  const { code, syscall } = error as Partial<NodeJS.ErrnoException>;
  return error instanceof Error && typeof code === 'string' && FILE_SYSCALLS.has(syscall ?? '');
}

/** The text of a failed task's last_error: what failed, on which file, and why. */
export function describeUploadFailure(error: unknown, filePath: string): string {
  if (!isLocalFileError(error)) return describeS3Error(error);
  const code = error.code ?? 'unknown';
  const reason = LOCAL_REASONS[code] ?? error.message;
  return `cannot read the local file ${error.path ?? filePath}: ${reason} (${code})`;
}

/** Whether the failure may heal by itself, needs the setup fixed, or needs the file to change. */
export function failureKindOf(error: unknown): FailureKind {
  if (error instanceof ExistingObjectUnknownError) return 'configuration';
  // The database went away during the upload (a server restarting): it heals by itself.
  if (error instanceof DatabaseUnavailableError) return 'transient';
  if (isLocalFileError(error)) return TRANSIENT_LOCAL_CODES.has(error.code ?? '') ? 'transient' : 'permanent';
  if (isS3ConfigurationError(error)) return 'configuration';
  return classifyS3Error(error) === 'transient' ? 'transient' : 'permanent';
}
