import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { S3Health } from '../../src/engine/s3-health.js';
import type { S3ProbeResult } from '../../src/transfer/s3-probe.js';
import { waitFor } from '../support/poll.js';

/** A probe that answers what the test says S3 is doing, and counts its calls. */
function scriptedProbe(): {
  probe: (bucket: string) => Promise<S3ProbeResult>;
  up: boolean;
  calls: string[];
} {
  const state = {
    up: true,
    calls: [] as string[],
    probe: async (bucket: string): Promise<S3ProbeResult> => {
      state.calls.push(bucket);
      return state.up ? { reachable: true } : { reachable: false, error: 'connection refused' };
    },
  };
  return state;
}

describe('S3Health', () => {
  it('tells a failed file from an outage with one probe, shared by the failures that wait on it', async () => {
    const script = scriptedProbe();
    const health = new S3Health({
      probe: script.probe,
      logger: pino({ level: 'silent' }),
      onReachable: () => {},
    });
    assert.equal(await health.confirmOutage('b'), false, 'S3 answers: the failure is the file’s');
    assert.equal(health.reachable, true);

    script.up = false;
    script.calls.length = 0;
    const answers = await Promise.all([health.confirmOutage('b'), health.confirmOutage('b')]);
    assert.deepEqual(answers, [true, true]);
    assert.equal(script.calls.length, 1, 'one probe for both');
    assert.equal(health.reachable, false);
    assert.equal(health.report().lastError, 'connection refused');
    assert.equal(await health.confirmOutage('b'), true, 'known down: no probe');
    assert.equal(script.calls.length, 1);
    health.stop();
  });

  it('probes with backoff while S3 is down, and says when it is back', async () => {
    const script = scriptedProbe();
    let wakeUps = 0;
    let clock = 1_000;
    const health = new S3Health({
      probe: script.probe,
      logger: pino({ level: 'silent' }),
      onReachable: () => (wakeUps += 1),
      now: () => clock,
      firstProbeDelayMs: 10,
      maxProbeDelayMs: 40,
    });
    script.up = false;
    assert.equal(await health.confirmOutage('bucket'), true);
    assert.deepEqual(health.report(), {
      status: 'unreachable',
      since: 1_000,
      lastError: 'connection refused',
    });
    await waitFor(() => script.calls.length >= 5 || undefined, { timeoutMs: 5_000, message: 'five probes' });
    assert.equal(wakeUps, 0);
    clock = 5_000;
    script.up = true;
    await waitFor(() => health.reachable || undefined, { timeoutMs: 5_000, message: 'reachable again' });
    assert.equal(wakeUps, 1);
    assert.deepEqual(health.report(), { status: 'reachable', since: 5_000, lastError: null });
    assert.ok(script.calls.every((bucket) => bucket === 'bucket'));
    const probes = script.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(script.calls.length, probes, 'no probe once S3 answers');
    health.stop();
  });
});
