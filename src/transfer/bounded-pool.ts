// N workers pulling from one shared iterator: at most N items are in progress, and the next item is
// only taken when a worker is free (natural backpressure, no queue). An async iterator (a generator
// that waits for its items, a file that grows) is pulled the same way.

/**
 * Runs `work` on every item with at most `concurrency` at once. On the first failure (of `work`, or
 * of the iterator itself) no new item is started, every item in progress is left to settle, and
 * then the first error is rethrown. `work` receives the index of its worker, so that a worker can
 * own a reusable resource (a buffer).
 */
export async function runBounded<T>(
  items: Iterable<T> | AsyncIterable<T>,
  concurrency: number,
  work: (item: T, worker: number) => Promise<void>,
): Promise<void> {
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;

  const worker = async (index: number): Promise<void> => {
    while (!failure) {
      try {
        const next = await iterator.next();
        if (next.done) return;
        await work(next.value, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };

  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, (_, index) => worker(index)));
  if (failure) throw failure.error;
}
