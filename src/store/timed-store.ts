// How long each call to the database takes, for the metrics: a wrapper around any Store, so that
// no implementation knows about metrics and every method, a new one too, is timed the same way.
import { performance } from 'node:perf_hooks';
import type { Store } from './store.js';

/** A Store method's name: the operation a call is timed under. */
export type StoreOperation = {
  [K in keyof Store]: Store[K] extends (...args: never[]) => unknown ? K : never;
}[keyof Store];

/** Told the time each call took, until its promise settled (rejected too), in seconds. */
export interface StoreTimer {
  timed(operation: StoreOperation, seconds: number): void;
}

/** `store`, with every method call timed and told to `timer`. */
export function timedStore(store: Store, timer: StoreTimer): Store {
  // One wrapper per method, made at its first call: no closure is built per call.
  const wrappers = new Map<string, (...args: unknown[]) => unknown>();
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      let wrapper = wrappers.get(property);
      if (wrapper === undefined) {
        const method = value as (...args: unknown[]) => unknown;
        const operation = property as StoreOperation;
        wrapper = (...args: unknown[]) => {
          const startedAt = performance.now();
          const done = () => timer.timed(operation, (performance.now() - startedAt) / 1000);
          const result = method.apply(target, args);
          if (result instanceof Promise) result.then(done, done);
          else done();
          return result;
        };
        wrappers.set(property, wrapper);
      }
      return wrapper;
    },
  });
}
