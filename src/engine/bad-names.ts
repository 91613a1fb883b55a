// Names that are not valid UTF-8 in a watched folder: their files are skipped (an S3 key is UTF-8),
// and a person is told, in the log and on the upload. One log line per folder that holds such
// names, at warn when it is news and at debug when a rescan finds the same again, so that an idle
// service does not repeat itself every minute; one note on the upload, rewritten only when it
// changes.
import type { Logger } from '../logger.js';
import type { NamesNotUtf8 } from '../watch/names.js';

/** Folders remembered (with their count) for the log, and for the watcher's reports; then forgotten. */
const MAX_REMEMBERED_FOLDERS = 10_000;

export class BadNames {
  /** Folder → files skipped, as the last complete scan found them. */
  private logged = new Map<string, number>();
  private scanning = new Map<string, number>();
  private scanFiles = 0;
  private scanExample = '';
  /** Folders the watcher told of that a rescan was started for: one rescan each is enough. */
  private readonly rescannedFor = new Set<string>();
  /** The note last written on the upload; null when none is there. */
  private noted: string | null = null;

  /** `lastError`: the upload's, which may be the note of an earlier run. */
  constructor(
    private readonly log: Logger,
    lastError: string | null,
  ) {
    if (lastError !== null && NOTE_ENDINGS.some((ending) => lastError.endsWith(ending)))
      this.noted = lastError;
  }

  scanStarted(): void {
    this.scanning = new Map();
    this.scanFiles = 0;
    this.scanExample = '';
  }

  /** A scan found such names in a folder. */
  found(names: NamesNotUtf8): void {
    const { folder, files, example } = names;
    const news = this.logged.get(folder) !== files;
    this.log[news ? 'warn' : 'debug'](
      { folder, files, example },
      'names that are not valid UTF-8 were skipped: S3 keys must be UTF-8; rename them',
    );
    this.scanFiles += files;
    if (this.scanExample === '') this.scanExample = example;
    if (this.scanning.size < MAX_REMEMBERED_FOLDERS) this.scanning.set(folder, files);
  }

  /** Files the scan running now skipped so far. */
  get files(): number {
    return this.scanFiles;
  }

  /**
   * A scan went through the whole folder: returns the note the upload should show now, with the
   * one it shows (null for none); equal when nothing is to be written.
   */
  scanFinished(): { note: string | null; noted: string | null } {
    this.logged = this.scanning;
    this.scanning = new Map();
    const note = this.scanFiles === 0 ? null : noteFor(this.scanFiles, this.logged.size, this.scanExample);
    return { note, noted: this.noted };
  }

  /** The note was written (or cleared) on the upload. */
  wrote(note: string | null): void {
    this.noted = note;
  }

  /** The watcher saw such a name in `folder`: whether a rescan should count it. */
  worthRescanning(folder: string): boolean {
    if (this.logged.has(folder) || this.rescannedFor.has(folder)) return false;
    if (this.rescannedFor.size >= MAX_REMEMBERED_FOLDERS) this.rescannedFor.clear();
    this.rescannedFor.add(folder);
    return true;
  }
}

const NOTE_ENDINGS = ['rename it to upload it', 'rename them to upload them'].map(
  (advice) => `: S3 keys must be UTF-8; ${advice}`,
);

function noteFor(files: number, folders: number, example: string): string {
  if (files === 1) {
    return (
      `1 file was skipped because its name, or a folder's name above it, is not valid UTF-8 ` +
      `('${example}')${NOTE_ENDINGS[0]}`
    );
  }
  const where = folders === 1 ? '' : ` in ${folders} folders`;
  return (
    `${files} files were skipped${where} because their names, or folders' names above them, are not ` +
    `valid UTF-8 (e.g. '${example}')${NOTE_ENDINGS[1]}`
  );
}
