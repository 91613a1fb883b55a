// Several instances on one PostgreSQL schema: leases set by claims and renewed by heartbeats, the
// reaper returning the tasks of an expired lease to the queue, the late runner of a task taken back
// changing nothing, crash recovery leaving a live instance's tasks alone, and the rows of the
// instances. Lease expiry is the database's clock: a lease of a second, and polling with a deadline.
import { afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { InstanceInfo } from '../../src/domain/instance.js';
import { TaskNotHeldError } from '../../src/store/errors.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { waitFor } from '../support/poll.js';
import {
  POSTGRES_TEST_URL,
  adminQuery,
  assertPostgresReachable,
  dropSchema,
  freshSchemaName,
} from '../support/postgres.js';
import { T0, activeRequestWith, multipartOf, observed, taskOf, uploadOf } from '../support/store-fixtures.js';

before(assertPostgresReachable);

const info = (host: string): InstanceInfo => ({ host, pid: 1, version: '0.0.0', sourceRoots: null });

describe('PostgreSQL leases', () => {
  let schema = '';
  const opened: PostgresStore[] = [];

  async function open(leaseMs: number): Promise<PostgresStore> {
    if (opened.length === 0) schema = freshSchemaName('leases');
    const store = await openPostgresStore(POSTGRES_TEST_URL, { schema, poolSize: 2, leaseMs });
    opened.push(store);
    return store;
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
    await dropSchema(schema);
  });

  /** The database's clock, in epoch milliseconds. */
  async function databaseNow(): Promise<number> {
    const [row] = await adminQuery<{ now: string }>(
      'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now',
    );
    return Number(row?.now);
  }

  async function leaseOf(taskId: number): Promise<{ claimedBy: string | null; expiresAt: number | null }> {
    const [row] = await adminQuery<{ claimed_by: string | null; lease_expires_at: string | null }>(
      `SELECT claimed_by, lease_expires_at FROM ${schema}.file_tasks WHERE task_id = $1`,
      [taskId],
    );
    assert.ok(row, `task ${taskId}`);
    const expiresAt = row.lease_expires_at === null ? null : Number(row.lease_expires_at);
    return { claimedBy: row.claimed_by, expiresAt };
  }

  /** Runs the reaper of `store` until it has taken back `count` tasks; returns their ids. */
  async function reapUntil(store: PostgresStore, count: number): Promise<number[]> {
    const reaped: number[] = [];
    await waitFor(
      async () => {
        reaped.push(...(await store.reapExpiredLeases(T0 + 50)).tasks.map((task) => task.taskId));
        return reaped.length >= count;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: `${count} tasks reaped` },
    );
    return reaped.sort((a, b) => a - b);
  }

  it('sets a lease at each claim, from the database clock, and renews it at each heartbeat', async () => {
    const holder = await open(60_000);
    const other = await open(60_000);
    await holder.registerInstance(info('holder'));
    await activeRequestWith(holder, 'r1', observed(3));
    const before = await databaseNow();
    const [mine, alsoMine] = await holder.claimReadyTasks(T0, 2);
    const [theirs] = await other.claimReadyTasks(T0, 1);
    const after = await databaseNow();
    assert.ok(mine && alsoMine && theirs);
    const lease = await leaseOf(mine.taskId);
    assert.equal(lease.claimedBy, holder.instanceId);
    assert.ok(
      lease.expiresAt !== null && lease.expiresAt >= before + 60_000 && lease.expiresAt <= after + 60_000,
    );

    // Shortened behind the store's back: the next heartbeat sets the full lease again, on its
    // own tasks only, and names them.
    await adminQuery(`UPDATE ${schema}.file_tasks SET lease_expires_at = 0 WHERE status = 'in_progress'`);
    const beforeBeat = await databaseNow();
    const beat = await holder.beat();
    assert.deepEqual(beat, {
      held: [mine.taskId, alsoMine.taskId].sort((a, b) => a - b),
      watching: [],
      registeredAgain: false,
    });
    for (const task of [mine, alsoMine]) {
      const renewed = await leaseOf(task.taskId);
      assert.ok(
        renewed.expiresAt !== null && renewed.expiresAt >= beforeBeat + 60_000,
        String(renewed.expiresAt),
      );
    }
    assert.equal((await leaseOf(theirs.taskId)).expiresAt, 0, "another instance's lease is not renewed");
  });

  it("judges leases by the database clock, however far apart the instances' own clocks are", async () => {
    const HOUR = 3_600_000;
    const ahead = await open(1000); // its machine's clock an hour ahead
    const behind = await open(30_000); // and this one's an hour behind
    await ahead.registerInstance(info('ahead'));
    await behind.registerInstance(info('behind'));
    const now = await databaseNow();
    await activeRequestWith(ahead, 'r1', observed(1));
    const [task] = await ahead.claimReadyTasks(now + HOUR, 1);
    assert.ok(task);
    // By the behind clock the lease would run an hour and more, by the ahead one it would be
    // long over: neither counts, and a fresh lease is not taken back.
    assert.deepEqual((await behind.reapExpiredLeases(now - HOUR)).tasks, []);
    assert.deepEqual((await behind.reapExpiredLeases(now + 2 * HOUR)).tasks, []);
    assert.equal((await leaseOf(task.taskId)).claimedBy, ahead.instanceId);
    // Once the database's clock passes the lease, the behind instance takes it back.
    assert.deepEqual(await reapUntil(behind, 1), [task.taskId]);
  });

  it('reaps an expired lease back to the queue, interrupted, and the late runner changes nothing', async () => {
    const lost = await open(1000);
    const taker = await open(30_000);
    await lost.registerInstance(info('lost'));
    await taker.registerInstance(info('taker'));
    const [task, other] = await activeRequestWith(lost, 'r1', observed(2));
    assert.ok(task && other);
    await lost.claimReadyTasks(T0, 2);
    await lost.saveMultipart(multipartOf(task.taskId), T0);
    await lost.recordPart(task.taskId, { partNumber: 1, etag: '"p1"', size: 5 });
    await lost.recordProgress(task.taskId, 5, T0 + 1);
    // Leases are still running: nothing to take back yet.
    assert.deepEqual((await taker.reapExpiredLeases(T0 + 2)).tasks, []);

    // `lost` beats no more: its leases expire within a second.
    assert.deepEqual(
      await reapUntil(taker, 2),
      [task.taskId, other.taskId].sort((a, b) => a - b),
    );
    const reaped = await taskOf(taker, task.taskId);
    assert.deepEqual(
      [
        reaped.status,
        reaped.interrupted,
        reaped.claimedBy,
        reaped.attempts,
        reaped.bytesUploaded,
        reaped.readyAt,
      ],
      ['pending', true, null, 1, 5, T0],
    );
    assert.deepEqual((await taker.getMultipart(task.taskId))?.parts, [
      { partNumber: 1, etag: '"p1"', size: 5 },
    ]);
    assert.equal((await leaseOf(task.taskId)).expiresAt, null);

    // Its runner, late: every transition says false and changes nothing.
    const failure = { message: 'late', kind: 'transient' as const, retryAt: T0 + 60 };
    const release = { ...task, readyAt: T0 + 60 };
    assert.equal(await lost.completeTask(task.taskId, uploadOf(task), T0 + 3), false);
    assert.equal(await lost.failTask(other.taskId, failure, T0 + 3), false);
    assert.equal(await lost.releaseTask(other.taskId, release, 'late', T0 + 3), false);

    // Claimed again by the taker, whose claim sees it interrupted and resumes its parts.
    const [again] = await taker.claimReadyTasks(T0 + 4, 1);
    assert.equal(again?.taskId, task.taskId);
    assert.equal(again.interrupted, true);
    assert.equal(again.claimedBy, taker.instanceId);
    await lost.recordProgress(task.taskId, 99, T0 + 5);
    assert.equal((await taskOf(taker, task.taskId)).bytesUploaded, 5);
    await assert.rejects(
      lost.recordPart(task.taskId, { partNumber: 2, etag: '"late"', size: 5 }),
      (error: unknown) => error instanceof TaskNotHeldError && error.holder === taker.instanceId,
    );
    await assert.rejects(
      lost.saveMultipart({ ...multipartOf(task.taskId), s3UploadId: 'late' }, T0 + 5),
      TaskNotHeldError,
    );
    await lost.dropTask(task.taskId);
    assert.equal(await lost.completeTask(task.taskId, uploadOf(task), T0 + 5), false);
    const untouched = await taskOf(taker, task.taskId);
    assert.deepEqual([untouched.status, untouched.claimedBy], ['in_progress', taker.instanceId]);
    assert.deepEqual(await taker.getMultipart(task.taskId), {
      ...multipartOf(task.taskId),
      parts: [{ partNumber: 1, etag: '"p1"', size: 5 }],
      createdAt: T0,
    });
    assert.equal(await taker.completeTask(task.taskId, uploadOf(task, '"taker"'), T0 + 6), true);
    assert.equal((await taskOf(taker, task.taskId)).etag, '"taker"');
  });

  it("never takes a live instance's tasks at another's start-up; takes those of gone instances and expired leases", async () => {
    const live = await open(30_000);
    const gone = await open(30_000);
    const expired = await open(30_000);
    for (const [store, host] of [
      [live, 'live'],
      [gone, 'gone'],
      [expired, 'expired'],
    ] as const) {
      await store.registerInstance(info(host));
    }
    await activeRequestWith(live, 'r1', observed(6));
    const [liveTask] = await live.claimReadyTasks(T0, 1);
    const [goneTask] = await gone.claimReadyTasks(T0, 1);
    const [expiredTask] = await expired.claimReadyTasks(T0, 1);
    assert.ok(liveTask && goneTask && expiredTask);
    await gone.removeInstance();
    await adminQuery(`UPDATE ${schema}.file_tasks SET lease_expires_at = 1 WHERE task_id = $1`, [
      expiredTask.taskId,
    ]);

    const starting = await open(30_000);
    assert.equal(await starting.recoverInterruptedTasks(T0 + 10), 2);
    assert.equal((await taskOf(starting, liveTask.taskId)).claimedBy, live.instanceId);
    for (const taken of [goneTask, expiredTask]) {
      const task = await taskOf(starting, taken.taskId);
      assert.deepEqual([task.status, task.interrupted, task.claimedBy], ['pending', true, null]);
    }
    assert.equal(await starting.recoverInterruptedTasks(T0 + 11), 0);
    assert.equal(await live.completeTask(liveTask.taskId, uploadOf(liveTask), T0 + 12), true);
  });

  it('registers instances, beats them, removes a dead one, and registers it again if it comes back', async () => {
    const dying = await open(1000);
    const staying = await open(30_000);
    await dying.registerInstance({ ...info('dying'), sourceRoots: ['/data/a', '/data/b'] });
    await staying.registerInstance(info('staying'));
    const listed = (await staying.listInstances()).sort((a, b) => a.host.localeCompare(b.host));
    assert.deepEqual(
      listed.map((instance) => [instance.instanceId, instance.host, instance.sourceRoots, instance.leaseMs]),
      [
        [dying.instanceId, 'dying', ['/data/a', '/data/b'], 1000],
        [staying.instanceId, 'staying', null, 30_000],
      ],
    );
    const [first] = listed;
    assert.ok(first);
    // A beat moves heartbeat_at on, by the database's clock.
    const beaten = await waitFor(
      async () => {
        await dying.beat();
        const row = (await staying.listInstances()).find((instance) => instance.host === 'dying');
        return row !== undefined && row.heartbeatAt > first.heartbeatAt ? row : undefined;
      },
      { message: 'a later heartbeat' },
    );
    assert.equal(beaten.startedAt, first.startedAt);
    assert.deepEqual((await staying.reapExpiredLeases(T0)).instances, []);

    // `dying` beats no more: once its heartbeat is older than its lease, its row is removed.
    const removed = await waitFor(
      async () => {
        const reaped = await staying.reapExpiredLeases(T0);
        return reaped.instances.length > 0 ? reaped.instances : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'the dead instance removed' },
    );
    assert.deepEqual(removed, [dying.instanceId]);
    assert.deepEqual(
      (await staying.listInstances()).map((instance) => instance.instanceId),
      [staying.instanceId],
    );
    // It was only paused: its next beat registers it again, with its first start.
    assert.equal((await dying.beat()).registeredAgain, true);
    const back = (await staying.listInstances()).find((instance) => instance.instanceId === dying.instanceId);
    assert.equal(back?.startedAt, first.startedAt);
    await dying.removeInstance();
    assert.equal((await staying.listInstances()).length, 1);
  });
});
