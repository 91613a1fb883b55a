import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { DatabaseUnavailableError } from '../../src/domain/errors.js';
import type { FileTask } from '../../src/domain/model.js';
import { SchemaTooNewError } from '../../src/store/errors.js';
import { openStore } from '../../src/store/open-store.js';
import { MANIFEST_ENTRIES } from '../../src/store/postgres/arrivals.js';
import { MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { NEXT_READY_AT } from '../../src/store/postgres/queue.js';
import { asDatabaseUnavailable } from '../../src/store/postgres/unavailable.js';
import type { ClaimBudget, Store, StoreChange } from '../../src/store/store.js';
import { describeStoreContract } from '../support/store-contract.js';
import { waitFor } from '../support/poll.js';
import {
  T0,
  activeRequestWith,
  allTasks,
  newUpload,
  observed,
  totalsOf,
  uploadOf,
} from '../support/store-fixtures.js';
import {
  POSTGRES_TEST_URL,
  adminQuery,
  assertPostgresReachable,
  dropSchema,
  freshSchemaName,
  startPostgresRelay,
} from '../support/postgres.js';

before(assertPostgresReachable);

describeStoreContract('postgres', async () => {
  const schema = freshSchemaName('contract');
  const store = await openPostgresStore(POSTGRES_TEST_URL, { schema, poolSize: 2 });
  return {
    store,
    async cleanup() {
      await store.close();
      await dropSchema(schema);
    },
  };
});

describe('PostgresStore', () => {
  let schema: string;
  const opened: Store[] = [];

  /** A store on this test's schema, closed after the test. */
  async function open(
    options: { instanceId?: string; url?: string; poolSize?: number } = {},
  ): Promise<PostgresStore> {
    const store = await openPostgresStore(options.url ?? POSTGRES_TEST_URL, {
      schema,
      poolSize: options.poolSize ?? 2,
      instanceId: options.instanceId,
    });
    opened.push(store);
    return store;
  }

  /** The server processes of the store opened with `instanceId`, once `count` of them wait on a lock. */
  async function waitingOnLocks(instanceId: string, count: number): Promise<number[]> {
    for (let tries = 0; tries < 500; tries += 1) {
      const waiting = await adminQuery<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
        [`s3-folder-uploader ${instanceId}`],
      );
      if (waiting.length === count) return waiting.map((row) => row.pid);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.fail(`${count} statements of ${instanceId} should wait on a lock`);
  }

  function setUp(): void {
    schema = freshSchemaName('store');
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
    await dropSchema(schema);
  });

  it('migrates an empty schema once when two stores open it at once, and each can use it', async () => {
    setUp();
    const [first, second] = await Promise.all([open(), open()]);
    const versions = await adminQuery<{ version: number }>(
      `SELECT version FROM ${schema}.schema_migrations ORDER BY version`,
    );
    assert.deepEqual(
      versions.map((row) => row.version),
      MIGRATIONS.map((_, index) => index + 1),
    );
    await first.createUpload(newUpload('r1'), T0);
    assert.equal((await second.getUpload('r1'))?.uploadId, 'r1');
    // Opening again migrates nothing more.
    await open();
    assert.equal((await adminQuery(`SELECT 1 FROM ${schema}.schema_migrations`)).length, MIGRATIONS.length);
  });

  it('refuses a schema migrated by a newer build', async () => {
    setUp();
    await open();
    await adminQuery(`INSERT INTO ${schema}.schema_migrations (version, applied_at) VALUES ($1, 0)`, [
      MIGRATIONS.length + 1,
    ]);
    await assert.rejects(open(), (error: unknown) => {
      assert.ok(error instanceof Error && error.cause instanceof SchemaTooNewError, String(error));
      assert.match(error.message, /cannot open the PostgreSQL database .* schema version/);
      return true;
    });
  });

  for (const budgeted of [false, true]) {
    it(`never hands one task to two stores claiming at once${budgeted ? ', with a budget' : ''}, and hands out every one`, async () => {
      setUp();
      const [a, b] = await Promise.all([
        open({ instanceId: 'instance-a' }),
        open({ instanceId: 'instance-b' }),
      ]);
      const uploadIds = ['u1', 'u2', 'u3', 'u4'];
      for (const uploadId of uploadIds) await activeRequestWith(a, uploadId, observed(50));
      // Each task weighs 30 of 100: a claim stops at its fourth task.
      const budget: ClaimBudget | undefined = budgeted ? { bytes: 100, bytesOf: () => 30 } : undefined;
      const claimedBy = new Map<string, FileTask[]>([
        ['instance-a', []],
        ['instance-b', []],
      ]);
      /** Claims until a claim comes back empty; two such loops per store, so that claims overlap. */
      async function claimAll(store: Store, instanceId: string, limit: number): Promise<void> {
        for (;;) {
          const claimed = await store.claimReadyTasks(T0, limit, { budget });
          if (claimed.length === 0) return;
          claimedBy.get(instanceId)!.push(...claimed);
        }
      }
      await Promise.all([
        claimAll(a, 'instance-a', 5),
        claimAll(a, 'instance-a', 3),
        claimAll(b, 'instance-b', 7),
        claimAll(b, 'instance-b', 2),
      ]);
      const all = [...claimedBy.values()].flat();
      assert.equal(new Set(all.map((task) => task.taskId)).size, all.length, 'a task was claimed twice');
      assert.equal(all.length, 200);
      for (const [instanceId, tasks] of claimedBy) {
        assert.ok(tasks.length > 0, `${instanceId} claimed nothing`);
        const rows = await adminQuery<{ claimed_by: string }>(
          `SELECT DISTINCT claimed_by FROM ${schema}.file_tasks WHERE task_id = ANY($1::bigint[])`,
          [tasks.map((task) => task.taskId)],
        );
        assert.deepEqual(
          rows.map((row) => row.claimed_by),
          [instanceId],
        );
      }
      for (const uploadId of uploadIds) {
        const tasks = await allTasks(a, uploadId);
        assert.ok(tasks.every((task) => task.status === 'in_progress' && task.attempts === 1));
        assert.deepEqual(await b.uploadTotals(uploadId), totalsOf(tasks));
      }
      // Completing a task lets go of it; only the instance that holds it can.
      const first = claimedBy.get('instance-a')![0];
      assert.ok(first);
      assert.equal(await b.completeTask(first.taskId, uploadOf(first), T0 + 1), false);
      assert.equal(await a.completeTask(first.taskId, uploadOf(first), T0 + 1), true);
      const [row] = await adminQuery<{ claimed_by: string | null }>(
        `SELECT claimed_by FROM ${schema}.file_tasks WHERE task_id = $1`,
        [first.taskId],
      );
      assert.equal(row?.claimed_by, null);
    });
  }

  it('keeps the kept counts equal to a recount while two stores complete, fail and record at once', async () => {
    setUp();
    const [a, b] = await Promise.all([open(), open()]);
    await activeRequestWith(a, 'u1', observed(40));
    await activeRequestWith(a, 'u2', observed(40));
    const claimed = [...(await a.claimReadyTasks(T0, 30)), ...(await b.claimReadyTasks(T0, 30))];
    const holder = new Map(claimed.map((task) => [task.taskId, task.claimedBy === a.instanceId ? a : b]));
    await Promise.all(
      claimed.map((task, index) => {
        const store = holder.get(task.taskId)!;
        return index % 3 === 0
          ? store.failTask(task.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 5 }, T0 + 1)
          : store.completeTask(task.taskId, uploadOf(task), T0 + 1);
      }),
    );
    await Promise.all([
      b.recordObservedFiles(
        'u1',
        observed(20, 7, 40),
        (p) => `key/${p}`,
        () => ({ readyAt: T0, settledAt: T0 }),
        T0 + 2,
      ),
      a.requeueDueFailedTasks(T0 + 5),
      b.claimReadyTasks(T0 + 5, 10),
    ]);
    const recount = await adminQuery<{ upload_id: string; status: string; files: number; bytes: number }>(
      `SELECT upload_id, status, COUNT(*)::int AS files, SUM(size)::int AS bytes
       FROM ${schema}.file_tasks GROUP BY upload_id, status`,
    );
    const kept = await adminQuery<{ upload_id: string; status: string; files: number; bytes: number }>(
      `SELECT upload_id, status, files::int, bytes_total::int AS bytes
       FROM ${schema}.upload_task_counts WHERE files <> 0 OR bytes_total <> 0`,
    );
    const byKey = (rows: typeof kept) =>
      rows.map((row) => `${row.upload_id}/${row.status}: ${row.files} files, ${row.bytes} bytes`).sort();
    assert.deepEqual(byKey(kept), byKey(recount));
  });

  it('waits for a cancel in flight, then records, claims and requeues nothing of its upload', async () => {
    setUp();
    const store = await open({ instanceId: 'racing', poolSize: 3 });
    const [running] = await activeRequestWith(store, 'r1', observed(2));
    assert.ok(running);
    assert.equal((await store.claimReadyTasks(T0, 1))[0]?.taskId, running.taskId);
    // Another session cancels the upload as cancelUpload does, and holds its transaction open.
    const canceller = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await canceller.connect();
    try {
      await canceller.query('BEGIN');
      await canceller.query(`SELECT 1 FROM ${schema}.uploads WHERE upload_id = 'r1' FOR UPDATE`);
      await canceller.query(`UPDATE ${schema}.uploads SET status = 'cancelled' WHERE upload_id = 'r1'`);
      await canceller.query(
        `UPDATE ${schema}.file_tasks SET ready_at = NULL WHERE upload_id = 'r1' AND status = 'pending'`,
      );
      const recorded = store.recordObservedFiles(
        'r1',
        observed(3, 100, 10),
        (relativePath) => `key/${relativePath}`,
        () => ({ readyAt: T0, settledAt: T0 }),
        T0 + 1,
      );
      const claimed = store.claimReadyTasks(T0 + 1, 10);
      const failure = { message: 'boom', kind: 'transient' as const, retryAt: T0 + 60 };
      const failed = store.failTask(running.taskId, failure, T0 + 1);
      await waitingOnLocks('racing', 3);
      await canceller.query('COMMIT');
      assert.equal(await recorded, 0, 'no file is recorded for a cancelled upload');
      assert.deepEqual(await claimed, [], 'no task of a cancelled upload is claimed');
      assert.equal(await failed, true);
    } finally {
      await canceller.end();
    }
    const tasks = await allTasks(store, 'r1');
    assert.deepEqual(
      tasks.map((task) => [task.status, task.readyAt]),
      [
        ['failed', null],
        ['pending', null],
      ],
    );
  });

  it("takes over the notification of an instance whose row is gone, never a live one's, and one taker only", async () => {
    setUp();
    const [a, b, c] = await Promise.all([
      open({ instanceId: 'instance-a' }),
      open({ instanceId: 'instance-b' }),
      open({ instanceId: 'instance-c' }),
    ]);
    const info = { host: 'host', pid: 1, version: '9.9.9', sourceRoots: null };
    for (const store of [a, b, c]) await store.registerInstance(info);
    // A one-shot upload completed by a: the notification of its arrival is a's to deliver.
    await a.createUpload(
      { ...newUpload('u1'), watch: false, notifyUrl: 'https://hooks.example/arrived' },
      T0,
    );
    assert.equal(await a.activateUpload('u1', T0), true);
    assert.equal(await a.completeUpload('u1', T0 + 1), true);
    const taken = async (store: Store) => (await store.takeNotifications()).map((upload) => upload.uploadId);
    assert.deepEqual(await b.takeNotifications(), [], 'a is alive');
    assert.deepEqual(await taken(a), ['u1']);

    // a's row is gone (a clean stop, or the reaper): of two instances taking at once, one takes it.
    await a.removeInstance();
    const [byB, byC] = await Promise.all([taken(b), taken(c)]);
    assert.deepEqual([...byB, ...byC], ['u1']);
    const [taker, other] = byB.length === 1 ? [b, c] : [c, b];
    assert.deepEqual(await taken(other), []);
    assert.deepEqual(await taken(taker), ['u1']);
    const [row] = await adminQuery<{ notification_held_by: string }>(
      `SELECT notification_held_by FROM ${schema}.uploads WHERE upload_id = 'u1'`,
    );
    assert.equal(row?.notification_held_by, taker.instanceId);
    // a, registered again, does not take it back from a live instance.
    await a.registerInstance(info);
    assert.deepEqual(await taken(a), []);
  });

  it('tells the other instances when an upload was first scanned whole, since its markers may go', async () => {
    setUp();
    const [a, b] = await Promise.all([
      open({ instanceId: 'instance-a' }),
      open({ instanceId: 'instance-b' }),
    ]);
    const heard: StoreChange[] = [];
    const stop = b.onChange((change) => heard.push(change));
    try {
      await waitFor(() => b.hearsChanges, { timeoutMs: 5000, message: 'b listens' });
      await a.createUpload(newUpload('u1'), T0);
      await a.markScanned('u1', T0 + 1);
      await a.markScanned('u1', T0 + 2);
      // An upload created last: every change told before it has arrived once it has.
      await a.createUpload(newUpload('last'), T0);
      const lastHeard = () =>
        heard.findIndex((change) => change.kind === 'upload_created' && change.uploadId === 'last');
      await waitFor(() => lastHeard() >= 0, { timeoutMs: 5000, message: 'b heard the last upload' });
      assert.deepEqual(heard.slice(0, lastHeard()), [
        { kind: 'upload_created', uploadId: 'u1' },
        { kind: 'tasks_ready' },
      ]);
      assert.equal((await b.getUpload('u1'))?.scannedAt, T0 + 2);
    } finally {
      stop();
    }
  });

  it('pages the manifest, and passes over waiting markers, through indexes whatever the plan', async () => {
    setUp();
    const store = await open();
    for (const uploadId of ['big', 'small']) {
      await store.createUpload({ ...newUpload(uploadId), completeMarkers: ['RTAComplete.txt'] }, T0);
      await store.activateUpload(uploadId, T0);
      await store.markScanned(uploadId, T0);
    }
    // 20,000 tasks of one upload, and a few of another after them, with a marker waiting.
    await adminQuery(`
      INSERT INTO ${schema}.file_tasks (upload_id, relative_path, object_key, size, mtime_ms, status, ready_at,
                                        observed_at, created_at, updated_at, uploaded_size, is_marker)
      SELECT CASE WHEN i <= 20000 THEN 'big' ELSE 'small' END, 'f' || i, 'k' || i, 1, 1,
             CASE WHEN i % 3 = 0 OR i > 20000 THEN 'completed' ELSE 'pending' END, ${T0} + i, ${T0}, ${T0}, ${T0}, 1,
             i % 5000 = 1
      FROM generate_series(1, 20020) AS i`);
    await adminQuery(`ANALYZE ${schema}.file_tasks`);
    const client = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await client.connect();
    try {
      await client.query(`SET search_path = ${schema}`);
      // The plan a statement prepared by name comes to after five runs, for any values.
      await client.query('SET plan_cache_mode = force_generic_plan');
      const planOf = async (text: string, values: string): Promise<string> => {
        await client.query(`PREPARE checked AS ${text}`);
        try {
          const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE checked(${values})`);
          return rows.map((row) => row['QUERY PLAN']).join('\n');
        } finally {
          await client.query('DEALLOCATE checked');
        }
      };
      const manifest = await planOf(MANIFEST_ENTRIES, `'small', 0, 100`);
      assert.match(manifest, /Index Scan using file_tasks_by_upload_status on file_tasks/);
      assert.match(
        manifest,
        /Index Cond: \(ROW\(upload_id, status, task_id\) > ROW\(\$1, 'completed'::text, \$2\)\)/,
      );
      const next = await planOf(NEXT_READY_AT, 'NULL');
      assert.match(next, /Index Scan using file_tasks_queue on file_tasks t/);
      assert.match(next, /Index (Only )?Scan using file_tasks_markers on file_tasks m/);
      for (const plan of [manifest, next]) assert.doesNotMatch(plan, /Seq Scan on file_tasks/);
    } finally {
      await client.end();
    }
    // small's first task is a marker, as is big's: the manifest leaves it out, nextReadyAt passes it over.
    const entries = await store.manifestEntries('small', 0, 100);
    assert.deepEqual(
      entries.map((entry) => entry.key),
      Array.from({ length: 19 }, (_, i) => `k${20002 + i}`),
    );
    assert.equal(await store.nextReadyAt(), T0 + 2);
  });

  it('is reachable until closed, and closes twice without error', async () => {
    setUp();
    const store = await open();
    assert.equal(await store.health(), 'reachable');
    await store.close();
    assert.equal(await store.health(), 'unreachable');
    await store.close();
  });

  it('answers DatabaseUnavailableError while its server cannot be reached, and works again once it can', async () => {
    setUp();
    const relay = await startPostgresRelay();
    try {
      const store = await open({ url: relay.url });
      await store.createUpload(newUpload('r1'), T0);
      await relay.cut();
      await assert.rejects(store.getUpload('r1'), (error: unknown) => {
        assert.ok(error instanceof DatabaseUnavailableError, String(error));
        // The relay closed the pool's idle connection, or refuses a new one: either way, a 503.
        assert.match(
          error.message,
          /^the database cannot be used right now: (its server refuses connections|the connection to its server ended)/,
        );
        return true;
      });
      assert.equal(await store.health(), 'unreachable');
      await relay.open();
      assert.equal(await store.health(), 'reachable');
      assert.equal((await store.getUpload('r1'))?.uploadId, 'r1');
    } finally {
      await relay.cut();
    }
  });

  it('answers DatabaseUnavailableError when an administrator ends its connection mid-statement (57P01)', async () => {
    setUp();
    const store = await open({ instanceId: 'terminated' });
    await store.createUpload(newUpload('r1'), T0);
    // Another session holds the upload's row, so that the store's cancel waits on it.
    const holder = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM ${schema}.uploads WHERE upload_id = 'r1' FOR UPDATE`);
      // Its outcome, caught at once: it fails while this test is still waiting on other things.
      const cancelled = store.cancelUpload('r1', T0 + 1).then(String, (error: unknown) => error);
      const [pid] = await waitingOnLocks('terminated', 1);
      await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
      const error = await cancelled;
      assert.ok(error instanceof DatabaseUnavailableError, String(error));
      assert.match(error.message, /terminated by an administrator\) \(57P01\)$/);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    // The pool opens another connection: nothing was changed, and the cancel can be made again.
    assert.equal((await store.getUpload('r1'))?.status, 'pending');
    assert.equal(await store.cancelUpload('r1', T0 + 2), true);
  });

  it('takes only the failures that pass for the database being unusable', () => {
    const error = (code: string) => Object.assign(new pg.DatabaseError('x', 1, 'error'), { code });
    for (const [code, words] of [
      ['57P01', /shutting down/],
      ['53100', /disk that holds it is full/],
      ['08006', /connection to its server failed/],
      ['25006', /read-only/],
    ] as const) {
      const mapped = asDatabaseUnavailable(error(code));
      assert.ok(mapped instanceof DatabaseUnavailableError, code);
      assert.match(mapped.message, words);
      assert.match(mapped.message, new RegExp(`\\(${code}\\)$`));
    }
    // A bug, or a deadlock that the store runs again, is not the database being unusable.
    for (const code of ['23505', '42P01', '40P01']) {
      const original = error(code);
      assert.equal(asDatabaseUnavailable(original), original, code);
    }
  });
});

