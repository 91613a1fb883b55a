import type { EpochMs } from '../domain/model.js';

/**
 * Stamps observations of files (ObservedFile.observedAt) so that a later observation never carries
 * an earlier stamp: the wall clock, but never below the last stamp given, nor below the newest stamp
 * already in the database. Without the floor, a clock stepped back (NTP, a restored snapshot) would
 * make every new observation look older than the stored one, and changes would be ignored.
 */
export class ObservationClock {
  private last: EpochMs = 0;

  constructor(private readonly wallClock: () => EpochMs = Date.now) {}

  /** Never stamp below this (the newest stamp recorded before this process started). */
  raiseFloor(floor: EpochMs): void {
    this.last = Math.max(this.last, floor);
  }

  readonly stamp = (): EpochMs => {
    this.last = Math.max(this.wallClock(), this.last);
    return this.last;
  };
}
