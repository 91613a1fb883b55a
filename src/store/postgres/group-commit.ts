// Writes that many callers make at once (a completed file each) share one transaction, as in
// SQLite's group commit (../sqlite/group-commit.ts), here with a round trip per statement: a
// commit costs about as much for one row as for fifty. One batch is written at a time; the writes
// queued meanwhile go together in the next one. Each caller's promise settles once the
// transaction holding its write has committed, so nothing is reported done before it is in the
// database.

interface Queued<I, O> {
  input: I;
  resolve: (output: O) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, O> {
  private queued: Queued<I, O>[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  /** The batch being written, if any. */
  private writing: Promise<void> | undefined;

  /**
   * `writeAll`: the writes of a batch, in one transaction, in order. `writeOne`: one write alone,
   * in its own, when its batch failed: one bad write must not fail the others.
   */
  constructor(
    private readonly writeAll: (inputs: readonly I[]) => Promise<O[]>,
    private readonly writeOne: (input: I) => Promise<O>,
  ) {}

  write(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queued.push({ input, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once every write queued so far has settled (before the pool closes). */
  async flush(): Promise<void> {
    while (this.writing !== undefined || this.queued.length > 0) {
      if (this.writing === undefined) this.start();
      await this.writing;
    }
  }

  /** The writes queued while the event loop runs one turn go together. */
  private schedule(): void {
    if (this.writing !== undefined) return; // the next batch starts when this one ends
    this.scheduled ??= setImmediate(() => this.start());
  }

  private start(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const batch = this.queued;
    this.queued = [];
    this.writing = this.writeBatch(batch).finally(() => {
      this.writing = undefined;
      if (this.queued.length > 0) this.schedule();
    });
  }

  private async writeBatch(batch: readonly Queued<I, O>[]): Promise<void> {
    if (batch.length === 0) return;
    let outputs: O[];
    try {
      outputs = await this.writeAll(batch.map((queued) => queued.input));
    } catch {
      for (const queued of batch) await this.settleAlone(queued);
      return;
    }
    batch.forEach((queued, index) => queued.resolve(outputs[index]!));
  }

  private async settleAlone(queued: Queued<I, O>): Promise<void> {
    try {
      queued.resolve(await this.writeOne(queued.input));
    } catch (error) {
      queued.reject(error);
    }
  }
}