describe('openStore with a postgres:// URL', () => {
  const schema = freshSchemaName('service');
  after(() => dropSchema(schema));

  it('opens the schema the URL names, which other instances open at the same time', async () => {
    const url = `${POSTGRES_TEST_URL}?schema=${schema}`;
    const store = await openStore(url, undefined, { poolSize: 2 });
    const other = await openStore(url.replace('postgres://', 'postgresql://'), undefined, { poolSize: 2 });
    try {
      assert.equal(await store.health(), 'reachable');
      await store.createUpload(newUpload('r1'), T0);
      assert.equal((await adminQuery(`SELECT 1 FROM ${schema}.uploads`)).length, 1);
      assert.equal((await other.getUpload('r1'))?.uploadId, 'r1');
      assert.notEqual(store.instanceId, other.instanceId);
    } finally {
      await Promise.all([store.close(), other.close()]);
    }
  });

  it('names the database without its password when it cannot be opened', async () => {
    await assert.rejects(
      openStore('postgres://app:s3cret-pw@127.0.0.1:1/none?schema=x', undefined),
      (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.match(
          error.message,
          /^cannot open the PostgreSQL database postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/none/,
        );
        assert.doesNotMatch(error.message, /s3cret-pw/);
        return true;
      },
    );
  });
});
