// The heartbeat of this instance, and the reaper it runs after each beat. The instance registers
// at start; every HEARTBEAT_SECONDS its row beats and the leases of the tasks it holds are renewed
// (one statement, in the store); then the reaper returns the tasks of expired leases, whoever held
// them, to the queue, and removes the rows of dead instances. A beat also tells which of the tasks
// this instance runs it no longer holds: their leases expired before a beat could renew them (the
// process was paused, or cut off from the database, for longer than LEASE_SECONDS) and the reaper
// of some instance took them back; their runners are stopped, since another instance may be
// running them already. Then it takes the watch leases and the pending notifications nobody alive
// holds. On SQLite there is one instance and nothing to reap, and the same loop only keeps its
// row's heartbeat and sends what notifications a restart left pending.
import type { InstanceInfo, Reaped } from '../domain/instance.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';

export interface HeartbeatOptions {
  store: Pick<Store, 'instanceId' | 'registerInstance' | 'beat' | 'reapExpiredLeases' | 'removeInstance'>;
  instance: InstanceInfo;
  /** HEARTBEAT_SECONDS, in milliseconds. */
  intervalMs: number;
  /** LEASE_SECONDS, in milliseconds: told in the log. */
  leaseMs: number;
  logger: Logger;
  /** The ids of the tasks this instance runs now: read before each beat. */
  running: () => readonly number[];
  /** Tasks that ran before a beat which found this instance holding them no more. */
  lost: (taskIds: number[]) => void;
  /** The reaper returned tasks to the queue: they may be claimed at once. */
  reaped: () => void;
  /** The uploads this instance watches now: read before each beat. */
  watching: () => readonly string[];
  /** What it watched before the beat, and the watch leases the beat renewed. */
  watchesRenewed: (watchingBefore: readonly string[], renewed: readonly string[]) => void;
  /** Takes the watch leases of live uploads no live instance watches: after each reaper's pass. */
  takeWatchLeases: () => Promise<void>;
  /** Sends the pending notifications this instance holds or takes over from dead ones: then. */
  takeNotifications: () => Promise<void>;
  now?: () => number;
}

type Step = 'beat' | 'reap' | 'watch' | 'notify';

const CONSEQUENCES: Record<Step, string> = {
  beat: 'the leases of this instance are not renewed while this lasts: past LEASE_SECONDS, other instances take its tasks and the uploads it watches',
  reap: 'tasks whose lease expired wait for the next pass',
  watch: 'uploads nobody watches wait for the next pass',
  notify: 'notifications left by instances that are gone wait for the next pass',
};

export class Heartbeat {
  private readonly log: Logger;
  private readonly now: () => number;
  private registered = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The pass under way, awaited by stop(). */
  private pass: Promise<void> | undefined;
  /** The message of the failure of each step, while it lasts: logged once, not at every pass. */
  private readonly failing = new Map<Step, string>();

  constructor(private readonly options: HeartbeatOptions) {
    this.log = options.logger;
    this.now = options.now ?? Date.now;
  }

  /** Registers this instance: its row, from which other instances know it is alive. */
  async register(): Promise<void> {
    const { store, instance, intervalMs, leaseMs } = this.options;
    await store.registerInstance(instance);
    this.registered = true;
    this.log.info(
      { instanceId: store.instanceId, ...instance, heartbeatMs: intervalMs, leaseMs },
      'instance registered',
    );
  }

  /** Beats every interval from now on, the first time at once. */
  start(): void {
    if (this.stopped || this.timer !== undefined || this.pass !== undefined) return;
    this.schedule(0);
  }

  /** Stops beating and removes this instance's row: after the last of its tasks was let go. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.pass;
    if (!this.registered) return;
    this.registered = false;
    try {
      await this.options.store.removeInstance();
    } catch (error) {
      this.log.error(
        { err: error, instanceId: this.options.store.instanceId },
        'cannot remove this instance from the database; the reaper of another instance removes it once its lease has passed',
      );
    }
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pass = this.beatAndReap().finally(() => {
        this.pass = undefined;
        if (!this.stopped) this.schedule(this.options.intervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async beatAndReap(): Promise<void> {
    await this.step('beat', () => this.beat());
    if (this.stopped) return;
    await this.step('reap', () => this.reap());
    if (this.stopped) return;
    await this.step('watch', () => this.options.takeWatchLeases());
    if (this.stopped) return;
    await this.step('notify', () => this.options.takeNotifications());
  }

  private async beat(): Promise<void> {
    const { store } = this.options;
    const runningBefore = this.options.running();
    const watchingBefore = this.options.watching();
    const beat = await store.beat();
    if (beat.registeredAgain) {
      this.log.warn(
        { instanceId: store.instanceId },
        'heartbeat: this instance was taken for dead (no heartbeat for longer than its lease) and its tasks went back to the queue; registered again',
      );
    }
    const held = new Set(beat.held);
    const lost = runningBefore.filter((taskId) => !held.has(taskId));
    if (lost.length > 0) this.options.lost(lost);
    this.options.watchesRenewed(watchingBefore, beat.watching);
  }

  private async reap(): Promise<void> {
    const reaped = await this.options.store.reapExpiredLeases(this.now());
    if (reaped.tasks.length === 0 && reaped.instances.length === 0) return;
    this.log.warn(reapedFields(reaped), reapedMessage(reaped));
    if (reaped.tasks.length > 0) this.options.reaped();
  }

  /** Runs one step; a failure is logged once while it lasts, and the next pass tries again. */
  private async step(name: Step, run: () => Promise<void>): Promise<void> {
    try {
      await run();
      if (this.failing.delete(name)) this.log.info(`heartbeat: the ${name} works again`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (this.failing.get(name) === message) return;
      this.failing.set(name, message);
      const consequence = CONSEQUENCES[name];
      this.log.error(
        { err: error, instanceId: this.options.store.instanceId },
        `heartbeat: the ${name} failed (${consequence}); retrying every HEARTBEAT_SECONDS, logged again only if the error changes`,
      );
    }
  }
}

function reapedFields(reaped: Reaped): Record<string, unknown> {
  const distinct = (values: (string | null)[]) => [...new Set(values)].sort();
  return {
    tasks: reaped.tasks.length,
    claimedBy: distinct(reaped.tasks.map((task) => task.claimedBy)),
    uploadIds: distinct(reaped.tasks.map((task) => task.uploadId)),
    deadInstances: reaped.instances,
  };
}

function reapedMessage(reaped: Reaped): string {
  const parts: string[] = [];
  if (reaped.tasks.length > 0) parts.push('tasks whose lease expired are back in the queue, to be resumed');
  if (reaped.instances.length > 0) parts.push('instances whose heartbeat stopped are removed');
  return `reaper: ${parts.join('; ')}`;
}
