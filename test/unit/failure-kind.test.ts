// Why a task failed decides when it is tried again (FailureKind): a database that went away heals
// by itself, so a file whose upload met it is tried again on the transient schedule, not left for
// a person.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DatabaseUnavailableError } from '../../src/domain/errors.js';
import { failureKindOf } from '../../src/engine/failure-message.js';

describe('failureKindOf', () => {
  it('takes a database that cannot be used right now for a transient failure', () => {
    const error = new DatabaseUnavailableError('its server refuses connections (ECONNREFUSED)');
    assert.equal(failureKindOf(error), 'transient');
  });

  it('takes an error it knows nothing of for a permanent one', () => {
    assert.equal(failureKindOf(new TypeError('x is not a function')), 'permanent');
  });
});
