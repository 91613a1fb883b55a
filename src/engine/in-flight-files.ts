// The files being uploaded now, by upload and path, and whether the monitor observed any of them
// meanwhile. The store cannot record a new version of a task in progress, so a write that lands
// during an upload would wait for the next rescan: a file observed while it was in flight is
// looked at once more when its upload ends. Remembering this here, rather than stat'ing every
// file after its upload, spares each small file a call to the file system.

export class InFlightFiles {
  /** By upload id, then relative path: whether the file was observed since its upload began. */
  private readonly uploads = new Map<string, Map<string, boolean>>();

  begin(uploadId: string, relativePath: string): void {
    let files = this.uploads.get(uploadId);
    if (!files) this.uploads.set(uploadId, (files = new Map()));
    files.set(relativePath, false);
  }

  /** The monitor saw these files (an event or a scan), whatever the store made of it. */
  observed(uploadId: string, relativePaths: Iterable<string>): void {
    const files = this.uploads.get(uploadId);
    if (!files) return;
    for (const relativePath of relativePaths) if (files.has(relativePath)) files.set(relativePath, true);
  }

  /** The upload of the file ended; whether it was observed since it began. */
  end(uploadId: string, relativePath: string): boolean {
    const files = this.uploads.get(uploadId);
    const observed = files?.get(relativePath) ?? false;
    files?.delete(relativePath);
    if (files?.size === 0) this.uploads.delete(uploadId);
    return observed;
  }
}
