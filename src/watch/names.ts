// File names that are not valid UTF-8. Linux allows any bytes but '/' and NUL in a name (an old
// Latin-1 system writes 'é' as the single byte 0xe9), while an S3 key is UTF-8: such a file, and
// every file under a folder so named, cannot get a key. Node decodes such names with U+FFFD in
// place of the bad bytes, and that string leads nowhere (its lstat says ENOENT).

/** The replacement character: a name holding it may have held bytes that are not UTF-8. */
export const REPLACEMENT_CHARACTER = '\uFFFD';

/** Files under one folder skipped because their name, or a folder's name above them, is not UTF-8. */
export interface NamesNotUtf8 {
  /** The folder holding the names, relative to the scanned one ('' for itself), '/' separated. */
  folder: string;
  /** Files matching the pattern that were skipped: those so named, and those under folders so named. */
  files: number;
  /** One such name, relative to the scanned folder, with its bad bytes written \xNN ('raw/x\xe9.csv'). */
  example: string;
}

const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The name as text, its bytes that are not UTF-8 written as \xNN, so that a person can find it. */
export function escapeNotUtf8(name: Uint8Array): string {
  let text = '';
  for (let at = 0; at < name.length;) {
    const sequence = decodedAt(name, at);
    if (sequence === undefined) {
      text += `\\x${name[at]!.toString(16).padStart(2, '0')}`;
      at += 1;
    } else {
      text += sequence.text;
      at += sequence.bytes;
    }
  }
  return text;
}

/** The character whose UTF-8 sequence starts at `at`, if one does (a sequence is 1 to 4 bytes). */
function decodedAt(bytes: Uint8Array, at: number): { text: string; bytes: number } | undefined {
  for (let length = 1; length <= 4 && at + length <= bytes.length; length += 1) {
    try {
      return { text: fatalDecoder.decode(bytes.subarray(at, at + length)), bytes: length };
    } catch {
      // not a whole character yet, or not one at all
    }
  }
  return undefined;
}
