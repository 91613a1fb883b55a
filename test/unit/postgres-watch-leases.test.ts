// Watch leases on PostgreSQL: the instance that watches each live upload's folder. Two instances
// racing for an upload's lease, one takes it; a heartbeat renews it; unrenewed, it expires by the
// database's clock and another instance takes it over; a clean stop releases it; an instance
// takes only uploads under its source roots, and its fair share of those nobody watches.
import { afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { InstanceInfo } from '../../src/domain/instance.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { waitFor } from '../support/poll.js';
import {
  POSTGRES_TEST_URL,
  adminQuery,
  assertPostgresReachable,
  dropSchema,
  freshSchemaName,
} from '../support/postgres.js';
import { T0, newUpload } from '../support/store-fixtures.js';

before(assertPostgresReachable);

const info = (host: string, sourceRoots: string[] | null = null): InstanceInfo => ({
  host,
  pid: 1,
  version: '0.0.0',
  sourceRoots,
});

describe('PostgreSQL watch leases', () => {
  let schema = '';
  const opened: PostgresStore[] = [];

  async function open(host: string, leaseMs = 60_000, roots: string[] | null = null): Promise<PostgresStore> {
    if (opened.length === 0) schema = freshSchemaName('watch_leases');
    const store = await openPostgresStore(POSTGRES_TEST_URL, { schema, poolSize: 2, leaseMs });
    opened.push(store);
    await store.registerInstance(info(host, roots));
    return store;
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
    await dropSchema(schema);
  });

  async function watchLeaseOf(
    uploadId: string,
  ): Promise<{ watchedBy: string | null; expiresAt: number | null }> {
    const [row] = await adminQuery<{ watched_by: string | null; watch_lease_expires_at: string | null }>(
      `SELECT watched_by, watch_lease_expires_at FROM ${schema}.uploads WHERE upload_id = $1`,
      [uploadId],
    );
    assert.ok(row, uploadId);
    const expiresAt = row.watch_lease_expires_at === null ? null : Number(row.watch_lease_expires_at);
    return { watchedBy: row.watched_by, expiresAt };
  }

  const ids = (taken: { upload: { uploadId: string } }[]) => taken.map((one) => one.upload.uploadId).sort();

  it('is taken by exactly one of two instances racing for it, and renewed by its heartbeat', async () => {
    const first = await open('first');
    const second = await open('second');
    for (let round = 0; round < 10; round++) {
      const uploadId = `race${round}`;
      await first.createUpload(newUpload(uploadId), T0);
      const [a, b] = await Promise.all([
        first.takeWatchLeases({ sourceRoots: null, uploadId }),
        second.takeWatchLeases({ sourceRoots: null, uploadId }),
      ]);
      assert.equal(a.length + b.length, 1, `round ${round}: taken once`);
      const winner = a.length === 1 ? first : second;
      assert.equal((await watchLeaseOf(uploadId)).watchedBy, winner.instanceId);
      assert.equal((await winner.getUpload(uploadId))?.watchedBy, winner.instanceId);
      // Held: neither takes it again.
      assert.deepEqual(await first.takeWatchLeases({ sourceRoots: null, uploadId }), []);
      assert.deepEqual(await second.takeWatchLeases({ sourceRoots: null, uploadId }), []);
    }
    const firstWatches = (await first.beat()).watching;
    const secondWatches = (await second.beat()).watching;
    assert.equal(firstWatches.length + secondWatches.length, 10);
    // A beat renews the lease from the database's clock.
    const uploadId = [...firstWatches, ...secondWatches][0]!;
    const holder = firstWatches.includes(uploadId) ? first : second;
    await adminQuery(`UPDATE ${schema}.uploads SET watch_lease_expires_at = 1 WHERE upload_id = $1`, [
      uploadId,
    ]);
    assert.ok((await holder.beat()).watching.includes(uploadId));
    const renewed = await watchLeaseOf(uploadId);
    assert.equal(renewed.watchedBy, holder.instanceId);
    assert.ok((renewed.expiresAt ?? 0) > Date.now() + 30_000, 'renewed for the lease from now');
  });

  it('expires when no heartbeat renews it, and another instance takes it over', async () => {
    const dying = await open('dying', 1000);
    const survivor = await open('survivor', 1000);
    await dying.createUpload(newUpload('u1'), T0);
    assert.deepEqual(ids(await dying.takeWatchLeases({ sourceRoots: null, uploadId: 'u1' })), ['u1']);
    assert.deepEqual(await survivor.takeWatchLeases({ sourceRoots: null }), [], 'held: not taken');
    // The dying instance beats no more; the survivor does, and looks.
    const taken = await waitFor(
      async () => {
        await survivor.beat();
        const found = await survivor.takeWatchLeases({ sourceRoots: null });
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'the survivor took the watch lease over' },
    );
    assert.deepEqual(ids(taken), ['u1']);
    assert.equal(taken[0]?.previous, dying.instanceId);
    assert.deepEqual((await survivor.beat()).watching, ['u1']);
    // The one that let it expire learns at its next beat that it watches it no more.
    assert.deepEqual((await dying.beat()).watching, []);
  });

  it('is released by a clean stop, and taken by another at once', async () => {
    const leaving = await open('leaving');
    const staying = await open('staying');
    await leaving.createUpload(newUpload('u1'), T0);
    await leaving.createUpload(newUpload('u2'), T0 + 1);
    assert.deepEqual(ids(await leaving.takeWatchLeases({ sourceRoots: null })), ['u1']);
    assert.deepEqual(ids(await leaving.takeWatchLeases({ sourceRoots: null })), ['u2']);
    await leaving.releaseWatchLeases();
    assert.equal((await leaving.getUpload('u1'))?.watchedBy, null);
    assert.deepEqual((await leaving.beat()).watching, []);
    await leaving.removeInstance();
    // Alone now: its fair share is both.
    assert.deepEqual(ids(await staying.takeWatchLeases({ sourceRoots: null })), ['u1', 'u2']);
  });

  it('takes only uploads under its source roots, its fair share of them, and ends with its upload', async () => {
    const narrow = await open('narrow', 60_000, ['/data/r1']);
    const wide = await open('wide');
    for (const [index, uploadId] of ['r1', 'r2', 'r3', 'r4'].entries()) {
      await wide.createUpload(newUpload(uploadId), T0 + index);
    }
    // newUpload(id) has its folder at /data/id: only r1 is under the narrow instance's roots.
    assert.deepEqual(ids(await narrow.takeWatchLeases({ sourceRoots: ['/data/r1'] })), ['r1']);
    assert.deepEqual(await narrow.takeWatchLeases({ sourceRoots: ['/data/r1'] }), []);
    // Four live uploads, two instances: a share of two each; past it, one at a time, so that an
    // upload only one instance can read is never left unwatched.
    assert.deepEqual(ids(await wide.takeWatchLeases({ sourceRoots: null })), ['r2', 'r3']);
    assert.deepEqual(ids(await wide.takeWatchLeases({ sourceRoots: null })), ['r4']);
    // A cancelled upload is watched by nobody, and no beat renews it.
    assert.ok(await wide.cancelUpload('r2', T0 + 10));
    assert.equal((await wide.getUpload('r2'))?.watchedBy, null);
    assert.deepEqual((await wide.beat()).watching, ['r3', 'r4']);
  });
});
