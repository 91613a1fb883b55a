// Where a file lands in the bucket: the upload's prefix, then the file's path relative to the
// source folder, always with '/' separators and never an empty segment.

/** S3 limits object keys to 1024 bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;
/** Half of a key, so that the paths under the prefix keep room of their own. */
export const MAX_PREFIX_BYTES = 512;

const utf8 = new TextEncoder();

/** C0 (U+0000-U+001F), DEL (U+007F) and C1 (U+0080-U+009F): exactly Unicode's category Cc. */
const CONTROL_CHARACTER = /\p{Cc}/u;

/** 'a//b/', '/a/b' and 'a/b' all become 'a/b'; '' and '/' become ''. */
export function normalizePrefix(prefix: string): string {
  return prefix
    .split('/')
    .filter((segment) => segment !== '')
    .join('/');
}

/** The object key of `relativePath` ('/' separated, as the watcher reports it) under `destinationPrefix`. */
export function objectKeyFor(destinationPrefix: string, relativePath: string): string {
  const prefix = normalizePrefix(destinationPrefix);
  const path = relativePath.replace(/^\/+/, '');
  return prefix === '' ? path : `${prefix}/${path}`;
}

/**
 * Two destinations can write the same object: the same bucket, and one prefix is the other or one
 * of its folders, segment by segment ('' holds every key; 'runs' holds 'runs/42', not 'runs2').
 * Prefixes as stored, normalised by normalizePrefix().
 */
export function keySpacesOverlap(
  a: { bucket: string; prefix: string },
  b: { bucket: string; prefix: string },
): boolean {
  if (a.bucket !== b.bucket) return false;
  return isFolderOf(a.prefix, b.prefix) || isFolderOf(b.prefix, a.prefix);
}

/** `outer` is `inner` or one of its leading folders. */
function isFolderOf(outer: string, inner: string): boolean {
  return outer === '' || inner === outer || inner.startsWith(`${outer}/`);
}

/** null when the prefix is usable; otherwise what is wrong with it, for the client. '' is valid. */
export function prefixProblem(prefix: string): string | null {
  if (prefix.includes('\0')) return 'the prefix contains a NUL character';
  const control = CONTROL_CHARACTER.exec(prefix)?.[0];
  if (control !== undefined) return `the prefix contains a control character (${codePoint(control)})`;
  if (hasLoneSurrogate(prefix)) return 'the prefix is not valid Unicode (it has a lone surrogate)';
  // Written as it will be used: a prefix that needs tidying is refused rather than rewritten, so
  // that what a tool syncing the bucket back to disk reads as a path is what the client sent.
  if (prefix.includes('\\')) {
    return "the prefix contains a backslash, which some tools read as a folder separator: separate with '/'";
  }
  if (prefix.startsWith('/')) {
    return "the prefix starts with '/': object keys have no leading slash (write 'backups/2024', not '/backups/2024')";
  }
  if (prefix !== '') {
    // One trailing '/' is allowed ('backups/2024/' and 'backups/2024' mean the same).
    for (const segment of prefix.replace(/\/$/, '').split('/')) {
      if (segment === '') return "the prefix has an empty segment ('//')";
      if (segment === '.' || segment === '..') {
        return `the prefix has a '${segment}' segment, which many S3 tools resolve as a path step`;
      }
    }
  }
  const normalized = normalizePrefix(prefix);
  const bytes = utf8.encode(normalized).length;
  if (bytes > MAX_PREFIX_BYTES) {
    return `the prefix is ${bytes} bytes of UTF-8; at most ${MAX_PREFIX_BYTES} are allowed, to leave room for file paths`;
  }
  return null;
}

/** null when S3 accepts the key; otherwise why not. */
export function keyProblem(key: string): string | null {
  if (key === '') return 'the object key is empty';
  if (hasLoneSurrogate(key)) return 'the object key is not valid Unicode (it has a lone surrogate)';
  const bytes = utf8.encode(key).length;
  if (bytes > MAX_KEY_BYTES) {
    return `the object key is ${bytes} bytes of UTF-8; S3 allows at most ${MAX_KEY_BYTES}`;
  }
  return null;
}

function hasLoneSurrogate(text: string): boolean {
  // With the u flag a well-formed surrogate pair is one code point, so only lone halves match.
  return /\p{Surrogate}/u.test(text);
}

function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}
