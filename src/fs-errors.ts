// How file-system errors are read, in every layer.

export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/** The path is gone (or a folder on the way became a file): for a watcher, normal, not a failure. */
export function isVanished(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
