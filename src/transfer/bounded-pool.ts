// N workers pulling from one shared iterator: at most N items are in progress, and the next item is
// only taken when a worker is free (natural backpressure, no queue).

/**
 * Runs `work` on every item with at most `concurrency` at once. On the first failure no new item is
 * started, every item in progress is left to settle, and then the first error is rethrown.
 * `work` receives the index of its worker, so that a worker can own a reusable resource (a buffer).
 */
export async function runBounded<T>(
  items: Iterable<T>,
  concurrency: number,
  work: (item: T, worker: number) => Promise<void>,
): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;

  const worker = async (index: number): Promise<void> => {
    while (!failure) {
      const next = iterator.next();
      if (next.done) return;
      try {
        await work(next.value, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };

  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, (_, index) => worker(index)));
  if (failure) throw failure.error;
}
