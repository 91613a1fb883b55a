import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ObservationClock } from '../../src/engine/observation-clock.js';

it('stamps never go back, neither below the last stamp nor below the floor from the database', () => {
  let wall = 1_000_000;
  const clock = new ObservationClock(() => wall);
  assert.equal(clock.stamp(), 1_000_000);
  wall = 999_000; // the clock is stepped back
  assert.equal(clock.stamp(), 1_000_000);
  clock.raiseFloor(5_000_000); // the database holds stamps taken while the clock was ahead
  assert.equal(clock.stamp(), 5_000_000);
  wall = 6_000_000;
  assert.equal(clock.stamp(), 6_000_000);
  clock.raiseFloor(1); // a lower floor changes nothing
  assert.equal(clock.stamp(), 6_000_000);
});
