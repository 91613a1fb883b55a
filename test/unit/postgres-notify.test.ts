// Store changes between two PostgreSQL stores on one schema: what one records is told to the
// other's listener (once per statement or transaction, never its own), and a listener whose
// connection was cut listens again by itself and is told to look again.
import assert from 'node:assert/strict';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { channelOf } from '../../src/store/postgres/notify.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { StoreChange } from '../../src/store/store.js';
import { waitFor } from '../support/poll.js';
import {
  POSTGRES_TEST_URL,
  assertPostgresReachable,
  dropSchema,
  freshSchemaName,
  startPostgresRelay,
  type PostgresRelay,
} from '../support/postgres.js';
import { T0, activeRequestWith, keyFor, newUpload, observed, readyAt } from '../support/store-fixtures.js';

before(assertPostgresReachable);

interface LogLine {
  level: number;
  msg: string;
  err?: { message?: string };
  database?: string;
}

/** A store's listener, with what it heard in order. */
interface Heard {
  changes: StoreChange[];
  stop: () => void;
}

function listen(store: PostgresStore): Heard {
  const changes: StoreChange[] = [];
  return { changes, stop: store.onChange((change) => changes.push(change)) };
}

describe('PostgreSQL store changes (LISTEN/NOTIFY)', () => {
  let schema: string;
  let relay: PostgresRelay | undefined;
  const opened: PostgresStore[] = [];

  async function open(url = POSTGRES_TEST_URL, lines?: LogLine[]): Promise<PostgresStore> {
    const logger =
      lines &&
      createLogger('info', {
        destination: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
      });
    const store = await openPostgresStore(url, { schema, poolSize: 2, leaseMs: 60_000, logger });
    opened.push(store);
    return store;
  }

  /**
   * Makes `teller` create an upload named `marker` and waits until `heard` has it: every change
   * told before it has arrived by then (one connection delivers in commit order).
   */
  async function upTo(teller: PostgresStore, heard: Heard, marker: string): Promise<StoreChange[]> {
    await teller.createUpload(newUpload(marker), T0);
    await waitFor(
      () => heard.changes.some((change) => change.kind === 'upload_created' && change.uploadId === marker),
      { timeoutMs: 5000, message: `the listener heard the marker ${marker}` },
    );
    const index = heard.changes.findIndex(
      (change) => change.kind === 'upload_created' && change.uploadId === marker,
    );
    return heard.changes.splice(0, index + 1).slice(0, index);
  }

  /** Waits until the store listens (its connection opened and LISTEN done). */
  async function listening(store: PostgresStore): Promise<void> {
    await waitFor(() => store.hearsChanges, { timeoutMs: 5000, message: 'the store listens' });
  }

  beforeEach(() => {
    schema = freshSchemaName('notify');
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await relay?.cut();
    relay = undefined;
    await dropSchema(schema);
  });

  it('names one channel per schema, within the 63 bytes PostgreSQL allows', () => {
    assert.equal(channelOf('uploader'), 's3fu_uploader');
    const long = channelOf('a'.repeat(63));
    assert.ok(long.startsWith('s3fu_') && long.length <= 63, long);
    assert.notEqual(long, channelOf(`${'a'.repeat(62)}b`));
  });

  it('tells the other store of uploads created and cancelled, and of tasks made ready, once per statement', async () => {
    const a = await open();
    const b = await open();
    const heardByB = listen(b);
    const heardByA = listen(a);
    await Promise.all([listening(a), listening(b)]);
    assert.equal(b.hearsChanges, true);

    // An upload created, and its files recorded in one transaction: two changes, not one per file.
    await a.createUpload(newUpload('u1'), T0);
    await a.activateUpload('u1', T0);
    assert.equal(await a.recordObservedFiles('u1', observed(5), keyFor, readyAt(T0), T0), 5);
    assert.deepEqual(await upTo(a, heardByB, 'm1'), [
      { kind: 'upload_created', uploadId: 'u1' },
      { kind: 'tasks_ready' },
    ]);
    // The same files again change nothing, and tell nothing.
    assert.equal(await a.recordObservedFiles('u1', observed(5), keyFor, readyAt(T0), T0 + 1), 0);
    assert.deepEqual(await upTo(a, heardByB, 'm2'), []);

    // Requeues: each statement that makes tasks ready tells once; one that finds none, nothing.
    const claimed = await a.claimReadyTasks(T0, 5);
    assert.equal(claimed.length, 5);
    const [first, second, third, fourth] = claimed;
    assert.ok(first && second && third && fourth);
    for (const task of [first, second, third]) {
      await a.failTask(task.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 10 }, T0 + 1);
    }
    assert.deepEqual(await upTo(a, heardByB, 'm3'), [], 'a failure makes nothing ready');
    assert.equal(await a.requeueDueFailedTasks(T0 + 5), 0);
    assert.equal(await a.requeueDueFailedTasks(T0 + 10), 3);
    assert.deepEqual(await upTo(a, heardByB, 'm4'), [{ kind: 'tasks_ready' }]);
    const release = { size: 100, mtimeMs: 1000.5, ino: 1, ctimeMs: 1000.5, observedAt: T0, readyAt: T0 + 20 };
    assert.equal(await a.releaseTask(fourth.taskId, release, 'changed', T0 + 20), true);
    assert.deepEqual(await upTo(a, heardByB, 'm5'), [{ kind: 'tasks_ready' }]);

    // A cancel tells once; a second one changes nothing and tells nothing.
    assert.equal(await a.cancelUpload('u1', T0 + 30), true);
    assert.equal(await a.cancelUpload('u1', T0 + 31), false);
    assert.deepEqual(await upTo(a, heardByB, 'm6'), [{ kind: 'upload_cancelled', uploadId: 'u1' }]);

    // B's own changes are told to A, and not back to B.
    await activeRequestWith(b, 'u2', observed(2));
    await b.cancelUpload('u2', T0 + 40);
    assert.deepEqual(await upTo(b, heardByA, 'm7'), [
      { kind: 'upload_created', uploadId: 'u2' },
      { kind: 'tasks_ready' },
      { kind: 'upload_cancelled', uploadId: 'u2' },
    ]);
    assert.deepEqual(await upTo(a, heardByB, 'm8'), [], 'B heard none of its own changes');

    // A listener removed hears nothing more; another of the same store still does.
    const stillHeardByB = listen(b);
    heardByB.stop();
    assert.deepEqual(await upTo(a, stillHeardByB, 'm9'), []);
    assert.deepEqual(heardByB.changes, []);
  });

  it('tells of tasks the reaper and crash recovery return to the queue', async () => {
    const holder = await openPostgresStore(POSTGRES_TEST_URL, { schema, poolSize: 2, leaseMs: 1 });
    opened.push(holder);
    const other = await open();
    const heard = listen(other);
    await listening(other);
    await activeRequestWith(holder, 'u1', observed(3));
    await upTo(holder, heard, 'm1');
    await holder.registerInstance({ host: 'h', pid: 1, version: 'v', sourceRoots: null });
    assert.equal((await holder.claimReadyTasks(T0, 2)).length, 2);
    // Leases of 1 ms: expired by the time the reaper looks.
    await waitFor(async () => (await holder.reapExpiredLeases(T0 + 1)).tasks.length === 2, {
      timeoutMs: 5000,
      message: 'the reaper took the expired leases back',
    });
    assert.deepEqual(await upTo(holder, heard, 'm2'), [{ kind: 'tasks_ready' }]);
    assert.equal((await holder.reapExpiredLeases(T0 + 2)).tasks.length, 0);
    assert.equal((await holder.claimReadyTasks(T0, 1)).length, 1);
    await waitFor(async () => (await holder.recoverInterruptedTasks(T0 + 3)) === 1, {
      timeoutMs: 5000,
      message: 'crash recovery took the expired lease back',
    });
    assert.deepEqual(await upTo(holder, heard, 'm3'), [{ kind: 'tasks_ready' }]);
  });

  it('listens again by itself after its connection is cut, and tells its listeners to look again', async () => {
    relay = await startPostgresRelay();
    const lines: LogLine[] = [];
    const teller = await open();
    // A password in the URL (the test server trusts local connections): it must never be logged.
    const withPassword = new URL(relay.url);
    withPassword.password = 'notify-secret-pw';
    const listener = await open(withPassword.href, lines);
    const heard = listen(listener);
    await listening(listener);
    await teller.createUpload(newUpload('before'), T0);
    await waitFor(() => heard.changes.length === 1, { timeoutMs: 5000, message: 'heard before the cut' });

    await relay.cut();
    await waitFor(() => !listener.hearsChanges, { timeoutMs: 5000, message: 'the listener saw the cut' });
    const lost = await waitFor(
      () => lines.find((line) => line.msg.startsWith('database notifications lost; reconnecting')),
      { timeoutMs: 5000, message: 'the loss is logged' },
    );
    assert.equal(lost.level, 40, 'a warning');
    assert.ok(lost.err, 'with the error');
    await teller.createUpload(newUpload('missed'), T0); // told while nobody listens: lost
    const reopenedAt = Date.now();
    await relay.open();
    await waitFor(() => heard.changes.some((change) => change.kind === 'look_again'), {
      timeoutMs: 10_000,
      message: 'told to look again once listening again',
    });
    const backMs = Date.now() - reopenedAt;
    assert.ok(
      lines.some((line) => line.msg === 'database notifications: listening again' && line.level === 30),
      'listening again is logged',
    );
    assert.ok(!JSON.stringify(lines).includes('notify-secret-pw'), 'no password in the log');
    await teller.createUpload(newUpload('after'), T0);
    await waitFor(
      () => heard.changes.some((change) => change.kind === 'upload_created' && change.uploadId === 'after'),
      { timeoutMs: 5000, message: 'heard after reconnecting' },
    );
    assert.deepEqual(
      heard.changes.map((change) => change.kind),
      ['upload_created', 'look_again', 'upload_created'],
    );
    assert.ok(backMs < 10_000, `${backMs} ms`);
  });
});
