// Writes that many callers make at once (a completed file each) share one transaction: a commit
// costs about as much for one row as for fifty, and with small files in flight the commits were
// the store's largest cost. Each caller's promise settles once the transaction holding its write
// has committed, so nothing is reported done before it is in the database, and a crash loses only
// writes no caller was told of. The writes queued while the event loop runs one turn go together.

interface Queued<I, O> {
  input: I;
  resolve: (output: O) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, O> {
  private queued: Queued<I, O>[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  /**
   * `writeAll`: the writes of a batch, in one transaction, in order. `writeOne`: one write alone,
   * in its own, when its batch failed: one bad write must not fail the others.
   */
  constructor(
    private readonly writeAll: (inputs: readonly I[]) => O[],
    private readonly writeOne: (input: I) => O,
  ) {}

  write(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queued.push({ input, resolve, reject });
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Commits what is queued now (before the database closes). */
  flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const batch = this.queued;
    this.queued = [];
    if (batch.length === 0) return;
    let outputs: O[];
    try {
      outputs = this.writeAll(batch.map((queued) => queued.input));
    } catch {
      for (const queued of batch) this.settleAlone(queued);
      return;
    }
    batch.forEach((queued, index) => queued.resolve(outputs[index]!));
  }

  private settleAlone(queued: Queued<I, O>): void {
    try {
      queued.resolve(this.writeOne(queued.input));
    } catch (error) {
      queued.reject(error);
    }
  }
}
