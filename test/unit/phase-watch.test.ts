// The phase watch: it tells each change of an upload's phase once, looks soon after a file's event,
// catches on its tick what no event announces, and tells a start of watching and a cancel at once.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { ServiceEvent } from '../../src/domain/events.js';
import type { TaskCounts, UploadCounts } from '../../src/domain/model.js';
import { phaseOf } from '../../src/engine/progress.js';
import { PhaseWatch } from '../../src/engine/phase-watch.js';
import { createLogger } from '../../src/logger.js';
import { waitFor } from '../support/poll.js';

function countsOf(files: Partial<TaskCounts>): UploadCounts {
  const all = { pending: 0, in_progress: 0, completed: 0, failed: 0, ...files };
  const total = all.pending + all.in_progress + all.completed + all.failed;
  return { files: { ...all, total }, bytes: { total: 0, uploaded: 0 }, backlogBytes: 0 };
}

/** A phase watch over uploads whose counts the test sets, recording what it tells. */
function watchOver(uploads: Map<string, UploadCounts>, options: { tickMs?: number; settleMs?: number } = {}) {
  const told: ServiceEvent[] = [];
  let reads = 0;
  const watch = new PhaseWatch({
    counts: async (ids) => {
      reads += 1;
      const found = ids.flatMap((id) => {
        const counts = uploads.get(id);
        return counts ? [[id, counts] as const] : [];
      });
      return new Map(found);
    },
    phaseOf: (id, counts) =>
      uploads.has(id) ? phaseOf({ status: 'active' }, false, counts.files) : undefined,
    watched: () => uploads.keys(),
    publish: (event) => told.push(event),
    logger: createLogger('silent'),
    tickMs: options.tickMs ?? 60_000,
    settleMs: options.settleMs ?? 5,
  });
  return { watch, told, reads: () => reads };
}

const phases = (told: ServiceEvent[]) =>
  told.map((event) =>
    event.type === 'upload.phase' ? `${event.previousPhase}->${event.phase}` : event.type,
  );

describe('PhaseWatch', () => {
  const stops: PhaseWatch[] = [];
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((watch) => watch.stop()));
  });

  it('tells each change once, with the phase before it', async () => {
    const uploads = new Map([['a', countsOf({ pending: 2 })]]);
    const { watch, told } = watchOver(uploads);
    stops.push(watch);
    watch.start();
    watch.lookSoon('a');
    await waitFor(() => told.length === 1, { timeoutMs: 2000, message: 'the phases told' });
    watch.lookSoon('a');
    uploads.set('a', countsOf({ completed: 1, failed: 1 }));
    watch.lookSoon('a');
    await waitFor(() => told.length === 2, { timeoutMs: 2000, message: 'the phases told' });
    uploads.set('a', countsOf({ completed: 2 }));
    watch.lookSoon('a');
    await waitFor(() => told.length === 3, { timeoutMs: 2000, message: 'the phases told' });
    watch.lookSoon('a');
    assert.deepEqual(phases(told), ['null->uploading', 'uploading->failed', 'failed->idle']);
  });

  it('reads the counts of uploads that come due together once', async () => {
    const uploads = new Map([
      ['a', countsOf({ pending: 1 })],
      ['b', countsOf({ completed: 1 })],
    ]);
    const { watch, told, reads } = watchOver(uploads, { settleMs: 50 });
    stops.push(watch);
    for (let i = 0; i < 100; i += 1) watch.lookSoon(i % 2 === 0 ? 'a' : 'b');
    await waitFor(() => told.length === 2, { timeoutMs: 2000, message: 'the phases told' });
    assert.equal(reads(), 1);
  });

  it('catches on its tick a change no event announced', async () => {
    const uploads = new Map([['a', countsOf({ completed: 1 })]]);
    const { watch, told } = watchOver(uploads, { tickMs: 20 });
    stops.push(watch);
    watch.start();
    await waitFor(() => told.length === 1, { timeoutMs: 2000, message: 'the phases told' });
    uploads.set('a', countsOf({ completed: 1, pending: 1 }));
    await waitFor(() => told.length === 2, { timeoutMs: 2000, message: 'the phases told' });
    assert.deepEqual(phases(told), ['null->idle', 'idle->uploading']);
  });

  it('tells scanning at once when an upload starts being watched, then what a look finds', async () => {
    const uploads = new Map([['a', countsOf({ completed: 3 })]]);
    const { watch, told } = watchOver(uploads);
    stops.push(watch);
    watch.watching('a');
    assert.deepEqual(phases(told), ['null->scanning'], 'told before any look');
    watch.lookSoon('a');
    await waitFor(() => told.length === 2, { timeoutMs: 2000, message: 'the phases told' });
    assert.deepEqual(phases(told), ['null->scanning', 'scanning->idle']);
  });

  it('tells a cancel at once and forgets the upload', async () => {
    const uploads = new Map([['a', countsOf({ pending: 1 })]]);
    const { watch, told } = watchOver(uploads);
    stops.push(watch);
    watch.lookSoon('a');
    await waitFor(() => told.length === 1, { timeoutMs: 2000, message: 'the phases told' });
    uploads.delete('a');
    watch.ended('a', 'cancelled');
    assert.deepEqual(phases(told), ['null->uploading', 'uploading->cancelled']);
    // Looked at together with another upload: only the other one is told.
    uploads.set('b', countsOf({ completed: 1 }));
    watch.lookSoon('a');
    watch.lookSoon('b');
    await waitFor(() => told.length === 3, { timeoutMs: 2000, message: 'the phases told' });
    assert.deepEqual(phases(told).slice(2), ['null->idle']);
  });
});
