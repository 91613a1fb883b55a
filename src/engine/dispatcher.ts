import type { FileTask } from '../domain/model.js';
import type { Logger } from '../logger.js';
import type { ClaimBudget, Store } from '../store/store.js';

/**
 * How often the dispatcher looks at the queue when nothing wakes it (requeued failures, missed
 * wake-ups), unless told otherwise (DispatcherOptions.pollMs); and how often, at most, it requeues
 * the failures whose time has come.
 */
export const IDLE_POLL_MS = 1000;

/**
 * While files are in flight, a claim waits for this share of the slots to be free: claiming eight
 * tasks costs little more than claiming one, and small files finish by the hundred a second.
 */
const CLAIM_SHARE = 1 / 8;

export interface DispatcherOptions {
  store: Store;
  maxConcurrentFiles: number;
  /**
   * The memory for file data that the tasks in flight may hold, and what one of a given size
   * holds (MAX_BUFFER_BYTES; a part per part in flight for a multipart file): many small files run
   * at once, few large ones. None: only maxConcurrentFiles bounds the claims.
   */
  memory?: ClaimBudget;
  /**
   * The folders this instance can read (ALLOWED_SOURCE_ROOTS): only tasks of uploads under them
   * are claimed. Null or undefined: any.
   */
  sourceRoots?: readonly string[] | null;
  /** Runs one claimed task to its end; must not throw (the runner records every outcome itself). */
  runTask: (task: FileTask) => Promise<void>;
  logger: Logger;
  /** False while no new work may start (S3 cannot be reached); a wake() follows when it may again. */
  mayClaim?: () => boolean;
  /**
   * How long to sleep when nothing wakes it, read before each sleep: longer while another
   * instance's changes wake it (on PostgreSQL, while notifications are heard). Default IDLE_POLL_MS.
   */
  pollMs?: () => number;
  now?: () => number;
}

/**
 * Claims ready tasks from the store, up to the concurrency bound, and runs them. It holds nothing
 * but the set of running tasks: the queue itself is the database.
 */
export class Dispatcher {
  private readonly running = new Map<number, Promise<void>>();
  /** The memory the running tasks hold, as the memory budget weighs them. */
  private runningBytes = 0;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private wakeRequested = false;
  private readonly now: () => number;
  /** The message of the failure that stops claims, while it lasts: logged once, not at every pass. */
  private failing: string | undefined;
  /** When the due failures were last requeued. */
  private requeuedAt = -Infinity;

  constructor(private readonly options: DispatcherOptions) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Something changed in the queue (new tasks, a requeue, a finished task): look again now. */
  wake(): void {
    this.wakeRequested = true;
    this.wakeUp?.();
  }

  get runningTaskIds(): number[] {
    return [...this.running.keys()];
  }

  /** Stops claiming; resolves once the loop has ended. Running tasks are left to their owners. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
  }

  /** Resolves when every running task has ended. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  private pollMs(): number {
    return this.options.pollMs?.() ?? IDLE_POLL_MS;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.wakeRequested = false;
      let delayMs = IDLE_POLL_MS;
      try {
        delayMs = await this.dispatchOnce();
        if (this.failing !== undefined) {
          this.failing = undefined;
          this.options.logger.info('dispatcher: claiming tasks again');
        }
      } catch (error) {
        // A failing database must not kill the loop: log, wait, try again. One line per failure
        // while it lasts (a lost database file fails every pass until a restart).
        const message = error instanceof Error ? error.message : String(error);
        if (message !== this.failing) {
          this.failing = message;
          this.options.logger.error(
            { err: error },
            'dispatcher: could not claim tasks; retrying every second, logged again only if the error changes',
          );
        }
      }
      if (this.stopped || this.wakeRequested) continue;
      await this.sleep(delayMs);
    }
  }

  /** One pass: requeue due failures, claim what fits, and say how long to sleep before the next pass. */
  private async dispatchOnce(): Promise<number> {
    const { store, maxConcurrentFiles, sourceRoots } = this.options;
    const now = this.now();
    const poll = this.pollMs();
    // Once a second is soon enough for requeue times of seconds or more, and keeps this query off
    // the pass that each finished file triggers.
    if (now - this.requeuedAt >= IDLE_POLL_MS) {
      this.requeuedAt = now;
      const requeued = await store.requeueDueFailedTasks(now);
      if (requeued > 0)
        this.options.logger.info({ requeued }, 'failed tasks requeued after the requeue interval');
    }
    if (this.options.mayClaim?.() === false) return poll;
    const free = maxConcurrentFiles - this.running.size;
    const memory = this.options.memory;
    const freeBytes = memory ? memory.bytes - this.runningBytes : Infinity;
    const fewFree = this.running.size > 0 && free < Math.floor(maxConcurrentFiles * CLAIM_SHARE);
    if (fewFree) return poll; // a finishing task wakes us
    if (free > 0 && freeBytes > 0) {
      const budget = memory && { bytes: freeBytes, bytesOf: memory.bytesOf };
      const claimed = await store.claimReadyTasks(now, free, { budget, sourceRoots });
      for (const task of claimed) this.launch(task);
      if (claimed.length === free) return 0; // there may be more ready: look again once a slot frees up
    }
    if (this.running.size >= maxConcurrentFiles || this.runningBytes >= (memory?.bytes ?? Infinity))
      return poll; // a finishing task wakes us
    const next = await store.nextReadyAt(sourceRoots);
    if (next === null) return poll;
    // Ready, yet not claimed: the memory budget left it for a finishing task to make room (and wake us).
    if (memory && next <= now) return poll;
    return Math.max(0, Math.min(poll, next - this.now()));
  }

  private launch(task: FileTask): void {
    const bytes = this.options.memory?.bytesOf(task.size) ?? 0;
    this.runningBytes += bytes;
    const run = this.options
      .runTask(task)
      .catch((error: unknown) => {
        this.options.logger.error({ err: error, taskId: task.taskId }, 'task runner failed unexpectedly');
      })
      .finally(() => {
        if (this.running.get(task.taskId) === run) this.running.delete(task.taskId);
        this.runningBytes -= bytes;
        this.wake();
      });
    this.running.set(task.taskId, run);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
    });
  }
}
