// The heartbeat loop against a store played by a fake: it registers, beats at once and then every
// interval, reaps after each beat, tells which running tasks are held no more, logs a failing step
// once while it lasts, and removes the instance's row when it stops.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Beat, InstanceInfo, Reaped } from '../../src/domain/instance.js';
import { Heartbeat, type HeartbeatOptions } from '../../src/engine/heartbeat.js';
import { waitFor } from '../support/poll.js';

const INFO: InstanceInfo = { host: 'h', pid: 7, version: '1.0.0', sourceRoots: null };

class FakeStore implements Pick<HeartbeatOptions['store'], keyof HeartbeatOptions['store']> {
  readonly instanceId = 'instance-1';
  /**
   * What a beat says is held once the beats a test set are used up: every task still running, and
   * every upload still watched.
   */
  constructor(
    private readonly running: readonly number[],
    private readonly watching: readonly string[],
  ) {}

  readonly calls: string[] = [];
  beats: Beat[] = [];
  reaps: Reaped[] = [];
  failBeat: Error | undefined;

  async registerInstance(info: InstanceInfo): Promise<void> {
    this.calls.push(`register ${info.host}`);
  }

  async beat(): Promise<Beat> {
    this.calls.push('beat');
    if (this.failBeat) throw this.failBeat;
    return (
      this.beats.shift() ?? { held: [...this.running], watching: [...this.watching], registeredAgain: false }
    );
  }

  async reapExpiredLeases(): Promise<Reaped> {
    this.calls.push('reap');
    return this.reaps.shift() ?? { tasks: [], instances: [] };
  }

  async removeInstance(): Promise<void> {
    this.calls.push('remove');
  }
}

/** `running`: the tasks running; those the heartbeat says are lost stop running, as the engine stops them. */
function setUp(running: number[] = [], watching: string[] = []) {
  const watchesLost: string[][] = [];
  const store = new FakeStore(running, watching);
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const lost: number[][] = [];
  let reaped = 0;
  const heartbeat = new Heartbeat({
    store,
    instance: INFO,
    intervalMs: 20,
    leaseMs: 60,
    logger,
    running: () => [...running],
    lost: (taskIds) => {
      lost.push(taskIds);
      for (const taskId of taskIds) running.splice(running.indexOf(taskId), 1);
    },
    reaped: () => (reaped += 1),
    watching: () => [...watching],
    watchesRenewed: (before, renewed) => {
      const gone = before.filter((uploadId) => !renewed.includes(uploadId));
      if (gone.length > 0) watchesLost.push(gone);
      for (const uploadId of gone) watching.splice(watching.indexOf(uploadId), 1);
    },
    takeWatchLeases: async () => {
      store.calls.push('take');
    },
    takeNotifications: async () => undefined,
  });
  return { store, lines, lost, watchesLost, heartbeat, reapedCount: () => reaped };
}

test('registers, then beats and reaps every interval, and removes its row when it stops', async () => {
  const { store, heartbeat, lines } = setUp();
  await heartbeat.register();
  assert.ok(lines.some((line) => line.msg === 'instance registered'));
  heartbeat.start();
  await waitFor(() => store.calls.filter((call) => call === 'beat').length >= 3, { message: 'three beats' });
  await heartbeat.stop();
  const calls = store.calls;
  assert.equal(calls[0], 'register h');
  assert.equal(calls.at(-1), 'remove');
  // Each beat is followed by a reap and a look for uploads nobody watches, and nothing runs once stopped.
  const body = calls.slice(1, -1);
  for (let index = 0; index < body.length; index += 3)
    assert.deepEqual(body.slice(index, index + 3), ['beat', 'reap', 'take'].slice(0, body.length - index));
  const after = calls.length;
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(store.calls.length, after);
});

test('tells which watched uploads a beat renewed the watch lease of no more', async () => {
  const { store, heartbeat, watchesLost } = setUp([], ['u1', 'u2', 'u3']);
  store.beats.push(
    { held: [], watching: ['u1', 'u2', 'u3'], registeredAgain: false },
    { held: [], watching: ['u1', 'u3'], registeredAgain: false },
  );
  await heartbeat.register();
  heartbeat.start();
  await waitFor(() => store.beats.length === 0 && store.calls.includes('take'), { message: 'two beats' });
  await heartbeat.stop();
  assert.deepEqual(watchesLost[0], ['u2']);
});

test('tells which running tasks a beat found held no more, and wakes the dispatcher after a reap', async () => {
  const running = [11, 12, 13];
  const { store, heartbeat, lost, lines, reapedCount } = setUp(running);
  store.beats.push(
    { held: [11, 13, 99], watching: [], registeredAgain: true },
    { held: [11, 13], watching: [], registeredAgain: false },
  );
  store.reaps.push({ tasks: [{ taskId: 5, uploadId: 'u', claimedBy: 'dead' }], instances: ['dead'] });
  await heartbeat.register();
  heartbeat.start();
  await waitFor(() => reapedCount() === 1 && store.beats.length === 0, { message: 'two beats, a reap' });
  await heartbeat.stop();
  assert.deepEqual(lost, [[12]]);
  assert.ok(lines.some((line) => line.level === 40 && /registered again/.test(line.msg)));
  assert.ok(lines.some((line) => line.level === 40 && /^reaper: tasks whose lease expired/.test(line.msg)));
});

test('logs a failing beat once while it lasts, and says when it works again', async () => {
  const { store, heartbeat, lines } = setUp();
  store.failBeat = new Error('connection refused');
  await heartbeat.register();
  heartbeat.start();
  await waitFor(() => store.calls.filter((call) => call === 'beat').length >= 4, { message: 'four beats' });
  store.failBeat = undefined;
  await waitFor(() => lines.some((line) => /the beat works again/.test(line.msg)), { message: 'recovered' });
  await heartbeat.stop();
  assert.equal(lines.filter((line) => line.level === 50 && /the beat failed/.test(line.msg)).length, 1);
});
